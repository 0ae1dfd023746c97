"""Sealed documents: lookups scoped to a department."""

from __future__ import annotations

from sqlalchemy.orm import Session

from econtract.errors import NotFoundError
from econtract.models import SealedDocument


def get_document(
    session: Session, document_id: str, *, department_id: int | None
) -> SealedDocument:
    """A sealed document; another department's answers exactly like one that does not exist."""
    document = session.get(SealedDocument, document_id)
    if document is None or (department_id is not None and document.department_id != department_id):
        raise NotFoundError(f"No document {document_id!r}.")
    return document
