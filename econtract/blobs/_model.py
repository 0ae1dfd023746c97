"""The ``blobs`` table of the database blob store, mapped on the registry's declarative base."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from econtract.models import Base, utcnow


class Blob(Base):
    """A sealed PDF kept in the registry (``ECONTRACT_BLOB_STORE=database``), under the same
    content key the disk store names its file by; a row is never changed."""

    __tablename__ = "blobs"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    """Read in slices, never whole (see :mod:`econtract.blobs._database`): hence deferred."""
