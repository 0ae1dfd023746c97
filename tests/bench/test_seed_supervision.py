"""The seeded registry for supervision (``bench/seed_supervision.py``): a week at a tenth of
the default rates leaves every kind of record the console draws, related as the service
relates them, at the simulated times; the same seed gives the same counts."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from bench.seed_supervision import SPIKE_REASON, main, seed
from econtract import db
from econtract.clock import CHINA
from econtract.config import Settings
from econtract.envelopes import Envelope, EnvelopeParty, EnvelopeStatus, PartyStatus
from econtract.models import AuditEvent, Certificate, StatusEvent, UsageRecord
from econtract.supervision import ScanCount, SupervisionWarning
from tests.conftest import PG_URL

pytestmark = [pytest.mark.registry, pytest.mark.slow]

END = date(2026, 11, 30)
"""The day after the week walked (a Monday: the week holds a weekend)."""
FIRST = datetime(2026, 11, 23, tzinfo=CHINA)


def _seed(settings: Settings) -> dict[str, int]:
    return seed(settings, days=7, scale=0.1, seed=7, end=END)


def _settings(data_dir: Path, database_url: str) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=data_dir,
        database_url=database_url,
        key_passphrase="test-passphrase-0123",
        key_kdf_rounds=1000,
    )


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The first run's database: SQLite, or a schema of its own on PostgreSQL when asked."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path_factory.mktemp('first') / 'registry.db'}"
        return
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="module")
def seeded(
    tmp_path_factory: pytest.TempPathFactory, database_url: str
) -> Iterator[tuple[dict[str, int], Session]]:
    """The counts of a seeded week and a session on its registry."""
    settings = _settings(tmp_path_factory.mktemp("seeded") / "var", database_url)
    counts = _seed(settings)
    engine = db.make_engine(settings.effective_database_url)
    with Session(engine) as session:
        yield counts, session
    engine.dispose()


def test_licences_are_issued_on_several_days_within_the_walked_week(
    seeded: tuple[dict[str, int], Session],
) -> None:
    _, session = seeded
    issued = session.scalars(select(Certificate.issued_at)).all()
    days = {at.astimezone(CHINA).date() for at in issued}
    assert len(days) >= 3
    assert all(FIRST <= at < FIRST + timedelta(days=7) for at in issued)
    types = set(session.scalars(select(Certificate.type_code)))
    assert len(types) >= 2
    assert types <= {"business_licence", "food_business_permit", "construction_permit"}


def test_a_revocation_keeps_its_reason_and_one_department_revokes_many_on_one_day(
    seeded: tuple[dict[str, int], Session],
) -> None:
    _, session = seeded
    revocations = session.execute(
        select(StatusEvent, Certificate)
        .join(Certificate, Certificate.id == StatusEvent.certificate_id)
        .where(StatusEvent.to_status == "revoked")
    ).all()
    assert revocations
    for event, certificate in revocations:
        assert event.reason
        assert certificate.status == "revoked"
    audited = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "certificate.revoke")
    ).all()
    assert {e.detail["reason"] for e in audited} >= {SPIKE_REASON}
    per_day = Counter(
        (c.department_id, e.created_at.astimezone(CHINA).date()) for e, c in revocations
    )
    assert max(per_day.values()) >= 3


def test_envelopes_complete_are_declined_and_expire(
    seeded: tuple[dict[str, int], Session],
) -> None:
    _, session = seeded
    envelopes = {e.id: e for e in session.scalars(select(Envelope))}
    statuses = Counter(e.status for e in envelopes.values())
    for status in (EnvelopeStatus.COMPLETED, EnvelopeStatus.DECLINED, EnvelopeStatus.EXPIRED):
        assert statuses[status.value] >= 1, statuses
    for party in session.scalars(select(EnvelopeParty)):
        envelope = envelopes[party.envelope_id]
        if envelope.status == EnvelopeStatus.COMPLETED.value:
            assert party.status == PartyStatus.SEALED.value
            assert party.acted_at is not None
            assert party.acted_at <= party.deadline
        if party.status == PartyStatus.DECLINED.value:
            assert envelope.status == EnvelopeStatus.DECLINED.value
            assert party.reason


def test_another_department_uses_a_licence_also_after_its_revocation(
    seeded: tuple[dict[str, int], Session],
) -> None:
    _, session = seeded
    uses = session.execute(
        select(UsageRecord, Certificate).join(
            Certificate, Certificate.id == UsageRecord.certificate_id
        )
    ).all()
    by_others = [(u, c) for u, c in uses if u.department_id != c.department_id]
    assert any(u.result == "granted" for u, _ in by_others)
    revoked_at = {
        event.certificate_id: event.created_at
        for event in session.scalars(select(StatusEvent).where(StatusEvent.to_status == "revoked"))
    }
    assert any(c.id in revoked_at and u.created_at > revoked_at[c.id] for u, c in by_others), (
        "no use after a revocation"
    )


def test_the_workers_round_counts_the_scans_and_raises_warnings_in_simulated_time(
    seeded: tuple[dict[str, int], Session],
) -> None:
    counts, session = seeded
    assert counts["scans.VALID"] > 0
    # One evening's burst of scans of a code naming no licence of the registry.
    assert counts["scans.UNKNOWN"] >= 6
    scanned = session.scalars(select(ScanCount.day)).all()
    assert all(FIRST.date() <= day < END for day in scanned)
    warnings = session.scalars(select(SupervisionWarning)).all()
    rules = {w.rule_id for w in warnings}
    assert {"WR-DEADLINE-PAST", "WR-FAILED-SCANS", "WR-USED-AFTER-REVOCATION"} <= rules
    assert all(FIRST <= w.raised_at <= FIRST + timedelta(days=7) for w in warnings)


def test_the_same_seed_gives_the_same_counts(
    seeded: tuple[dict[str, int], Session], tmp_path: Path
) -> None:
    # The second run is on SQLite: the walk's choices do not depend on the database either.
    counts, _ = seeded
    again = _seed(_settings(tmp_path / "var", f"sqlite:///{tmp_path / 'again.db'}"))
    assert again == counts
    assert counts["issuance_days"] >= 3


def test_the_command_refuses_a_data_directory_in_use(tmp_path: Path) -> None:
    (tmp_path / "registry.db").write_bytes(b"")
    with pytest.raises(SystemExit, match="not empty"):
        main(["--data-dir", str(tmp_path), "--days", "1"])
