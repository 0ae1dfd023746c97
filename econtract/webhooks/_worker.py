"""The webhook worker: the outbox's consumer, run in the service or by the command line.

A round sweeps for licences that expired, for envelope deadlines that passed or are near,
and for envelope completions a crash left undone (at most once a minute in the service),
fans new outbox rows out to the deliveries they owe, and sends the deliveries that are due,
each step in short transactions of its own. Every worker of every process may run rounds
at the same time: the claims (:mod:`econtract.webhooks._fanout`,
:mod:`econtract.webhooks._deliver`, the envelope's row locks and completion claim) keep
them from doing the same work twice.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, select

from econtract import db
from econtract.clock import Clock
from econtract.envelopes import finish_completions, sweep_deadlines
from econtract.models import Delivery, OutboxEvent
from econtract.periodic import PeriodicThread
from econtract.services import Services
from econtract.supervision import evaluate_warnings, flush_scans, roll_up
from econtract.webhooks._deliver import deliver_due
from econtract.webhooks._fanout import fan_out, sweep_expired

log = logging.getLogger("econtract.webhooks")

#: How often the service's worker looks for expired licences and envelope deadlines.
SWEEP_SECONDS = 60.0

#: How often the service's worker adds the scans counted in memory to the registry (and at
#: every sweep, and when it stops). A flush is a write, and on SQLite any write makes every
#: process forget the answers its read connections remember (the QR page's verdicts, the log
#: proofs of an uploaded record; see :meth:`econtract.db.ReadConnections.run_remembered`):
#: flushed every tick, the scans of the QR page itself emptied what it answers from twice a
#: second with two workers, and each uploaded record's proofs were read and checked again.
SCAN_FLUSH_SECONDS = 10.0


@dataclass(frozen=True, kw_only=True)
class RoundReport:
    """What one round did."""

    expired: int
    """``certificate.expired`` outbox rows written."""
    envelopes_expired: int = 0
    """Envelopes expired because their open step's deadline passed."""
    reminded: int = 0
    """``envelope.reminder`` outbox rows written."""
    completions: int = 0
    """Envelope completions finished that a crash (or a failure) had left undone."""
    warnings: int = 0
    """Supervision's early warnings raised."""
    rolled_up: int = 0
    """Days of the overview rolled up (the days over since the last round that rolled)."""
    owed: int
    """Deliveries written by the fan-out."""
    attempted: int
    """Delivery attempts made."""
    delivered: int
    """Attempts the receiver took."""


def run_round(
    services: Services, *, clock: Clock | None = None, sweep: bool = True, flush: bool = True
) -> RoundReport:
    """One round of the worker (see the module's docstring), dated by ``clock`` (the
    service's when unset; the envelopes' deadlines are always the service's clock's, as the
    envelope's own use cases judge them). ``flush`` adds the scans counted in memory to the
    registry first (always when ``sweep``: the warnings and the roll-up read them)."""
    clock = clock or services.clock
    expired = envelopes_expired = reminded = completions = warnings = rolled_up = 0
    if flush or sweep:
        # The scans this process counted since the last flush (cheap when there were none).
        flush_scans(services)
    if sweep:
        with db.transaction(services.sessions) as session:
            expired = sweep_expired(session, settings=services.settings, clock=clock)
        envelopes_expired, reminded = sweep_deadlines(services)
        # Before the fan-out, so that a completion finished now is told in this round.
        completions = finish_completions(services)
        # After the deadlines' sweep, so that an envelope it expired is warned of as past.
        warnings = evaluate_warnings(services)
        # After the counters' flush: the day's last scans are in its roll-up.
        rolled_up = roll_up(services, clock=clock)
    # Most rounds find nothing to fan out and nothing due: asked with a read first, they take
    # no write transaction (the write lock, the process's write queue) and run no ORM work
    # beside the requests every tick.
    pending, due = _work_waiting(services, clock.now())
    owed = 0
    if pending:
        with db.transaction(services.sessions) as session:
            owed = fan_out(session, settings=services.settings, clock=clock)
    outcomes = deliver_due(services, clock=clock) if due or owed else []
    return RoundReport(
        expired=expired,
        envelopes_expired=envelopes_expired,
        reminded=reminded,
        completions=completions,
        warnings=warnings,
        rolled_up=rolled_up,
        owed=owed,
        attempted=len(outcomes),
        delivered=sum(o.delivered for o in outcomes),
    )


#: Whether any outbox row waits for its fan-out (the fan-out's own condition).
_PENDING = select(OutboxEvent.id).where(OutboxEvent.delivered_at.is_(None)).limit(1)
#: Whether any delivery may be due (the claim's condition, less its join: a superset).
_DUE = (
    select(Delivery.id)
    .where(
        Delivery.status.in_(("pending", "failed")),
        Delivery.next_attempt_at <= bindparam("now"),
    )
    .limit(1)
)


def _work_waiting(services: Services, now: datetime) -> tuple[bool, bool]:
    """Whether an outbox row waits for its fan-out, and whether a delivery may be due, read
    on the thread's read connection (both true when the SQLite file is locked for a moment:
    the round then looks in its transactions, as it always did)."""

    def read(conn: Connection) -> tuple[bool, bool]:
        pending = conn.execute(_PENDING).first() is not None
        return pending, conn.execute(_DUE, {"now": now}).first() is not None

    try:
        return services.reads.run(read)
    except db.ReadBusyError:
        return True, True


class WebhookWorker(PeriodicThread):
    """A daemon thread that runs a round every tick, like the tree-head publisher."""

    def __init__(
        self,
        *,
        services: Services,
        tick_seconds: float,
        flush_seconds: float = SCAN_FLUSH_SECONDS,
    ) -> None:
        """Run rounds on ``services`` every ``tick_seconds``, adding the scans counted in
        memory to the registry every ``flush_seconds``."""
        super().__init__(name="webhooks", tick_seconds=tick_seconds, log=log)
        self._services = services
        self._flush_seconds = flush_seconds
        self._last_sweep = self._last_flush = float("-inf")

    def step(self) -> None:
        """One round; the expiry sweep at most every :data:`SWEEP_SECONDS`, the scans' flush
        at most every ``flush_seconds`` (and with every sweep)."""
        now = time.monotonic()
        sweep = now - self._last_sweep >= SWEEP_SECONDS
        flush = sweep or now - self._last_flush >= self._flush_seconds
        run_round(self._services, sweep=sweep, flush=flush)
        if flush:
            self._last_flush = now
        if sweep:
            self._last_sweep = time.monotonic()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the rounds, then add the scans counted since the last flush to the registry
        (a process that stops keeps its counts; one that dies loses them)."""
        super().stop(timeout)
        try:
            flush_scans(self._services)
        except Exception:
            log.exception("the last scan counts were not written")
