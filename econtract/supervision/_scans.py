"""Counting the answers of QR scans and uploaded verifications, for supervision.

The QR page is the service's busiest: a write per scan would cost it more than its read. A
scan is counted in this process's memory (a dictionary under a lock, no I/O) and the counts
are added to the day's rows (:class:`ScanCount`, one per day, channel, subject and answer,
upserted) by :func:`flush_scans`, which the webhook worker calls every few seconds
(``SCAN_FLUSH_SECONDS`` of :mod:`econtract.webhooks._worker`) and when it stops. A process
that dies loses the counts taken since its last flush: the figures are for supervision, not
evidence.

Each flush is a write to the registry, and on SQLite every write makes every process forget
the answers its read connections remember (the QR page's verdicts, a record's log proofs:
:meth:`econtract.db.ReadConnections.run_remembered`); counting in memory and flushing
seldom keeps the scans themselves from emptying what the QR page answers from.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from datetime import date

from sqlalchemy import Executable, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from econtract import db
from econtract.clock import Clock
from econtract.issuance import read_qr_token
from econtract.models import Certificate
from econtract.services import Services
from econtract.supervision._models import ScanCount
from econtract.tokens import TokenError

#: The answers that count as failed checks: the QR page's and the verification report's.
FAILED_ANSWERS = ("FORGED", "UNKNOWN", "INVALID", "MODIFIED")

_Key = tuple[date, str, str, str]

_pending: Counter[_Key] = Counter()
_lock = threading.Lock()


def count_scan(clock: Clock, *, channel: str, subject: str | None, verdict: str) -> None:
    """Count one answer of ``channel`` (``qr`` or ``verify``) about ``subject`` (the
    certificate or record id, ``None`` when the code or file names none)."""
    key = (clock.today(), channel, (subject or "")[:128], verdict)
    with _lock:
        _pending[key] += 1


def flush_scans(services: Services) -> int:
    """Add the counts taken since the last flush to the day's rows; return how many rows
    were written."""
    with _lock:
        taken = dict(_pending)
        _pending.clear()
    if not taken:
        return 0
    try:
        with db.transaction(services.sessions) as session:
            _upsert(session, taken)
    except Exception:
        # Given back, to be added at the next tick.
        with _lock:
            _pending.update(taken)
        raise
    return len(taken)


def _upsert(session: Session, taken: dict[_Key, int]) -> None:
    subjects = {subject for _, _, subject, _ in taken if subject}
    departments = dict(
        session.execute(
            select(Certificate.id, Certificate.department_id).where(Certificate.id.in_(subjects))
        ).all()
    )
    rows = [
        {
            "day": day,
            "channel": channel,
            "subject": subject,
            "verdict": verdict,
            "department_id": departments.get(subject),
            "count": count,
        }
        # In key order, so that two processes flushing at once take the rows' locks in one
        # order.
        for (day, channel, subject, verdict), count in sorted(taken.items())
    ]
    session.connection().execute(_upsert_statement(session.get_bind().dialect.name), rows)


_UPSERTS: dict[str, Executable] = {}


def _upsert_statement(dialect: str) -> Executable:
    """The dialect's upsert of one counter row, made once: one statement executed for every
    row of a flush, rather than a statement built, compiled and cached for each (the flush
    runs in the serving processes, beside the requests)."""
    statement = _UPSERTS.get(dialect)
    if statement is None:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(ScanCount)
        statement = _UPSERTS[dialect] = stmt.on_conflict_do_update(
            index_elements=["day", "channel", "subject", "verdict"],
            set_={"count": ScanCount.count + stmt.excluded.count},
        )
    return statement


def count_qr_answer(
    services: Services, token: str, verdict: str, certificate_id: str | None
) -> None:
    """Count a QR page's answer: about the licence it showed, or, for a FORGED or UNKNOWN
    answer, the licence the token names (read again: a rare answer, and a signature check)."""
    subject = certificate_id
    if subject is None:
        with contextlib.suppress(TokenError):
            subject = read_qr_token(services.pki.token_signer, token).certificate_id
    count_scan(services.clock, channel="qr", subject=subject, verdict=verdict)
