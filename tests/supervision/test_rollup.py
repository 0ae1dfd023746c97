"""The overview's daily roll-ups: figures read from them give the live figures' numbers, a day
is rolled up only an hour after it ended, and a late record is counted again on request."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

import pytest
from sqlalchemy import delete, func, select, update

from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.cli import EXIT_USAGE, run
from econtract.clock import CHINA, FixedClock
from econtract.envelopes import Envelope
from econtract.services import Services
from econtract.supervision import (
    Period,
    Series,
    completion_times,
    envelopes_by_status,
    issued_per_day,
    issued_per_week,
    last_complete_day,
    roll_up,
    scans_per_day,
    status_changes_per_day,
    uses_by_other_departments,
)
from econtract.supervision._rollup_models import (
    EnvelopeDay,
    IssuedDay,
    OpenEnvelope,
    RolledUpDay,
    ScanDay,
    StatusChangeDay,
    UseDay,
)
from econtract.webhooks import run_round
from tests.econtract.conftest import cli_env  # noqa: F401 (a fixture)
from tests.supervision.test_overview import (  # noqa: F401 (a fixture)
    WEEK,
    Registry,
    _issue,
    china,
    registry,
)

pytestmark = pytest.mark.registry


@pytest.fixture
def arranged(registry: Registry) -> Registry:  # noqa: F811 (the fixture imported above)
    """The overview tests' arranged registry, with nothing rolled up yet."""
    return registry


FIGURES: tuple[Callable[..., Series], ...] = (
    issued_per_day,
    issued_per_week,
    status_changes_per_day,
    envelopes_by_status,
    completion_times,
    uses_by_other_departments,
    scans_per_day,
)
# Weeks that begin and end mid-week, and all of November.
PERIODS = (
    WEEK,
    Period(since=date(2026, 11, 14), until=date(2026, 11, 21)),
    Period(since=date(2026, 11, 18), until=date(2026, 11, 25)),
    Period(since=date(2026, 11, 1), until=date(2026, 12, 1)),
)


def _figures(arranged: Registry) -> dict[tuple[str, Period, int | None], Series]:
    """Every figure over every period, for every department and for each one."""
    return {
        (figure.__name__, period, department_id): figure(
            arranged.services, period, department_id=department_id
        )
        for figure in FIGURES
        for period in PERIODS
        for department_id in (None, arranged.first, arranged.second, arranged.third)
    }


ROLL_UPS = (RolledUpDay, IssuedDay, StatusChangeDay, UseDay, ScanDay, EnvelopeDay, OpenEnvelope)


def _at(day: int, hour: int, minute: int = 0) -> FixedClock:
    return FixedClock(china(day, hour, minute))


def _rows(services: Services) -> dict[str, int]:
    with services.sessions() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in ROLL_UPS
        }


def test_figures_from_the_roll_ups_equal_the_live_ones(arranged: Registry) -> None:
    services = arranged.services
    live = _figures(arranged)
    # Up to the 19th: the days from the first record (the 15th) to it rolled up, the rest live.
    assert roll_up(services, clock=_at(20, 2)) == 5
    with services.sessions() as session:
        days = list(session.scalars(select(RolledUpDay.day).order_by(RolledUpDay.day)))
    assert days == [date(2026, 11, d) for d in range(15, 20)]
    assert _figures(arranged) == live
    # Then every day of November, from the roll-ups alone.
    assert roll_up(services, clock=FixedClock(datetime(2026, 12, 1, 2, tzinfo=CHINA))) == 11
    rows = _rows(services)
    assert rows == {
        "overview_rollup_days": 16,
        # (15, first, licence), (16, first, licence), (17, first, food), (17, second,
        # licence), (23, second, licence)
        "overview_issued_days": 5,
        # 18: revoked 吊销 (first) twice in one row, suspended (first); 19: revoked (second)
        "overview_status_change_days": 3,
        # 18: second → first; 19: first → second; 20: third → second
        "overview_use_days": 3,
        # 17: VALID (first), FORGED (none); 18: VALID and UNKNOWN (second)
        "overview_scan_days": 4,
        # first: 16, 17, 18, 19 completed, 19 declined; second: 17 completed, 18 expired
        "overview_envelope_days": 7,
        # the first's envelope of the 20th, still open
        "overview_open_envelopes": 1,
    }
    assert _figures(arranged) == live


