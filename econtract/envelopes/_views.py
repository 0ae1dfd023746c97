"""What the parties are shown of an envelope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from econtract.envelopes._models import Envelope, EnvelopeParty, PartyStatus
from econtract.models import Department


@dataclass(frozen=True)
class PartyView:
    """One party as shown to the parties."""

    code: str
    name: str
    kind: str
    step: int
    field: str
    deadline: datetime
    status: str
    acted_at: datetime | None
    client_id: str | None
    document_id: str | None
    reason: str | None


@dataclass(frozen=True)
class EnvelopeView:
    """An envelope as shown to its parties."""

    id: str
    title: str
    status: str
    step: int
    steps: int
    initiator: str
    document_id: str
    reason: str | None
    created_at: datetime
    updated_at: datetime
    parties: tuple[PartyView, ...]
    completed_at: datetime | None = None
    """When the completion was recorded."""
    completion_certificate: str | None = None
    """The completion certificate's document id, once made."""
    licence: str | None = None
    """The certificate id of the licence the completion issued."""

    @property
    def progress(self) -> str:
        """How far it is, in words: "2 of 3 parties have sealed"."""
        sealed = sum(p.status == PartyStatus.SEALED for p in self.parties)
        return f"{sealed} of {len(self.parties)} parties have sealed"


def view_of(session: Session, envelope: Envelope) -> EnvelopeView:
    """The envelope with every party, in step order."""
    rows = session.execute(
        select(EnvelopeParty, Department)
        .join(Department, Department.id == EnvelopeParty.department_id)
        .where(EnvelopeParty.envelope_id == envelope.id)
        .order_by(EnvelopeParty.step, EnvelopeParty.id)
    ).all()
    initiator = session.get(Department, envelope.initiator_id)
    assert initiator is not None
    return EnvelopeView(
        id=envelope.id,
        title=envelope.title,
        status=envelope.status,
        step=envelope.step,
        steps=envelope.steps,
        initiator=initiator.code,
        document_id=envelope.document_id,
        reason=envelope.reason,
        created_at=envelope.created_at,
        updated_at=envelope.updated_at,
        completed_at=envelope.completed_at,
        completion_certificate=envelope.completion_document_id,
        licence=envelope.licence_id,
        parties=tuple(
            PartyView(
                code=body.code,
                name=body.name,
                kind=body.kind,
                step=party.step,
                field=party.field_name,
                deadline=party.deadline,
                status=party.status,
                acted_at=party.acted_at,
                client_id=party.client_id,
                document_id=party.document_id,
                reason=party.reason,
            )
            for party, body in rows
        ),
    )
