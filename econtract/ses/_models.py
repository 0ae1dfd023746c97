"""The table of seal data: each SM2 seal's SESeal (v4, DER), beside the seal's own row.

Mapped on the registry's shared ``Base`` (migration 0025); only ``econtract.ses`` and the
seal use cases read or write it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from econtract.models import Base, utcnow


class SealSES(Base):
    """A seal's GB/T 38540 seal data, made and signed by the service when the seal is made."""

    __tablename__ = "seal_ses"

    seal_id: Mapped[str] = mapped_column(String(40), ForeignKey("seals.id"), primary_key=True)
    der: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
