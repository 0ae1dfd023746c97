"""Envelopes: a PDF sealed by several parties in steps, each party only its own field, only
while its step is open and before its deadline.

The initiator's seal certifies the document with "form filling and signing allowed" and
reserves a field for every party, bound to that party's credit code (in the file as a seed
value, in the registry with the certifying document: :mod:`econtract.sealing`). Each seal is
an ordinary sealed revision of the document, registered, audited and logged as every sealed
document is; the envelope records which party made it.

Parties of one step act in parallel, but each revision builds on the one before: a party's
seal is registered only if the envelope has not moved since the revision it sealed was read
(``version``); otherwise it is sealed again on the new revision. So no step is lost and the
envelope completes once.
"""

from __future__ import annotations

import functools
import io
import logging
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from econtract import audit, db
from econtract.bodies import BodyKind
from econtract.departments import get_department
from econtract.envelopes._changes import (
    close_envelope,
    expire_if_due,
    passed_deadline,
    record_envelope_change,
)
from econtract.envelopes._completion import IssueLicence, check_action, complete
from econtract.envelopes._deadlines import expire
from econtract.envelopes._errors import (
    AlreadyActedError,
    DeadlinePassedError,
    EnvelopeClosedError,
    NotYourTurnError,
)
from econtract.envelopes._models import Envelope, EnvelopeParty, EnvelopeStatus, PartyStatus
from econtract.envelopes._views import EnvelopeView, view_of
from econtract.errors import InvalidInputError, NotFoundError
from econtract.models import Department, SealedDocument, new_public_id
from econtract.sealing import seal_document
from econtract.services import Services
from econtract.text import clean_text
from econtract.translog import LogEntry
from signing.options import (
    Certification,
    FieldHolder,
    Placement,
    ReservedField,
    SealLevel,
    SealOptions,
)

_PARTIES = (BodyKind.DEPARTMENT, BodyKind.ENTERPRISE)
# A party whose revision was overtaken by another party's seals again on the new one; past
# this many tries the envelope is too busy and the party is told to try again.
_ATTEMPTS = 8
# How long a party waits for the revision another party's seal has just registered to appear
# in the blob store.
_PUBLISH_WAIT_SECONDS = 5.0

log = logging.getLogger("econtract.envelopes")


@dataclass(frozen=True, kw_only=True)
class PartySpec:
    """One party of a step: who, and where its field goes."""

    code: str
    """The party's unified social credit code (a department or an enterprise)."""
    field: str
    """The field's name."""
    page: int = 1
    x: float = 300.0
    y: float = 150.0


@dataclass(frozen=True, kw_only=True)
class StepSpec:
    """The parties that act in parallel, and by when (办理时限)."""

    parties: tuple[PartySpec, ...]
    deadline: datetime


@dataclass(frozen=True, kw_only=True)
class EnvelopeRequest:
    """What a new envelope is made of."""

    title: str
    seal_id: str
    """The initiator's seal, which certifies the document."""
    steps: tuple[StepSpec, ...]
    placement: Placement | None = None
    """Where the initiator's own visible seal goes (none: an invisible certification)."""
    on_complete: IssueLicence | None = None
    """What completion does beyond the certificate: issue a licence (a case), or nothing (a
    contract)."""


