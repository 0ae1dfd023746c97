"""Number claims: the two short transactions around the slow part of issuing a licence.

Rendering and sealing take tens of milliseconds; the number counter's row lock must not wait
for them. An issuance therefore claims its number in one short transaction (:func:`reserve`),
renders and seals with no transaction open, and registers the licence in another short one
(:func:`settle_claim` inside the registering transaction).

The claim is a row of its own (``issuance_claims``), not a certificate in a hidden
``pending`` status: every read of certificates (lists, the QR page, sharing, statistics, the
holder's app) stays as it is, with no filter to forget, and a certificate row only ever
exists together with its sealed file's registration.

:func:`reserve` does, in one transaction and in this order:

1. claim the idempotency key, when the request has one;
2. write the claim with the holder: a partial unique index admits one *pending* claim per
   department, type and holder, so two parallel requests for one holder cannot both pass.
   It is written *before* the holder's licences are read: on PostgreSQL an insert that meets
   the pending claim of a registering transaction waits for it, and the read that follows
   sees the certificate it committed (SQLite runs one writer at a time);
3. refuse a holder who already holds a valid licence of the type, and a supersede of a
   licence that cannot be superseded, before any number is spent on them;

and once that transaction committed, the claim still without a number:

4. take the number from the counter and write it to the claim in one statement that is a
   transaction of its own (:func:`~econtract.issuance._numbering.take_number`), so that the
   counter's lock is held for the database's work alone, never while the thread waits for
   the GIL (``econtract_number_lock_seconds``).

A claim without a number lasts an instant, and every reader copes: a request for the same
holder waits a moment for the number to name it (:func:`_refuse_held`), a retry with the
same key takes the number itself (the statement numbers a claim once, whoever sends it), and
the sweep voids it like any abandoned claim. When the process dies between the two, the
claim stays pending without a number and the sweep voids it; no number was handed out, so
nothing is voided in the audit trail or the log (the claim row keeps the reason). A counter
used up voids the claim the same way and refuses the request.

A claim ends ``issued``, in the transaction that registers its certificate, which moves it
only from ``pending``; or ``void`` with its reason (:func:`void_claim`): the seal failed, the
registration failed, or nothing registered it within ``issuance_claim_timeout_seconds`` (its
process died; :func:`sweep_claims`, at start-up and periodically). A void number is recorded
in the audit trail and as a ``number.void`` log entry, and never handed out again. A retry
with the same Idempotency-Key completes a pending claim (same number, same certificate id);
after a void it starts afresh with a new number.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import NoReturn

from sqlalchemy import (
    Engine,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    delete,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, lazyload, mapped_column

from econtract import audit, db, metrics
from econtract.clock import CHINA, Clock
from econtract.errors import ConflictError, LicenceExistsError, NotFoundError
from econtract.issuance._catalogue import get_template
from econtract.issuance._idempotency import IdempotencyKey, Issued, claim_key
from econtract.issuance._numbering import number_stem, take_number
from econtract.issuance._request import ValidatedRequest
from econtract.issuance._status import refuse_second_licence
from econtract.models import (
    Base,
    Certificate,
    CertificateStatus,
    Department,
    IdempotencyRecord,
    new_public_id,
)
from econtract.periodic import PeriodicThread
from econtract.services import Services
from econtract.translog import LogEntry, append_entry

log = logging.getLogger(__name__)

#: Who voids a claim nobody registered.
SWEEP_ACTOR = audit.Actor(name="service:claim-sweep")

#: Who voids a claim whose number could not be taken.
NUMBERING_ACTOR = audit.Actor(name="service:numbering")

#: How long a request refused for a holder waits for the other request's number, to name it.
_NUMBER_WAIT_SECONDS = 2.0


class ClaimState(StrEnum):
    """Where a claim stands."""

    PENDING = "pending"
    ISSUED = "issued"
    VOID = "void"


class IssuanceClaim(Base):
    """A licence number handed out to one issuance, until it is issued or void."""

    __tablename__ = "issuance_claims"
    __table_args__ = (
        UniqueConstraint("department_id", "type_code", "number"),
        Index(
            "uq_issuance_claims_pending_holder",
            "department_id",
            "type_code",
            "holder_code",
            unique=True,
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
        Index("ix_issuance_claims_state", "state", "created_at"),
        Index("ix_issuance_claims_key", "client_id", "idempotency_key"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    """The id the certificate will have."""
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    type_code: Mapped[str] = mapped_column(ForeignKey("certificate_types.code"))
    number: Mapped[str | None] = mapped_column(String(64), default=None)
    """Set by its own statement once the claim committed; ``None`` for that instant, and for
    good when the process died in between or the counter was used up."""
    holder_code: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(8), default=ClaimState.PENDING.value)
    issued_at: Mapped[datetime]
    """The issue time the licence carries (read with the number, so that they agree)."""
    client_id: Mapped[str | None] = mapped_column(String(64), default=None)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[datetime]
    """By the service's clock: the sweep measures a claim's age with the same clock."""
    settled_at: Mapped[datetime | None] = mapped_column(default=None)
    reason: Mapped[str | None] = mapped_column(String(200), default=None)
    """Why a void claim is void."""


@dataclass(frozen=True)
class Reservation:
    """A pending claim, as the issuance that renders and seals it needs it."""

    certificate_id: str
    """The id the certificate will have."""
    number: str
    """Its licence number."""
    issued_at: datetime
    """Its issue time."""


class ClaimSettledError(Exception):
    """The claim was no longer pending when its registration came (another request with
    the same Idempotency-Key registered it, or it was voided)."""


def reserve(
    services: Services,
    *,
    department: Department,
    request: ValidatedRequest,
    today: date,
    idempotency: IdempotencyKey | None,
) -> Reservation | Issued:
    """Claim a number for ``request`` in one short transaction (the module's steps 1-4); an
    idempotent replay is answered instead."""
    holder_taken = False
    try:
        with db.transaction(services.sessions) as session:
            if idempotency is not None:
                replayed = claim_key(session, idempotency)
                if replayed is not None:
                    return replayed
            issued_at = services.clock.now()
            claim = IssuanceClaim(
                id=new_public_id("crt"),
                department_id=department.id,
                type_code=request.template.code,
                holder_code=request.holder_code,
                state=ClaimState.PENDING.value,
                issued_at=issued_at,
                created_at=issued_at,
                client_id=idempotency.client_id if idempotency else None,
                idempotency_key=idempotency.key if idempotency else None,
            )
            session.add(claim)
            try:
                session.flush()
            except IntegrityError:
                holder_taken = True
                raise
            refuse_second_licence(session, department=department, request=request, today=today)
            if request.supersedes is not None:
                supersedable(session, request.supersedes, department.id)
    except IntegrityError:
        if not holder_taken:
            raise
        _refuse_held(services, department=department, request=request, today=today)
    year = issued_at.astimezone(CHINA).year
    try:
        number = _give_number(
            services.engine, claim.id, number_stem(request.template, department, year)
        )
    except Exception as exc:
        _void_now(services, claim.id, f"numbering failed: {type(exc).__name__}", NUMBERING_ACTOR)
        raise
    if number is None:
        _void_now(services, claim.id, "licence numbers used up", NUMBERING_ACTOR)
        raise ConflictError(
            f"The {request.template.name} numbers of {year} are used up for this department."
        )
    return Reservation(certificate_id=claim.id, number=number, issued_at=issued_at)


def _give_number(engine: Engine, claim_id: str, stem: str) -> str | None:
    """Step 4: the pending claim's number, taken now unless a retry with the same key took it
    first; ``None`` when it has none (the counter is used up, or the claim is void)."""
    taken = take_number(engine, claim_id=claim_id, stem=stem)
    if taken is not None:
        metrics.NUMBER_LOCK.observe(taken.lock_seconds)
        return taken.number
    with Session(engine) as session:
        return session.scalar(select(IssuanceClaim.number).where(IssuanceClaim.id == claim_id))


def _refuse_held(
    services: Services, *, department: Department, request: ValidatedRequest, today: date
) -> NoReturn:
    """Another request claimed a licence for this holder: name it, or the licence it made."""
    deadline = time.monotonic() + _NUMBER_WAIT_SECONDS
    while True:
        with services.sessions() as session:
            refuse_second_licence(session, department=department, request=request, today=today)
            pending = session.scalars(
                select(IssuanceClaim).where(
                    IssuanceClaim.department_id == department.id,
                    IssuanceClaim.type_code == request.template.code,
                    IssuanceClaim.holder_code == request.holder_code,
                    IssuanceClaim.state == ClaimState.PENDING.value,
                )
            ).first()
        if pending is None or pending.number is not None or time.monotonic() > deadline:
            break
        # Claimed an instant ago: its number follows in a statement of its own.
        time.sleep(0.01)
    if pending is not None and pending.number is not None:
        raise LicenceExistsError(
            f"{request.holder_code} is being issued a {request.template.name} of this "
            f"department, number {pending.number} ({pending.id}); supersede it to renew or "
            "amend it.",
            certificate_id=pending.id,
            number=pending.number,
        )
    # The other request ended between the two reads (void, or its licence superseded), or
    # died before its number.
    raise ConflictError("Another request for this holder was in progress; send it again.")


def supersedable(
    session: Session, certificate_id: str, department_id: int, *, lock: bool = False
) -> Certificate:
    """The department's certificate ``certificate_id``, refused unless it may be superseded
    (valid or suspended); ``lock`` takes its row lock (when marking it)."""
    # Not its successor: a refused second supersede would otherwise load two successors
    # into a one-to-one relationship.
    old = session.get(
        Certificate,
        certificate_id,
        with_for_update=lock,
        options=[lazyload(Certificate.superseded_by)],
    )
    if old is None or old.department_id != department_id:
        raise NotFoundError(f"No certificate {certificate_id!r}.")
    if old.status not in (CertificateStatus.VALID, CertificateStatus.SUSPENDED):
        raise ConflictError(f"Certificate {old.number} is {old.status}; it cannot be superseded.")
    return old


def pending_claim(session: Session, idempotency: IdempotencyKey) -> Reservation | None:
    """The pending claim a request with this key (and this body) made, to be completed."""
    record = session.get(IdempotencyRecord, (idempotency.client_id, idempotency.key))
    if (
        record is None
        or record.request_hash != idempotency.request_hash
        or record.certificate_id is not None
    ):
        return None
    claim = session.scalars(
        select(IssuanceClaim).where(
            IssuanceClaim.client_id == idempotency.client_id,
            IssuanceClaim.idempotency_key == idempotency.key,
            IssuanceClaim.state == ClaimState.PENDING.value,
        )
    ).first()
    if claim is None:
        return None
    number = claim.number
    if number is None:
        # Its request died between the claim and its number, or is about to take it: whoever
        # comes first numbers the claim, once.
        department = session.get(Department, claim.department_id)
        assert department is not None
        year = claim.issued_at.astimezone(CHINA).year
        stem = number_stem(get_template(claim.type_code), department, year)
        engine = session.get_bind()
        assert isinstance(engine, Engine)
        number = _give_number(engine, claim.id, stem)
        if number is None:
            return None
    return Reservation(certificate_id=claim.id, number=number, issued_at=claim.issued_at)


def settle_claim(session: Session, reservation: Reservation, clock: Clock) -> None:
    """In the registering transaction: move the claim from pending to issued, or raise
    :class:`ClaimSettledError` when it is pending no more."""
    if not _leave_pending(
        session, reservation.certificate_id, state=ClaimState.ISSUED.value, settled_at=clock.now()
    ):
        raise ClaimSettledError(reservation.certificate_id)


def _leave_pending(session: Session, claim_id: str, **values: object) -> bool:
    """Move a claim out of pending (row-locked until the commit); ``False`` when another
    transaction moved it first."""
    moved = session.execute(
        update(IssuanceClaim)
        .where(IssuanceClaim.id == claim_id, IssuanceClaim.state == ClaimState.PENDING.value)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return getattr(moved, "rowcount", 0) == 1


def settled_outcome(services: Services, reservation: Reservation) -> Issued:
    """What a request whose claim was settled by another answers: that request's licence,
    or why the number is void."""
    with services.sessions() as session:
        claim = session.get(IssuanceClaim, reservation.certificate_id)
        assert claim is not None
        if claim.state == ClaimState.ISSUED.value:
            certificate = session.get(Certificate, claim.id)
            assert certificate is not None
            return Issued(certificate, replayed=True)
    raise ConflictError(
        f"Licence number {reservation.number} was void ({claim.reason}); send the request "
        "again for a new one."
    )


def void_claim(
    session: Session, certificate_id: str, *, reason: str, actor: audit.Actor, clock: Clock
) -> str | None:
    """Declare a pending claim void, in the audit trail and the log, and free its
    Idempotency-Key for a fresh attempt; its number, or ``None`` when it was not pending or
    had no number (then nothing was handed out: the claim row alone says why it is void)."""
    now = clock.now()
    if not _leave_pending(
        session, certificate_id, state=ClaimState.VOID.value, settled_at=now, reason=reason[:200]
    ):
        return None
    claim = session.get(IssuanceClaim, certificate_id)
    assert claim is not None
    if claim.client_id is not None:
        session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.client_id == claim.client_id,
                IdempotencyRecord.key == claim.idempotency_key,
                IdempotencyRecord.certificate_id.is_(None),
            )
        )
    if claim.number is None:
        return None
    event = audit.record(
        session,
        actor=actor,
        action="number.void",
        department_id=claim.department_id,
        target_type="number",
        target_id=claim.number,
        detail={"number": claim.number, "type": claim.type_code, "reason": reason},
    )
    event.created_at = now
    department = session.get(Department, claim.department_id)
    assert department is not None
    # No outbox event: nothing a subscriber was told of changed.
    append_entry(
        session,
        LogEntry.number_voided(
            department_code=department.code,
            number=claim.number,
            type_code=claim.type_code,
            reason=reason,
            time=now,
        ),
    )
    metrics.NUMBERS_VOIDED.inc()
    return claim.number


def void_after_failure(
    services: Services, reservation: Reservation, error: Exception, actor: audit.Actor
) -> None:
    """Void the claim of an issuance that failed after claiming. Should the registry be
    unreachable now, the sweep voids it later."""
    reason = f"issuance failed: {type(error).__name__}"
    _void_now(services, reservation.certificate_id, reason, actor)


def _void_now(services: Services, claim_id: str, reason: str, actor: audit.Actor) -> None:
    try:
        with db.transaction(services.sessions) as session:
            void_claim(session, claim_id, reason=reason, actor=actor, clock=services.clock)
    except Exception:
        log.exception("a failed issuance's claim could not be voided now; the sweep will")


def sweep_claims(services: Services) -> list[str]:
    """Void every claim pending for longer than ``issuance_claim_timeout_seconds``; the
    numbers voided."""
    timeout = services.settings.issuance_claim_timeout_seconds
    cutoff = services.clock.now() - timedelta(seconds=timeout)
    with services.sessions() as session:
        stale = session.scalars(
            select(IssuanceClaim.id).where(
                IssuanceClaim.state == ClaimState.PENDING.value,
                IssuanceClaim.created_at < cutoff,
            )
        ).all()
    voided: list[str] = []
    unnumbered = 0
    for claim_id in stale:
        # One transaction each: a retry may complete one of them meanwhile, and then wins.
        with db.transaction(services.sessions) as session:
            number = void_claim(
                session,
                claim_id,
                reason=f"abandoned: not registered within {timeout:g} s",
                actor=SWEEP_ACTOR,
                clock=services.clock,
            )
        if number is not None:
            voided.append(number)
        else:
            unnumbered += 1
    if voided:
        log.warning("abandoned licence numbers voided", extra={"numbers": voided})
    if unnumbered:
        log.warning("abandoned claims without a number voided", extra={"claims": unnumbered})
    return voided


class ClaimSweeper(PeriodicThread):
    """Voids abandoned claims (:func:`sweep_claims`) once when started, then periodically."""

    def __init__(self, *, services: Services) -> None:
        """Sweep ``services``' registry every tenth of the claim timeout (at most a minute)."""
        timeout = services.settings.issuance_claim_timeout_seconds
        super().__init__(name="claim-sweeper", tick_seconds=min(60.0, timeout / 10), log=log)
        self._services = services

    def step(self) -> None:
        """Void the claims pending past the timeout."""
        sweep_claims(self._services)

    def start(self) -> None:
        """Sweep once now (what a crashed predecessor left), then start the thread."""
        try:
            self.step()
        except Exception:
            log.exception("the start-up sweep of licence number claims failed")
        super().start()
