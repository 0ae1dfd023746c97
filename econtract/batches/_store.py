"""A batch's registry side: submit its rows, process one row, read its progress and results,
cancel it.

Each row is issued exactly once, whatever fails, by two rules:

1. A row's issuance carries an idempotency key derived from the batch and the row
   (``batch:<batch id>``, ``<row>``), so issuing it again, after a redelivery or by a second
   worker, answers the certificate issued the first time instead of issuing another.
2. The row is marked only after its issuance committed, in a transaction of its own. A crash
   between the two leaves the row ``queued`` with its certificate issued: the redelivered
   message issues again, gets the first certificate back from the idempotency record, and
   marks the row. A row is never marked issued without its certificate, and a certificate
   never gets a second row's worth of twins.

Workers may therefore take the same row twice (an at-least-once queue redelivers what a dead
worker held); the second one converges on the first one's certificate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from econtract import audit, db
from econtract.departments import get_department
from econtract.errors import (
    ConflictError,
    EContractError,
    InvalidInputError,
    NotFoundError,
)
from econtract.issuance import TEMPLATES, IdempotencyKey, IssueRequest, issue_certificate
from econtract.issuance import request_hash as issue_request_hash
from econtract.models import Batch, BatchRow, Department, IdempotencyRecord, new_public_id
from econtract.services import Services

#: The states of a row; ``queued`` is the only one a worker acts on.
STATES = ("queued", "issued", "failed", "cancelled")

#: How many times a row's issuance is tried again at once when it met a conflict whose
#: idempotency record is gone (a concurrent attempt that rolled back) before the conflict is
#: taken as the row's own answer (the holder already holds a licence of the type, …).
_CONFLICT_ATTEMPTS = 3


class RowBusyError(EContractError):
    """Another worker is issuing this row right now; the message is to be tried again later."""

    code = "batch-row-busy"
    title = "The row is being issued by another worker."


@dataclass(frozen=True)
class ParsedRow:
    """One row of an upload: its number and its fields, or why it cannot be a request."""

    row: int
    """The row's number in the upload."""
    fields: dict[str, Any] = field(default_factory=dict)
    """The fields, empty cells left out."""
    errors: tuple[tuple[str, str], ...] = ()
    """Why the row failed before any issuance: ``(JSON pointer, message)`` pairs."""


@dataclass(frozen=True)
class Submitted:
    """A batch as submitted; ``replayed`` when an earlier submission with the key made it."""

    batch_id: str
    queued_rows: tuple[int, ...]
    """The rows a runner is to process (none for a replay: they were handed out before)."""
    replayed: bool = False


@dataclass(frozen=True)
class Progress:
    """How far a batch has come."""

    batch_id: str
    type_code: str
    total: int
    counts: dict[str, int]
    """Rows per state (every state of :data:`STATES`, zero included)."""
    created_at: datetime
    cancelled_at: datetime | None
    rows_per_second: float | None
    """Rows finished (issued or failed) per second since the batch was submitted."""
    eta_seconds: float | None
    """The queued rows at that rate; ``None`` before the first row finished."""

    @property
    def done(self) -> bool:
        """Whether no row is queued any more."""
        return self.counts["queued"] == 0


def batch_owner(batch_id: str) -> str:
    """The idempotency records' owner for a batch's rows (fits the records' 64 characters)."""
    return f"batch:{batch_id}"


def submit_batch(
    services: Services,
    *,
    department_code: str,
    client_id: str,
    idempotency_key: str,
    type_code: str,
    rows: Sequence[ParsedRow],
    body_digest: str,
) -> Submitted:
    """Register a batch and its rows, in one transaction; rows with errors are failed at once.

    The same client and key with the same body (``body_digest`` of the upload and the type)
    answer the first batch; with another body they are refused.
    """
    if type_code not in TEMPLATES:
        raise InvalidInputError(
            f"There is no certificate type {type_code!r}.", errors=[("/type", "unknown type")]
        )
    if not rows:
        raise InvalidInputError("The upload holds no rows.", errors=[("/rows", "empty")])
    digest = hashlib.sha256(f"{type_code}\n{body_digest}".encode()).hexdigest()
    with db.transaction(services.sessions) as session:
        earlier = _find(session, client_id, idempotency_key)
        if earlier is not None:
            return _replay(earlier, digest)
        department = get_department(session, department_code)
        now = services.clock.now()
        batch = Batch(
            id=new_public_id("bat"),
            department_id=department.id,
            client_id=client_id,
            idempotency_key=idempotency_key,
            request_hash=digest,
            type_code=type_code,
            total=len(rows),
            created_at=now,
        )
        session.add(batch)
        session.flush()
        session.add_all(
            BatchRow(
                batch_id=batch.id,
                row=r.row,
                fields=r.fields,
                state="failed" if r.errors else "queued",
                errors=[list(e) for e in r.errors] or None,
                finished_at=now if r.errors else None,
            )
            for r in rows
        )
        try:
            session.flush()
        except IntegrityError:
            # The same key submitted at the same moment by a retrying client.
            raise ConflictError("A batch with this Idempotency-Key is being submitted.") from None
        batch_id = batch.id
    return Submitted(batch_id, tuple(r.row for r in rows if not r.errors))