def create_envelope(
    services: Services,
    *,
    source: bytes,
    request: EnvelopeRequest,
    actor: audit.Actor,
    idempotency_key: str | None = None,
) -> EnvelopeView:
    """Certify ``source`` with the initiator's seal, a field reserved for every party, and open
    the first step. A retry with the same ``idempotency_key`` (per initiator) answers the
    envelope the first request made, and seals nothing again."""
    if idempotency_key is not None:
        earlier = _by_key(services, actor, idempotency_key)
        if earlier is not None:
            return earlier
    title = clean_text(request.title, field="title", max_length=200)
    now = services.clock.now()
    reserved = _check_steps(request.steps, now)
    action = (
        check_action(request.on_complete, today=services.clock.today())
        if request.on_complete
        else None
    )
    with services.sessions() as session:
        bodies = {
            p.code: get_department(session, p.code, kinds=_PARTIES).id
            for step in request.steps
            for p in step.parties
        }
    envelope_id = new_public_id("env")

    def register(session: Session, document: SealedDocument) -> None:
        session.add(
            Envelope(
                id=envelope_id,
                title=title,
                initiator_id=document.department_id,
                steps=len(request.steps),
                document_id=document.id,
                certified_document_id=document.id,
                idempotency_key=idempotency_key,
                on_complete=action.to_json() if action else None,
                created_at=now,
                updated_at=now,
            )
        )
        session.flush()
        for number, step in enumerate(request.steps, start=1):
            for party in step.parties:
                session.add(
                    EnvelopeParty(
                        envelope_id=envelope_id,
                        department_id=bodies[party.code],
                        step=number,
                        field_name=party.field,
                        deadline=step.deadline,
                        status=(PartyStatus.OPEN if number == 1 else PartyStatus.WAITING).value,
                    )
                )
        record_envelope_change(
            services,
            session,
            actor,
            envelope_id=envelope_id,
            happened="created",
            department_id=document.department_id,
            detail={
                "document": document.id,
                "steps": [[p.code for p in s.parties] for s in request.steps],
            },
            state=(EnvelopeStatus.OPEN.value, 1),
        )

    try:
        seal_document(
            services,
            source=io.BytesIO(source),
            seal_id=request.seal_id,
            options=SealOptions(
                level=SealLevel.B_LT,
                certification=Certification.FORM_FILLING,
                placement=request.placement,
                reserve_fields=reserved,
                reason=title,
            ),
            actor=actor,
            within=register,
        )
    except IntegrityError:
        # A parallel request with the same key registered its envelope first.
        earlier = _by_key(services, actor, idempotency_key) if idempotency_key else None
        if earlier is None:
            raise
        return earlier
    with services.sessions() as session:
        return view_of(session, _get(session, envelope_id))


def seal_step(
    services: Services,
    *,
    envelope_id: str,
    seal_id: str,
    actor: audit.Actor,
    client_id: str | None = None,
) -> EnvelopeView:
    """Seal the actor's own field of an envelope with one of its own seals, while its step is
    open and before its deadline; the next step opens when every party of this one has
    sealed, and the envelope completes with the last."""
    for _ in range(_ATTEMPTS):
        with services.sessions() as session:
            envelope = _get(session, envelope_id, actor=actor)
            party = _open_party(services, session, envelope, actor, writable=False)
            version, field, party_id = envelope.version, party.field_name, party.id
            last = _is_last(session, envelope, party)
            document = session.get(SealedDocument, envelope.document_id)
            assert document is not None
            current = document.blob_key
        source = _read_revision(services, current)
        try:
            seal_document(
                services,
                source=io.BytesIO(source),
                seal_id=seal_id,
                # The last seal ends with the document timestamp (B-LTA) that completes the
                # document: its revision is registered only if it is still the last (version).
                options=SealOptions(
                    level=SealLevel.B_LTA if last else SealLevel.B_LT, field_name=field
                ),
                actor=actor,
                within=functools.partial(
                    _advance,
                    services,
                    envelope_id=envelope_id,
                    version=version,
                    party_id=party_id,
                    actor=actor,
                    client_id=client_id,
                ),
            )
        except _OvertakenError:
            continue
        if last:
            _complete_now(services, envelope_id)
        with services.sessions() as session:
            return view_of(session, _get(session, envelope_id))
    raise _busy()


