"""The overview benchmark (``bench/bench_overview.py``) at a tiny scale on PostgreSQL: the
year's filler has the shape the overview draws, and a run prints every figure for both
registries, their ratios and the targets, and drops its databases."""

from __future__ import annotations

import re
import secrets
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from bench.bench_overview import (
    FIGURES,
    HTTP_PAGE,
    PAGE,
    SERVER_URL,
    build,
    database,
    main,
    page_route_exists,
)
from econtract.envelopes import Envelope
from econtract.models import Certificate, StatusEvent, UsageRecord
from econtract.supervision import ScanCount
from tests.conftest import PG_URL

pytestmark = [pytest.mark.registry, pytest.mark.slow]

#: The server the benchmark makes its databases on: the tests' PostgreSQL server when one is
#: named, else the machine's (the benchmark runs on PostgreSQL only).
SERVER = make_url(PG_URL or SERVER_URL)


def _prefix() -> str:
    return f"econtract_test_overview_{secrets.token_hex(4)}"


def _databases(prefix: str) -> list[str]:
    engine = create_engine(SERVER.set(database="postgres"))
    try:
        with engine.connect() as connection:
            return list(
                connection.scalars(
                    text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
                    {"p": prefix + "%"},
                )
            )
    finally:
        engine.dispose()


def test_a_year_of_filler_holds_every_kind_of_record_the_overview_counts(tmp_path: Path) -> None:
    with database(SERVER, _prefix()) as url:
        registry = build(url, tmp_path / "var", 1200)
        try:
            assert registry.rows["certificates"] == 1200
            year = registry.periods["365 days"]
            with Session(registry.services.engine) as session:
                issued = session.scalars(select(Certificate.issued_at)).all()
                assert min(issued) >= year.start
                assert max(issued) < year.end
                issuers = session.scalars(select(Certificate.department_id).distinct()).all()
                assert len(issuers) == 3
                changes = session.execute(select(StatusEvent.to_status, StatusEvent.reason)).all()
                assert {status for status, _ in changes} == {"revoked", "suspended"}
                assert len({reason for _, reason in changes}) >= 4
                changed = session.scalars(select(StatusEvent.created_at)).all()
                assert all(year.start <= at < year.end for at in changed)
                envelopes = session.scalars(select(Envelope)).all()
                assert {"completed", "declined", "expired"} <= {e.status for e in envelopes}
                for envelope in envelopes:
                    done = envelope.completed_at
                    assert (done is not None) == (envelope.status == "completed")
                    assert done is None or envelope.created_at < done < year.end
                uses = session.execute(
                    select(UsageRecord.result, UsageRecord.created_at, Certificate.issued_at)
                    .join(Certificate, Certificate.id == UsageRecord.certificate_id)
                    .where(UsageRecord.department_id != Certificate.department_id)
                ).all()
                assert Counter(result for result, _, _ in uses)["granted"] > len(uses) / 2
                # A licence is used after it was issued.
                assert all(issued_at < used for _, used, issued_at in uses)
                verdicts = session.scalars(select(ScanCount.verdict).distinct()).all()
                assert set(verdicts) == {"VALID", "FORGED", "UNKNOWN"}
                days = session.scalar(select(func.count(ScanCount.day.distinct())))
                assert days is not None
                assert days > 300
        finally:
            registry.services.dispose()


def test_a_run_prints_each_figure_on_both_registries_and_drops_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    prefix = _prefix()
    code = main(
        [
            "--server-url",
            SERVER.render_as_string(hide_password=False),
            "--small",
            "300",
            "--large",
            "600",
            "--repeats",
            "3",
            "--database-prefix",
            prefix,
        ]
    )
    out = capsys.readouterr().out
    assert code in (0, 1)
    # Each figure's line: small p50 and p90, large p50 and p90, the ratio.
    measured = re.compile(r"(\S.*?)\s+(?:[\d.]+ms\s+){4}[\d.]+x")
    keys = {m.group(1) for m in map(measured.match, out.splitlines()) if m}
    assert keys == {
        f"{name} · {period} · {scope}"
        for name, _ in FIGURES
        for period in ("30 days", "365 days")
        for scope in ("all", "one")
    } | {PAGE} | ({HTTP_PAGE} if page_route_exists() else set())
    assert "certificates 300" in out
    assert "certificates 600" in out
    assert "target: the overview's p50" in out
    assert "target: every ratio" in out
    assert _databases(prefix) == []


def test_the_benchmark_refuses_a_server_that_is_not_postgresql() -> None:
    with pytest.raises(SystemExit) as refused:
        main(["--server-url", "sqlite:///registry.db"])
    assert refused.value.code == 2