def test_an_envelope_open_when_its_day_was_rolled_up_is_read_live_until_counted_in(
    arranged: Registry,
) -> None:
    services = arranged.services
    november = FixedClock(datetime(2026, 12, 1, 2, tzinfo=CHINA))
    roll_up(services, clock=november)
    still_open = _figures(arranged)
    with db.transaction(services.sessions) as session:
        session.execute(
            update(Envelope)
            .where(Envelope.id == arranged.envelopes["open"])
            .values(status="completed", completed_at=china(21, 10), updated_at=china(21, 10))
        )
    closed_since = _figures(arranged)
    # The worker's next round counts it in, though no new day is over.
    assert roll_up(services, clock=november) == 0
    rows = _rows(services)
    assert (rows["overview_envelope_days"], rows["overview_open_envelopes"]) == (8, 0)
    with services.sessions() as session:
        counted = session.get(EnvelopeDay, (date(2026, 11, 20), arranged.first, "completed"))
    assert counted is not None
    assert counted.count == 1
    counted_in = _figures(arranged)
    # And the records alone, with nothing rolled up, give the same numbers.
    with db.transaction(services.sessions) as session:
        for model in ROLL_UPS:
            session.execute(delete(model))
    live = _figures(arranged)
    assert closed_since == live
    assert counted_in == live
    # Its closing shows: the month's envelopes are not those of the roll-up alone.
    key = ("envelopes_by_status", PERIODS[-1], None)
    assert closed_since[key] != still_open[key]


def test_rolling_up_again_replaces_a_days_rows(arranged: Registry) -> None:
    services = arranged.services
    roll_up(services, clock=_at(25, 2))
    before = _rows(services)
    # Nothing new is over: the worker's next round writes nothing.
    assert roll_up(services, clock=_at(25, 3)) == 0
    assert roll_up(services, since=date(2026, 11, 15), clock=_at(25, 3)) == 10
    assert _rows(services) == before


def test_a_day_is_rolled_up_an_hour_after_it_ended(arranged: Registry) -> None:
    services = arranged.services
    assert last_complete_day(_at(20, 0, 59)) == date(2026, 11, 18)
    assert last_complete_day(_at(20, 1)) == date(2026, 11, 19)
    assert roll_up(services, clock=_at(20, 0, 59)) == 4  # the 15th to the 18th
    # A licence of the 19th's last minute, written by a process whose clock is behind.
    _issue(services, DEMO_DEPARTMENT_CODE, "business_licence", china(19, 23, 59))
    day = Period.day(date(2026, 11, 19))
    assert _total(issued_per_day(services, day)) == 1  # the 19th is read live
    assert roll_up(services, clock=_at(20, 1)) == 1
    assert _total(issued_per_day(services, day)) == 1  # and now from its roll-up


def test_a_late_record_of_a_rolled_up_day_is_counted_again_by_the_command(
    arranged: Registry,
    cli_env: dict[str, str],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    services = arranged.services
    roll_up(services, clock=_at(21, 2))
    # A process whose clock is two days behind issues a licence "on the 18th".
    _issue(services, DEMO_DEPARTMENT_CODE, "business_licence", china(18, 12))
    day = Period.day(date(2026, 11, 18))
    assert _total(issued_per_day(services, day)) == 0  # the roll-up does not know it yet
    assert run(["supervision", "rollup", "--since", "2026-11-18"]) == 0, capsys.readouterr().err
    assert "day(s) rolled up" in capsys.readouterr().out
    assert _total(issued_per_day(services, day)) == 1


@pytest.mark.parametrize(
    ("since", "message"),
    [("18 November", "is not a date YYYY-MM-DD"), ("2999-01-01", "is not over yet")],
)
def test_the_command_refuses_a_bad_day_in_one_line(
    arranged: Registry,
    cli_env: dict[str, str],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    since: str,
    message: str,
) -> None:
    assert run(["supervision", "rollup", "--since", since]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert _rows(arranged.services)["overview_rollup_days"] == 0


def test_the_workers_round_rolls_up_the_days_that_are_over(arranged: Registry) -> None:
    services = arranged.services
    counting = (issued_per_day, status_changes_per_day, uses_by_other_departments, scans_per_day)
    live = [figure(services, WEEK) for figure in counting]
    assert run_round(services, clock=_at(22, 1, 30)).rolled_up == 7  # the 15th to the 21st
    assert run_round(services, clock=_at(22, 1, 31)).rolled_up == 0
    assert [figure(services, WEEK) for figure in counting] == live


def _total(series: Series) -> float:
    return sum(point.y for point in series.points)
