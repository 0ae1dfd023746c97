"""The SES_Signature of a sealing with an SM2 seal: made after the PDF is sealed, kept with
the document's (or the licence's) row, read back by the department whose seal signed.

Its data hash is the SM3 digest of the bytes the seal's ``/ByteRange`` covers, which is the
SM2 seal's CMS message digest: GB/T 38540 has the signature's ``dataHash`` be the digest of
the original data signed, and in a PDF that is what the seal signs. Its timestamp, for a
timestamped level, is the SM2 authority's token over SM3 of the signature value, as the
standard's ``timeStamp`` is; the time is the signing time the PDF's signature carries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime

from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select
from sqlalchemy.orm import Session

from econtract.errors import NotFoundError
from econtract.ses._models import SealSES, SESSignatureRecord
from econtract.ses.make import SESSigner, make_ses_signature
from keys.sm2 import SM2KeyHandle
from keys.tsa import TimestampAuthority
from signing.sealer import SealIdentity, SealResult

__all__ = [
    "has_sealing_signature",
    "kept_ses_signature",
    "make_sealing_signature",
    "seal_data_of",
    "sealing_signature_record",
]


def make_sealing_signature(
    *,
    seal_ses: bytes,
    identity: SealIdentity,
    result: SealResult,
    authority: TimestampAuthority | None,
) -> bytes:
    """The DER SES_Signature v4 of the sealing ``result`` by the SM2 seal ``identity``.

    ``authority``, when given, timestamps the signature value (SM3 imprint).
    """
    handle = identity.signer.handle
    if not isinstance(handle, SM2KeyHandle):
        raise TypeError("Only a sealing with an SM2 seal has an SES_Signature.")
    timestamp: Callable[[bytes], bytes] | None = None
    if authority is not None:
        stamper = authority

        def timestamp(signature: bytes) -> bytes:
            return stamper.stamp(hashlib.new("sm3", signature).digest(), "sm3")

    return make_ses_signature(
        seal_ses,
        SESSigner(handle=handle, certificate_der=identity.certificate.public_bytes(Encoding.DER)),
        bytes.fromhex(result.signed_digest),
        f"PDF signature field {result.field_name}: SM3 of its /ByteRange",
        result.signed_at,
        timestamp,
    )


def seal_data_of(session: Session, seal_id: str) -> bytes | None:
    """The SESeal DER of an SM2 seal, ``None`` for a seal without one."""
    row = session.get(SealSES, seal_id)
    return None if row is None else row.der


def sealing_signature_record(
    *,
    der: bytes,
    department_id: int,
    seal_id: str,
    data_hash: str,
    at: datetime,
    document_id: str | None = None,
    certificate_id: str | None = None,
) -> SESSignatureRecord:
    """The row that keeps an SES_Signature with a document or a licence (exactly one)."""
    if (document_id is None) == (certificate_id is None):
        raise ValueError("An SES_Signature belongs to one document or one licence.")
    return SESSignatureRecord(
        document_id=document_id,
        certificate_id=certificate_id,
        department_id=department_id,
        seal_id=seal_id,
        data_hash=data_hash,
        der=der,
        created_at=at,
    )


def kept_ses_signature(
    session: Session,
    *,
    document_id: str | None = None,
    certificate_id: str | None = None,
    department_id: int | None,
) -> bytes:
    """The SES_Signature DER kept with a document or licence of ``department_id`` (any
    department's for ``None``); another department's, or a record sealed without an SM2
    seal, answers as missing."""
    query = select(SESSignatureRecord)
    if document_id is not None:
        query = query.where(SESSignatureRecord.document_id == document_id)
        what = f"document {document_id!r}"
    elif certificate_id is not None:
        query = query.where(SESSignatureRecord.certificate_id == certificate_id)
        what = f"certificate {certificate_id!r}"
    else:
        raise ValueError("Name a document or a certificate.")
    row = session.scalars(query).first()
    if row is None or (department_id is not None and row.department_id != department_id):
        raise NotFoundError(f"No SES_Signature for {what} (only SM2 sealings have one).")
    return row.der


def has_sealing_signature(session: Session, *, document_id: str) -> bool:
    """Whether a document keeps an SES_Signature (an SM2 seal sealed it)."""
    found = session.scalar(
        select(SESSignatureRecord.id).where(SESSignatureRecord.document_id == document_id)
    )
    return found is not None
