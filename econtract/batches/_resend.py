"""Rows whose message never reached the broker, or was lost there, are sent again.

A batch's rows are committed to the registry before their messages are sent (after the 202),
so a process that dies in between, or a broker that refuses a send, leaves rows ``queued``
with no message; a broker that loses its data (a Redis restarted without persistence) does
the same to rows already sent. Either way nothing would ever take them.

When every message of a batch has been sent, the sender writes a mark beside the queue in the
broker's Redis (:func:`mark_sent`): the mark lives where the messages live, so a broker that
loses its messages loses the marks with them. The sweep (:func:`resend_rows`, run by every
``econtract worker`` at its start and then every ``ECONTRACT_BATCH_RESEND_SECONDS``) sends
again the queued rows of

1. each batch without a mark, submitted longer ago than that time (never confirmed sent), and
2. every waiting batch, when none of them has moved for that time: no row issued or failed,
   no batch submitted or sent. A worker is running the sweep, so the queue is served; rows
   that still do not move have no message. While some batch's rows are being issued, the
   others wait their turn and are left alone.

A lock in Redis lets one worker's sweep run at a time, and each sweep marks what it sent, so
several workers do not multiply the messages. A row sent twice is issued once
(:mod:`econtract.batches._store`), so sending again is always safe, only not free.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from econtract.batches._store import queued_rows, waiting_batches
from econtract.periodic import PeriodicThread
from econtract.services import Services

if TYPE_CHECKING:
    from redis import Redis

log = logging.getLogger("econtract.batches")

#: How long a mark is kept: far longer than any batch waits.
MARK_SECONDS = 30 * 86_400
#: How long one sweep may hold the lock (it releases it when done).
LOCK_SECONDS = 120


def _mark_key(queue: str, batch_id: str) -> str:
    return f"econtract:batch-sent:{queue}:{batch_id}"


def mark_sent(client: Redis, *, queue: str, batch_id: str, at: datetime) -> None:
    """Record that every queued row of the batch was accepted by the broker at ``at``."""
    client.set(_mark_key(queue, batch_id), at.isoformat(), ex=MARK_SECONDS)


def _marked_at(value: bytes | str | None) -> datetime | None:
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else value
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None  # not a mark of ours: as if unsent


def resend_rows(
    services: Services,
    client: Redis,
    send: Callable[[str, int], None],
) -> int:
    """Send again, with ``send(batch_id, row)``, the queued rows whose messages are missing
    (the module's rules); the number of rows sent."""
    settings = services.settings
    queue = settings.batch_queue
    lock = f"econtract:batch-resend:{queue}"
    if not client.set(lock, "1", nx=True, ex=LOCK_SECONDS):
        return 0  # another worker is sweeping
    try:
        waiting = waiting_batches(services)
        if not waiting:
            return 0
        now = services.clock.now()
        limit = timedelta(seconds=settings.batch_resend_seconds)
        marks: list[bytes | None] = client.mget([_mark_key(queue, w.batch_id) for w in waiting])  # type: ignore[assignment]
        sent = {w.batch_id: _marked_at(m) for w, m in zip(waiting, marks, strict=True)}
        moved = max(
            max(t for t in (w.created_at, w.last_finished_at, sent[w.batch_id]) if t is not None)
            for w in waiting
        )
        stalled = now - moved >= limit
        count = 0
        for w in waiting:
            if not stalled and (sent[w.batch_id] is not None or now - w.created_at < limit):
                continue
            rows = queued_rows(services, batch_id=w.batch_id)
            for batch_id, row in rows:
                send(batch_id, row)
            mark_sent(client, queue=queue, batch_id=w.batch_id, at=now)
            log.warning(
                "batch rows sent again",
                extra={"batch": w.batch_id, "rows": len(rows), "stalled": stalled},
            )
            count += len(rows)
        return count
    finally:
        client.delete(lock)


class ResendSweeper(PeriodicThread):
    """Runs :func:`resend_rows` every ``ECONTRACT_BATCH_RESEND_SECONDS`` in a worker."""

    def __init__(self, services: Services, client: Redis, send: Callable[[str, int], None]) -> None:
        """A sweeper of ``services``' registry that sends with ``send``."""
        super().__init__(
            name="batch-resend", tick_seconds=services.settings.batch_resend_seconds, log=log
        )
        self._services = services
        self._client = client
        self._send = send

    def step(self) -> None:
        """One sweep."""
        resend_rows(self._services, self._client, self._send)
