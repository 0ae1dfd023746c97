"""The worker adds the scans counted in memory to the registry every few seconds and when it
stops, so that the scans do not make every process forget the QR page's remembered verdicts
on every tick; a status change is still shown at once."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, select

from econtract import db
from econtract.certificates import change_status
from econtract.issuance import _qrcheck, check_qr
from econtract.services import Services
from econtract.supervision import count_qr_answer
from econtract.supervision._models import ScanCount
from econtract.webhooks import WebhookWorker
from tests.factories import OPERATOR
from tests.licences import issue_example, qr_token

# A flush interval no test reaches: only the first round and stop() flush.
_NEVER = 3600.0


def scans_of(services: Services, subject: str) -> int:
    with services.sessions() as session:
        counts = session.scalars(
            select(ScanCount.count).where(ScanCount.subject == subject, ScanCount.channel == "qr")
        ).all()
    return sum(counts)


def test_the_worker_flushes_scans_at_its_interval_and_when_it_stops(
    initialised: Services,
) -> None:
    certificate = issue_example(initialised)
    worker = WebhookWorker(services=initialised, tick_seconds=_NEVER, flush_seconds=_NEVER)
    count_qr_answer(initialised, "token", "VALID", certificate.id)
    worker.step()  # the first round flushes
    assert scans_of(initialised, certificate.id) == 1
    count_qr_answer(initialised, "token", "VALID", certificate.id)
    count_qr_answer(initialised, "token", "VALID", certificate.id)
    worker.step()  # the next flush is not due yet
    assert scans_of(initialised, certificate.id) == 1
    worker.stop()
    assert scans_of(initialised, certificate.id) == 3


def test_rounds_between_flushes_keep_the_verdicts_and_a_status_change_shows_at_once(
    initialised: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    certificate = issue_example(initialised)
    token = qr_token(initialised, certificate)
    worker = WebhookWorker(services=initialised, tick_seconds=_NEVER, flush_seconds=_NEVER)
    worker.step()  # the first round (its flush and sweep) behind us
    reads: list[str] = []
    lookup = _qrcheck._lookup

    def counted(conn: Connection, certificate_id: str) -> object:
        reads.append(certificate_id)
        return lookup(conn, certificate_id)

    monkeypatch.setattr(_qrcheck, "_lookup", counted)
    for _ in range(3):
        check = check_qr(initialised, token)
        count_qr_answer(initialised, token, check.verdict.value, check.certificate_id)
        worker.step()
    assert check.verdict.value == "VALID"
    # Read once, then answered from what the connection remembers: the rounds wrote nothing.
    # (Only SQLite says cheaply whether the registry changed; elsewhere every answer reads.)
    embedded = db.is_embedded(initialised.engine)
    assert reads == [certificate.id] * (1 if embedded else 3)
    change_status(
        initialised,
        certificate_id=certificate.id,
        action="suspend",
        reason="inspection",
        actor=OPERATOR,
    )
    assert check_qr(initialised, token).verdict.value == "SUSPENDED"
    assert len(reads) == (2 if embedded else 4)
    worker.stop()
    assert scans_of(initialised, certificate.id) == 3