def decline(
    services: Services, *, envelope_id: str, reason: str, actor: audit.Actor
) -> EnvelopeView:
    """A party of the open step declines, with its reason: the envelope stops."""
    reason = clean_text(reason, field="reason", max_length=500)
    for _ in range(_ATTEMPTS):
        with db.transaction(services.sessions) as session:
            envelope = _get(session, envelope_id, actor=actor)
            party = _open_party(services, session, envelope, actor)
            now = services.clock.now()
            if not close_envelope(session, envelope, EnvelopeStatus.DECLINED, now, reason):
                continue  # another party sealed meanwhile: look again
            party.status, party.acted_at, party.reason = PartyStatus.DECLINED.value, now, reason
            record_envelope_change(
                services,
                session,
                actor,
                envelope_id=envelope.id,
                happened="declined",
                department_id=party.department_id,
                detail={"reason": reason, "field": party.field_name},
                state=(envelope.status, envelope.step),
            )
            session.flush()
            return view_of(session, envelope)
    raise _busy()


def cancel(
    services: Services, *, envelope_id: str, reason: str, actor: audit.Actor
) -> EnvelopeView:
    """The initiator cancels an open envelope."""
    reason = clean_text(reason, field="reason", max_length=500)
    for _ in range(_ATTEMPTS):
        with db.transaction(services.sessions) as session:
            envelope = _get(session, envelope_id, actor=actor)
            if actor.department_id is not None and envelope.initiator_id != actor.department_id:
                raise NotFoundError(f"No envelope {envelope_id!r} initiated by this party.")
            expire_if_due(services, session, envelope)
            if envelope.status != EnvelopeStatus.OPEN:
                raise EnvelopeClosedError(
                    f"The envelope is {envelope.status}; it cannot be cancelled."
                )
            now = services.clock.now()
            if not close_envelope(session, envelope, EnvelopeStatus.CANCELLED, now, reason):
                continue  # a party sealed meanwhile: look again
            record_envelope_change(
                services,
                session,
                actor,
                envelope_id=envelope.id,
                happened="cancelled",
                department_id=envelope.initiator_id,
                detail={"reason": reason},
                state=(envelope.status, envelope.step),
            )
            session.flush()
            return view_of(session, envelope)
    raise _busy()


def _busy() -> EnvelopeClosedError:
    return EnvelopeClosedError(
        "Other parties kept sealing this envelope at the same moment; try again."
    )


def get_envelope(services: Services, envelope_id: str, *, actor: audit.Actor) -> EnvelopeView:
    """An envelope, for its initiator and its parties only (anyone else: not found); a passed
    deadline shows as expired."""
    with db.transaction(services.sessions) as session:
        envelope = _get(session, envelope_id, actor=actor)
        expire_if_due(services, session, envelope)
        session.flush()
        return view_of(session, envelope)


def list_envelopes(
    services: Services,
    *,
    actor: audit.Actor,
    status: EnvelopeStatus | None = None,
    party: str | None = None,
    limit: int = 50,
    after: str | None = None,
) -> tuple[list[EnvelopeView], bool]:
    """A page of the envelopes the actor initiated or is a party to, newest first, and
    whether more follow; ``party`` keeps those one body (by credit code) is a party to,
    ``after`` is the last envelope of the page before."""
    if not 1 <= limit <= 200:
        raise InvalidInputError("limit is between 1 and 200.", errors=[("/limit", "out of range")])
    with services.sessions() as session:
        query = select(Envelope).order_by(Envelope.created_at.desc(), Envelope.id.desc())
        if actor.department_id is not None:
            mine = select(EnvelopeParty.envelope_id).where(
                EnvelopeParty.department_id == actor.department_id
            )
            query = query.where(
                (Envelope.initiator_id == actor.department_id) | Envelope.id.in_(mine)
            )
        if status is not None:
            query = query.where(Envelope.status == status.value)
        if party is not None:
            body = session.scalar(select(Department.id).where(Department.code == party))
            with_party = select(EnvelopeParty.envelope_id).where(
                EnvelopeParty.department_id == body
            )
            query = query.where(Envelope.id.in_(with_party))
        if after is not None:
            last = _get(session, after, actor=actor)
            query = query.where(
                (Envelope.created_at < last.created_at)
                | ((Envelope.created_at == last.created_at) & (Envelope.id < last.id))
            )
        rows = list(session.scalars(query.limit(limit + 1)))
        return [view_of(session, e) for e in rows[:limit]], len(rows) > limit


