"""Supervision's early warnings: each rule raises its warning once on a registry arranged
for it and none on one without; supervisors acknowledge and close them."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from econtract import db
from econtract.clock import CHINA, FixedClock
from econtract.models import AuditEvent, Certificate, OutboxEvent, StatusEvent, UsageRecord
from econtract.services import Services
from econtract.supervision import (
    Supervisor,
    WarningClosedError,
    WarningStatus,
    acknowledge,
    close,
    count_scan,
    evaluate_warnings,
    flush_scans,
    list_warnings,
)
from tests.licences import issue_example

# A Wednesday, 10:00 in China: inside office hours.
NOW = datetime(2026, 11, 18, 10, 0, tzinfo=CHINA)
SUPERVISOR = Supervisor(name="console:wang")


@pytest.fixture
def registry(initialised: Services) -> Services:
    """The initialised registry with one licence issued in office hours, clock at NOW."""
    initialised.clock = FixedClock(NOW)
    licence = issue_example(initialised)
    with db.transaction(initialised.sessions) as session:
        row = session.get(Certificate, licence.id)
        assert row is not None
        row.issued_at = NOW - timedelta(hours=1)
    return initialised


def _licence(services: Services) -> Certificate:
    with services.sessions() as session:
        return session.scalars(select(Certificate)).one()


def _rules(services: Services) -> list[str]:
    return sorted(w.rule_id for w in list_warnings(services))


def test_a_quiet_registry_raises_no_warning(registry: Services) -> None:
    assert evaluate_warnings(registry) == 0
    assert list_warnings(registry) == []


def test_a_revocation_spike_raises_one_warning_recorded_in_the_outbox(registry: Services) -> None:
    licence = _licence(registry)
    with db.transaction(registry.sessions) as session:
        # One revocation a week in the four weeks before, then six today.
        for days in (3, 10, 17, 24):
            session.add(_revoked(licence.id, NOW - timedelta(days=days)))
        for minutes in range(6):
            session.add(_revoked(licence.id, NOW - timedelta(minutes=minutes)))
    assert evaluate_warnings(registry) == 1
    assert evaluate_warnings(registry) == 0
    [warning] = list_warnings(registry)
    assert (warning.rule_id, warning.department_id, warning.window) == (
        "WR-REVOCATION-SPIKE",
        licence.department_id,
        "2026-11-18",
    )
    assert "6" in warning.description_zh
    with registry.sessions() as session:
        types = session.scalars(
            select(OutboxEvent.type).where(OutboxEvent.subject_id == warning.id)
        ).all()
    assert types == ["warning.raised"]


def test_revocations_at_the_usual_rate_raise_no_warning(registry: Services) -> None:
    licence = _licence(registry)
    with db.transaction(registry.sessions) as session:
        for days in range(1, 29):
            session.add(_revoked(licence.id, NOW - timedelta(days=days)))
            session.add(_revoked(licence.id, NOW - timedelta(days=days, hours=1)))
        for minutes in range(5):
            session.add(_revoked(licence.id, NOW - timedelta(minutes=minutes)))
    # Five today against a mean of two: below three times the usual rate.
    assert evaluate_warnings(registry) == 0


def test_issuance_outside_office_hours_raises_one_warning_per_department_and_day(
    registry: Services,
) -> None:
    licence = _licence(registry)
    with db.transaction(registry.sessions) as session:
        row = session.get(Certificate, licence.id)
        assert row is not None
        row.issued_at = NOW.replace(hour=7)
    assert evaluate_warnings(registry) == 1
    assert evaluate_warnings(registry) == 0
    [warning] = list_warnings(registry)
    assert (warning.rule_id, warning.window) == ("WR-OFF-HOURS", "2026-11-18")


def test_many_forged_answers_for_one_licence_raise_one_warning(registry: Services) -> None:
    for _ in range(4):
        count_scan(registry.clock, channel="qr", subject="cert_x", verdict="FORGED")
        count_scan(registry.clock, channel="qr", subject="cert_y", verdict="VALID")
    flush_scans(registry)
    assert evaluate_warnings(registry) == 0
    count_scan(registry.clock, channel="verify", subject="cert_x", verdict="UNKNOWN")
    flush_scans(registry)
    assert evaluate_warnings(registry) == 1
    assert evaluate_warnings(registry) == 0
    [warning] = list_warnings(registry)
    assert (warning.rule_id, warning.subject_id, warning.department_id) == (
        "WR-FAILED-SCANS",
        "cert_x",
        None,
    )


def test_a_licence_used_after_its_revocation_raises_one_warning(registry: Services) -> None:
    licence = _licence(registry)
    with db.transaction(registry.sessions) as session:
        session.add(_use(licence, NOW - timedelta(hours=2), "use_before"))
        row = session.get(Certificate, licence.id)
        assert row is not None
        row.status = "revoked"
        session.add(_revoked(licence.id, NOW - timedelta(hours=1)))
    assert _rules(registry) == []
    evaluate_warnings(registry)
    # A use before the revocation is no warning (the spike rule wants five revocations).
    assert _rules(registry) == []
    with db.transaction(registry.sessions) as session:
        session.add(_use(licence, NOW - timedelta(minutes=5), "use_after"))
    assert evaluate_warnings(registry) == 1
    [warning] = list_warnings(registry)
    assert (warning.rule_id, warning.subject_id) == ("WR-USED-AFTER-REVOCATION", "use_after")


def test_a_seal_used_by_a_client_new_to_it_raises_one_warning(registry: Services) -> None:
    licence = _licence(registry)
    with db.transaction(registry.sessions) as session:
        session.add(_sealed("client:a", licence.seal_id, licence.department_id, days=30))
        session.add(_sealed("client:a", licence.seal_id, licence.department_id, days=0))
    # The seal's usual client: no warning.
    assert evaluate_warnings(registry) == 0
    with db.transaction(registry.sessions) as session:
        session.add(_sealed("client:b", licence.seal_id, licence.department_id, days=0))
    assert evaluate_warnings(registry) == 1
    assert evaluate_warnings(registry) == 0
    [warning] = list_warnings(registry)
    assert (warning.rule_id, warning.subject_id) == (
        "WR-NEW-SEAL-USER",
        f"{licence.seal_id}/client:b",
    )


def test_two_evaluations_at_once_raise_one_warning(registry: Services) -> None:
    for _ in range(5):
        count_scan(registry.clock, channel="qr", subject=None, verdict="FORGED")
    flush_scans(registry)
    raised: list[int] = []
    barrier = threading.Barrier(2)

    def evaluate() -> None:
        barrier.wait()
        raised.append(evaluate_warnings(registry))

    threads = [threading.Thread(target=evaluate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(raised) == [0, 1]
    with registry.sessions() as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.type == "warning.raised")
            )
            == 1
        )


def test_a_supervisor_acknowledges_then_closes_and_a_closed_warning_is_refused(
    registry: Services,
) -> None:
    for _ in range(5):
        count_scan(registry.clock, channel="qr", subject=None, verdict="UNKNOWN")
    flush_scans(registry)
    evaluate_warnings(registry)
    [warning] = list_warnings(registry, status=WarningStatus.OPEN)
    seen = acknowledge(registry, warning.id, "核查中", SUPERVISOR)
    assert (seen.status, seen.acknowledged_by) == (WarningStatus.ACKNOWLEDGED, "console:wang")
    done = close(registry, warning.id, "已通报", SUPERVISOR)
    assert done.status is WarningStatus.CLOSED
    assert done.note is not None
    assert "核查中" in done.note
    assert "已通报" in done.note
    with pytest.raises(WarningClosedError, match="closed"):
        acknowledge(registry, warning.id, "again", SUPERVISOR)
    with pytest.raises(WarningClosedError) as refused:
        close(registry, warning.id, "again", SUPERVISOR)
    assert refused.value.code == "warning-closed"
    assert list_warnings(registry, status="open") == []
    with registry.sessions() as session:
        actions = session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.target_id == warning.id)
            .order_by(AuditEvent.id)
        ).all()
    assert actions == ["warning.raise", "warning.acknowledge", "warning.close"]


def _revoked(certificate_id: str, at: datetime) -> StatusEvent:
    return StatusEvent(
        certificate_id=certificate_id,
        from_status="valid",
        to_status="revoked",
        actor="cli:test",
        created_at=at,
    )


def _use(licence: Certificate, at: datetime, usage_id: str) -> UsageRecord:
    return UsageRecord(
        usage_id=usage_id,
        department_id=licence.department_id,
        client_id="cli_test",
        action="lookup",
        certificate_id=licence.id,
        identifier=licence.identifier,
        use_cause="test",
        matter="test",
        result="granted",
        salt="00" * 16,
        created_at=at,
    )


def _sealed(actor: str, seal_id: str, department_id: int, *, days: int) -> AuditEvent:
    return AuditEvent(
        actor=actor,
        department_id=department_id,
        action="document.seal",
        target_type="document",
        target_id=f"doc_{actor}_{days}",
        detail={"seal": seal_id},
        created_at=datetime.now(UTC).replace(year=2026, month=11, day=18) - timedelta(days=days),
    )
