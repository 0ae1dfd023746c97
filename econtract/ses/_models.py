"""The tables of GB/T 38540 structures: each SM2 seal's SESeal (v4, DER), beside the seal's
own row, and the SES_Signature of each sealing with an SM2 seal, beside its document's.

Mapped on the registry's shared ``Base`` (migrations 0025, 0027); only ``econtract.ses`` and
the seal and sealing use cases read or write them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from econtract.models import Base, utcnow


class SealSES(Base):
    """A seal's GB/T 38540 seal data, made and signed by the service when the seal is made."""

    __tablename__ = "seal_ses"

    seal_id: Mapped[str] = mapped_column(String(40), ForeignKey("seals.id"), primary_key=True)
    der: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SESSignatureRecord(Base):
    """The SES_Signature (v4, DER) of one sealing with an SM2 seal: of a sealed document or of
    an issued licence, exactly one of the two."""

    __tablename__ = "ses_signatures"
    __table_args__ = (
        CheckConstraint(
            "(document_id IS NULL) <> (certificate_id IS NULL)", name="ses_signature_of_one"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("sealed_documents.id"), unique=True
    )
    certificate_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("certificates.id"), unique=True
    )
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    """The department whose seal signed: the only one that may download it."""
    seal_id: Mapped[str] = mapped_column(String(40), ForeignKey("seals.id"))
    data_hash: Mapped[str] = mapped_column(String(64))
    """SM3 (hex) of the bytes the SM2 seal's ``/ByteRange`` covers: its CMS message digest."""
    der: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