def _find(session: Session, client_id: str, key: str) -> Batch | None:
    return session.scalars(
        select(Batch).where(Batch.client_id == client_id, Batch.idempotency_key == key)
    ).one_or_none()


def _replay(batch: Batch, digest: str) -> Submitted:
    if batch.request_hash != digest:
        raise InvalidInputError(
            "This Idempotency-Key was used with another batch; use a new key.",
            errors=[("/", "Idempotency-Key reused with a different body")],
        )
    return Submitted(batch.id, (), replayed=True)


def get_batch(session: Session, *, batch_id: str, department_id: int) -> Batch:
    """A batch of the department; another department's is as absent as one never made."""
    batch = session.get(Batch, batch_id)
    if batch is None or batch.department_id != department_id:
        raise NotFoundError(f"No batch {batch_id!r}.")
    return batch


def batch_progress(services: Services, *, batch_id: str, department_id: int) -> Progress:
    """The batch's counts per state, its rate so far and the time its queued rows need."""
    with services.sessions() as session:
        batch = get_batch(session, batch_id=batch_id, department_id=department_id)
        counts = dict.fromkeys(STATES, 0)
        for state, count in session.execute(
            select(BatchRow.state, func.count())
            .where(BatchRow.batch_id == batch_id)
            .group_by(BatchRow.state)
        ):
            counts[state] = count
        last = session.scalar(
            select(func.max(BatchRow.finished_at)).where(
                BatchRow.batch_id == batch_id, BatchRow.state.in_(("issued", "failed"))
            )
        )
    finished = counts["issued"] + counts["failed"]
    rate = eta = None
    if last is not None and finished:
        # The rate of the rows done so far, from the submission to the latest row finished:
        # what a person watching the batch expects the rest to take.
        elapsed = max((last - batch.created_at).total_seconds(), 1e-3)
        rate = finished / elapsed
        eta = counts["queued"] / rate
    return Progress(
        batch_id=batch.id,
        type_code=batch.type_code,
        total=batch.total,
        counts=counts,
        created_at=batch.created_at,
        cancelled_at=batch.cancelled_at,
        rows_per_second=rate,
        eta_seconds=eta,
    )


def batch_results(services: Services, *, batch_id: str, department_id: int) -> list[BatchRow]:
    """Every row of the batch, in row order."""
    with services.sessions() as session:
        get_batch(session, batch_id=batch_id, department_id=department_id)
        return list(
            session.scalars(
                select(BatchRow).where(BatchRow.batch_id == batch_id).order_by(BatchRow.row)
            )
        )


def cancel_batch(services: Services, *, batch_id: str, department_id: int) -> int:
    """Cancel the rows not yet issued; the number cancelled. A row being issued right now
    still ends issued: its certificate exists, and the row says so."""
    with db.transaction(services.sessions) as session:
        batch = get_batch(session, batch_id=batch_id, department_id=department_id)
        if batch.cancelled_at is None:
            batch.cancelled_at = services.clock.now()
        result = session.execute(
            update(BatchRow)
            .where(BatchRow.batch_id == batch_id, BatchRow.state == "queued")
            .values(state="cancelled", finished_at=services.clock.now())
        )
        return int(getattr(result, "rowcount", 0) or 0)


def queued_rows(services: Services, *, batch_id: str | None = None) -> list[tuple[str, int]]:
    """The queued rows of one batch, or of every batch oldest first (what a restarted runner
    resumes)."""
    query = (
        select(BatchRow.batch_id, BatchRow.row)
        .join(Batch, Batch.id == BatchRow.batch_id)
        .where(BatchRow.state == "queued")
        .order_by(Batch.created_at, BatchRow.row)
    )
    if batch_id is not None:
        query = query.where(BatchRow.batch_id == batch_id)
    with services.sessions() as session:
        return [(b, r) for b, r in session.execute(query)]