def _complete_now(services: Services, envelope_id: str) -> None:
    """Complete the envelope the last seal completed, so that its answer shows the
    certificate; the seal stands if this fails, and the sweep finishes the completion."""
    try:
        complete(services, envelope_id)
    except Exception:
        log.exception("Completing envelope %s failed; finish_completions tries again.", envelope_id)


def _is_last(session: Session, envelope: Envelope, party: EnvelopeParty) -> bool:
    """Whether the party's seal would complete the envelope as it stands now."""
    if envelope.step != envelope.steps:
        return False
    others = session.scalar(
        select(EnvelopeParty.id).where(
            EnvelopeParty.envelope_id == envelope.id,
            EnvelopeParty.step == envelope.step,
            EnvelopeParty.status == PartyStatus.OPEN.value,
            EnvelopeParty.id != party.id,
        )
    )
    return others is None


def _read_revision(services: Services, key: str) -> bytes:
    """The bytes of the envelope's current revision.

    A sealed file is moved into the blob store just after the transaction that registered it
    commits, so a party that reads the envelope in between finds the row but not yet the
    file: it waits for it a little (the move is a rename) rather than fail."""
    delay = 0.01
    waited = 0.0
    while True:
        try:
            with services.blobs.open(key) as stream:
                return stream.read()
        except NotFoundError:
            if waited >= _PUBLISH_WAIT_SECONDS:
                raise
            time.sleep(delay)
            waited += delay
            delay = min(delay * 2, 0.2)


def _by_key(services: Services, actor: audit.Actor, key: str) -> EnvelopeView | None:
    with services.sessions() as session:
        envelope = session.scalar(
            select(Envelope).where(
                Envelope.initiator_id == actor.department_id, Envelope.idempotency_key == key
            )
        )
        return view_of(session, envelope) if envelope is not None else None


class _OvertakenError(Exception):
    """Another party's seal was registered first: seal again on the new revision."""


def _check_steps(steps: tuple[StepSpec, ...], now: datetime) -> tuple[ReservedField, ...]:
    if not steps or any(not s.parties for s in steps):
        raise InvalidInputError(
            "An envelope has at least one step, and every step at least one party.",
            errors=[("/steps", "empty")],
        )
    reserved: list[ReservedField] = []
    previous: datetime | None = None
    for number, step in enumerate(steps, start=1):
        if step.deadline <= now or (previous is not None and step.deadline < previous):
            raise InvalidInputError(
                f"Step {number}'s deadline must be in the future and not before the step "
                "before it.",
                errors=[(f"/steps/{number - 1}/deadline", "in the past or out of order")],
            )
        previous = step.deadline
        for party in step.parties:
            reserved.append(
                ReservedField(
                    name=party.field,
                    placement=Placement(page=party.page, x=party.x, y=party.y),
                    holder=FieldHolder(department_code=party.code.strip().upper()),
                )
            )
    names = [f.name for f in reserved]
    if len(set(names)) != len(names):
        raise InvalidInputError(
            "Every party's field has a name of its own.", errors=[("/steps", "field twice")]
        )
    return tuple(reserved)


def _get(session: Session, envelope_id: str, *, actor: audit.Actor | None = None) -> Envelope:
    envelope = session.get(Envelope, envelope_id)
    if envelope is not None and actor is not None and actor.department_id is not None:
        party = session.scalar(
            select(EnvelopeParty.id).where(
                EnvelopeParty.envelope_id == envelope_id,
                EnvelopeParty.department_id == actor.department_id,
            )
        )
        if party is None and envelope.initiator_id != actor.department_id:
            envelope = None
    if envelope is None:
        raise NotFoundError(f"No envelope {envelope_id!r} for this party.")
    return envelope


