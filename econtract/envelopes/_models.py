"""The envelope's tables: the envelope and its parties, each with its field, step and
deadline."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from econtract.models import Base, utcnow


class EnvelopeStatus(StrEnum):
    """Where an envelope stands: open until every party has sealed (completed), or stopped."""

    OPEN = "open"
    COMPLETED = "completed"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class PartyStatus(StrEnum):
    """Where one party stands: waiting for its step, open to act, sealed or declined."""

    WAITING = "waiting"
    OPEN = "open"
    SEALED = "sealed"
    DECLINED = "declined"


class Envelope(Base):
    """A document that several parties seal in steps, from the initiator's certification to
    the last party's seal."""

    __tablename__ = "envelopes"
    __table_args__ = (
        Index("ix_envelopes_initiator", "initiator_id", "created_at"),
        UniqueConstraint("initiator_id", "idempotency_key"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    initiator_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    status: Mapped[str] = mapped_column(String(12), default=EnvelopeStatus.OPEN.value)
    step: Mapped[int] = mapped_column(Integer, default=1)
    """The step open now (counted from 1)."""
    steps: Mapped[int] = mapped_column(Integer)
    """How many steps there are."""
    version: Mapped[int] = mapped_column(Integer, default=1)
    """Raised by every change: a party's seal is registered only on the revision it sealed."""
    document_id: Mapped[str] = mapped_column(ForeignKey("sealed_documents.id"))
    """The current revision of the document."""
    certified_document_id: Mapped[str] = mapped_column(ForeignKey("sealed_documents.id"))
    """The initiator's certified revision."""
    reason: Mapped[str | None] = mapped_column(String(500), default=None)
    """Why it was declined or cancelled."""
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    """The initiator's key for its request: a retry gets the envelope made the first time."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    """When the completion was recorded (in the audit trail and the log)."""
    completion_claimed_at: Mapped[datetime | None] = mapped_column(default=None)
    """When a worker took the completion on: another leaves it alone until the claim is
    stale (the worker died)."""
    timestamped_document_id: Mapped[str | None] = mapped_column(
        ForeignKey("sealed_documents.id"), default=None
    )
    """The final revision with its document timestamp (B-LTA): the last party's seal."""
    completion_document_id: Mapped[str | None] = mapped_column(
        ForeignKey("sealed_documents.id"), default=None
    )
    """The completion certificate, sealed by the platform."""
    on_complete: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    """What completion does beyond the certificate, named at creation (``{"issue": {"type":
    ..., "fields": ...}}``: a licence for a case), or ``None`` for a contract."""
    licence_id: Mapped[str | None] = mapped_column(ForeignKey("certificates.id"), default=None)
    """The licence the completion issued."""


class EnvelopeParty(Base):
    """One party of an envelope: the body that seals, its field, its step and its deadline."""

    __tablename__ = "envelope_parties"
    __table_args__ = (
        UniqueConstraint("envelope_id", "field_name"),
        Index("ix_envelope_parties_party", "department_id", "envelope_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    envelope_id: Mapped[str] = mapped_column(ForeignKey("envelopes.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    """The party: a department or an enterprise."""
    step: Mapped[int] = mapped_column(Integer)
    field_name: Mapped[str] = mapped_column(String(64))
    deadline: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(12), default=PartyStatus.WAITING.value)
    acted_at: Mapped[datetime | None] = mapped_column(default=None)
    client_id: Mapped[str | None] = mapped_column(String(64), default=None)
    """The API client it acted through (``None`` for the operator's command line)."""
    document_id: Mapped[str | None] = mapped_column(ForeignKey("sealed_documents.id"), default=None)
    """The revision its seal made."""
    reason: Mapped[str | None] = mapped_column(String(500), default=None)