@dataclass(frozen=True)
class Waiting:
    """A batch that still has queued rows, and when it last moved."""

    batch_id: str
    created_at: datetime
    last_finished_at: datetime | None
    """When its latest row was issued or failed; ``None`` before the first."""


def waiting_batches(services: Services) -> list[Waiting]:
    """Every batch with a queued row, oldest first (what the re-send sweep looks at)."""
    with services.sessions() as session:
        ids = select(BatchRow.batch_id).where(BatchRow.state == "queued").distinct()
        found = session.execute(
            select(Batch.id, Batch.created_at, func.max(BatchRow.finished_at))
            .join(BatchRow, BatchRow.batch_id == Batch.id)
            .where(Batch.id.in_(ids))
            .group_by(Batch.id, Batch.created_at)
            .order_by(Batch.created_at)
        ).all()
    return [Waiting(b, created, last) for b, created, last in found]


def fail_row(services: Services, *, batch_id: str, row: int, code: str, message: str) -> str:
    """Fail a queued row that could not be issued for a reason of the service, not of its
    fields (``code`` names the kind, ``message`` says it to a person); the row's state
    afterwards. An issued or cancelled row keeps its state."""
    return _finish(services, batch_id, row, state="failed", errors=[("/", message, code)])


def process_row(services: Services, *, batch_id: str, row: int) -> str:
    """Issue one queued row and mark it; the row's state afterwards.

    Raises :class:`RowBusyError` while another worker holds the row's idempotency key: the
    caller tries again later, and then gets that worker's certificate.
    """
    with services.sessions() as session:
        batch_row = session.get(BatchRow, (batch_id, row))
        if batch_row is None:
            raise NotFoundError(f"No row {row} in batch {batch_id!r}.")
        if batch_row.state != "queued":
            return batch_row.state
        batch = session.get(Batch, batch_id)
        assert batch is not None
        department = session.get(Department, batch.department_id)
        assert department is not None
        department_code = department.code
        fields = dict(batch_row.fields)
        type_code, client_id, department_id = batch.type_code, batch.client_id, batch.department_id
    key = IdempotencyKey(
        batch_owner(batch_id),
        str(row),
        issue_request_hash({"type": type_code, "fields": fields}),
    )
    actor = audit.Actor(name=f"client:{client_id}", department_id=department_id)
    for attempt in range(1, _CONFLICT_ATTEMPTS + 1):
        try:
            issued = issue_certificate(
                services,
                department_code=department_code,
                request=IssueRequest(type_code=type_code, fields=fields),
                actor=actor,
                idempotency=key,
            )
        except InvalidInputError as exc:
            # Issuance points into its request body ({"fields": …}); a row is the fields.
            errors = [(p.removeprefix("/fields") or "/", m) for p, m in exc.errors]
            errors = errors or [("/", exc.message)]
            return _finish(services, batch_id, row, state="failed", errors=errors)
        except ConflictError as exc:
            if _key_taken(services, key):
                raise RowBusyError(f"Row {row} of {batch_id} is being issued.") from None
            if attempt == _CONFLICT_ATTEMPTS:
                return _finish(services, batch_id, row, state="failed", errors=[("/", exc.message)])
        except EContractError as exc:
            return _finish(services, batch_id, row, state="failed", errors=[("/", exc.message)])
        else:
            certificate = issued.certificate
            return _finish(
                services,
                batch_id,
                row,
                state="issued",
                certificate=(certificate.id, certificate.number),
            )
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def _key_taken(services: Services, key: IdempotencyKey) -> bool:
    # A record with no certificate yet: another attempt holds the key and has not finished.
    with services.sessions() as session:
        record = session.get(IdempotencyRecord, (key.client_id, key.key))
        return record is not None


def _finish(
    services: Services,
    batch_id: str,
    row: int,
    *,
    state: str,
    certificate: tuple[str, str] | None = None,
    errors: Sequence[tuple[str, ...]] | None = None,
) -> str:
    # An issued row is marked whatever it says now: a cancellation that came while its
    # certificate was being issued cannot unissue it. A failure only replaces ``queued``.
    allowed = ("queued", "cancelled") if state == "issued" else ("queued",)
    with db.transaction(services.sessions) as session:
        batch_row = session.get(BatchRow, (batch_id, row), with_for_update=True)
        assert batch_row is not None
        if batch_row.state in allowed:
            batch_row.state = state
            batch_row.finished_at = services.clock.now()
            if certificate is not None:
                batch_row.certificate_id, batch_row.certificate_number = certificate
            batch_row.errors = [list(e) for e in errors] if errors else None
        return batch_row.state