def _open_party(
    services: Services,
    session: Session,
    envelope: Envelope,
    actor: audit.Actor,
    *,
    writable: bool = True,
) -> EnvelopeParty:
    """The actor's party row that may act now, or the refusal that says why not. An envelope
    past its deadline is expired first, in ``session`` only when it is ``writable``: on SQLite
    a read turning into a write fails when another connection committed since it began."""
    if writable:
        if expire_if_due(services, session, envelope):
            session.commit()
    elif passed_deadline(services, session, envelope) is not None:
        expire(services, envelope.id)
        raise DeadlinePassedError(f"Step {envelope.step}'s deadline has passed.")
    if envelope.status == EnvelopeStatus.EXPIRED:
        raise DeadlinePassedError(f"Step {envelope.step}'s deadline has passed.")
    if envelope.status != EnvelopeStatus.OPEN:
        raise EnvelopeClosedError(f"The envelope is {envelope.status}.")
    rows = list(
        session.scalars(
            select(EnvelopeParty)
            .where(
                EnvelopeParty.envelope_id == envelope.id,
                EnvelopeParty.department_id == actor.department_id,
            )
            .order_by(EnvelopeParty.step)
        )
    )
    for row in rows:
        if row.status == PartyStatus.OPEN:
            return row
    if any(r.status == PartyStatus.WAITING for r in rows):
        raise NotYourTurnError(
            f"Step {envelope.step} is open; this party acts in step "
            f"{min(r.step for r in rows if r.status == PartyStatus.WAITING)}."
        )
    if rows:
        raise AlreadyActedError("This party has already sealed its field of the envelope.")
    raise NotFoundError(f"This party has no field in envelope {envelope.id!r}.")


def _advance(
    services: Services,
    session: Session,
    document: SealedDocument,
    *,
    envelope_id: str,
    version: int,
    party_id: int,
    actor: audit.Actor,
    client_id: str | None,
) -> None:
    """In the seal's registering transaction: move the envelope on, only from the revision
    that was sealed."""
    now = services.clock.now()
    moved = session.execute(
        update(Envelope)
        .where(
            Envelope.id == envelope_id,
            Envelope.version == version,
            Envelope.status == EnvelopeStatus.OPEN.value,
        )
        .values(version=version + 1, document_id=document.id, updated_at=now)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise _OvertakenError
    party = session.get(EnvelopeParty, party_id)
    assert party is not None
    party.status, party.acted_at = PartyStatus.SEALED.value, now
    party.client_id, party.document_id = client_id, document.id
    session.flush()
    envelope = session.get(Envelope, envelope_id)
    assert envelope is not None
    session.refresh(envelope)
    still_open = session.scalar(
        select(EnvelopeParty.id).where(
            EnvelopeParty.envelope_id == envelope_id,
            EnvelopeParty.step == envelope.step,
            EnvelopeParty.status == PartyStatus.OPEN.value,
        )
    )
    if still_open is None:
        if envelope.step == envelope.steps:
            envelope.status = EnvelopeStatus.COMPLETED.value
            envelope.timestamped_document_id = document.id
        else:
            envelope.step += 1
            session.execute(
                update(EnvelopeParty)
                .where(
                    EnvelopeParty.envelope_id == envelope_id,
                    EnvelopeParty.step == envelope.step,
                )
                .values(status=PartyStatus.OPEN.value)
            )
    record_envelope_change(
        services,
        session,
        actor,
        envelope_id=envelope_id,
        happened="sealed",
        department_id=party.department_id,
        detail={"field": party.field_name, "document": document.id, "step": party.step},
        state=(envelope.status, envelope.step),
        log_entry=functools.partial(
            _step_entry, document, envelope_id=envelope_id, step=party.step
        ),
    )


def _step_entry(document: SealedDocument, code: str, *, envelope_id: str, step: int) -> LogEntry:
    return LogEntry.envelope_step(
        document, envelope_id=envelope_id, step=step, department_code=code
    )
