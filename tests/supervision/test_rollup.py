"""The overview's daily roll-ups: figures read from them give the live figures' numbers, a day
is rolled up only an hour after it ended, and a late record is counted again on request."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import delete, func, insert, select, update

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
    flush_scans,
    issued_per_day,
    issued_per_week,
    last_complete_day,
    roll_up,
    scans_per_day,
    status_changes_per_day,
    uses_by_other_departments,
)
from econtract.supervision._completions import duration_bin
from econtract.supervision._overview import percentile
from econtract.supervision._rollup_models import (
    DAY_TABLES,
    CompletionTotal,
    EnvelopeDay,
    IssuedDay,
    RolledUpDay,
    UseDay,
)
from econtract.webhooks import run_round
from tests.econtract.conftest import cli_env  # noqa: F401 (a fixture)
from tests.supervision.test_overview import (  # noqa: F401 (a fixture)
    SECOND,
    WEEK,
    Registry,
    _change,
    _issue,
    _points,
    _scan,
    _use,
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


ROLL_UPS = (*DAY_TABLES, CompletionTotal)


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
    # Up to the 19th: the days from the first record (the 15th) to it rolled up, the 20th up
    # to 01:00 (the last full hour less the grace), the rest live.
    assert roll_up(services, clock=_at(20, 2)) == 5
    with services.sessions() as session:
        days = session.execute(
            select(RolledUpDay.day, RolledUpDay.through).order_by(RolledUpDay.day)
        ).all()
    assert days == [(date(2026, 11, d), None) for d in range(15, 20)] + [
        (date(2026, 11, 20), china(20, 1))
    ]
    assert _figures(arranged) == live
    # Then every day of November, from the roll-ups alone.
    assert roll_up(services, clock=FixedClock(datetime(2026, 12, 1, 2, tzinfo=CHINA))) == 11
    rows = _rows(services)
    assert rows == {
        # the 15th to the 30th, and December 1st up to 01:00
        "overview_rollup_days": 17,
        # (15, first, licence), (16, first, licence), (17, first, food), (17, second,
        # licence), (23, second, licence)
        "overview_issued_days": 5,
        # 18: revoked 吊销 (first) twice and suspended (first) in the first's list and every
        # department's; 19: revoked (second), in the second's and every department's
        "overview_status_change_lists": 4,
        # 18: second → first; 19: first → second; 20: third → second
        "overview_use_days": 3,
        # 17: VALID (first), FORGED (none); 18: VALID and UNKNOWN (second)
        "overview_scan_days": 4,
        # first: 16, 17, 18, 19 completed, 19 declined; second: 17 completed, 18 expired
        "overview_envelope_days": 7,
        # the first's envelope of the 20th, still open
        "overview_open_envelopes": 1,
        # completed on the 16th, 17th, 18th, 19th (first) and 17th (second); the first's of
        # the 11th is before the first day rolled up, read live
        "overview_completions": 5,
        # one per initiator and day it completed envelopes on
        "overview_completion_totals": 5,
    }
    assert _figures(arranged) == live


def test_today_is_rolled_up_so_far_and_read_live_from_there(arranged: Registry) -> None:
    services = arranged.services
    today = date(2026, 11, 20)
    # The 20th at 14:30: the days before it rolled up whole, the 20th up to 13:00 (the last
    # full hour less the grace) with the use and the envelope of 10:00.
    assert roll_up(services, clock=_at(20, 14, 30)) == 5
    with services.sessions() as session:
        marked = session.get(RolledUpDay, today)
        assert marked is not None
        assert marked.through == china(20, 13)
        assert session.scalars(select(UseDay.count).where(UseDay.day == today)).all() == [1]
    before = _figures(arranged)
    # Written since 13:00: a licence, its use by another department, a revocation, the open
    # envelope of 10:00 completed (open when the 20th was rolled up), scans.
    licence = _issue(services, SECOND, "business_licence", china(20, 13, 30))
    _change(services, arranged.licences["sunday"], "revoke", "注销", china(20, 13, 40))
    with db.transaction(services.sessions) as session:
        session.add(_use("use_late", arranged.third, licence, china(20, 13, 50), "granted"))
        session.execute(
            update(Envelope)
            .where(Envelope.id == arranged.envelopes["open"])
            .values(
                status="completed", completed_at=china(20, 13, 45), updated_at=china(20, 13, 45)
            )
        )
    _scan(services, china(20, 13, 55), licence, "VALID", 2)
    _scan(services, china(20, 13, 55), None, "FORGED", 1)
    flush_scans(services)
    in_part = _figures(arranged)
    # Every figure but the week's licences issued (by their Monday) shows them on the 20th.
    assert {
        name for name, *_ in before if before[name, WEEK, None] != in_part[name, WEEK, None]
    } == {figure.__name__ for figure in FIGURES}
    # Within the hour the worker's rounds leave the 20th's rows as they are.
    assert roll_up(services, clock=_at(20, 14, 59)) == 0
    assert _figures(arranged) == in_part
    # The records alone, with nothing rolled up, give the same numbers.
    with db.transaction(services.sessions) as session:
        for model in ROLL_UPS:
            session.execute(delete(model))
    live = _figures(arranged)
    assert in_part == live
    # Rolled up again to 14:00 (the late records in the 20th's rows), then the whole day.
    assert roll_up(services, clock=_at(20, 15, 10)) == 5
    with services.sessions() as session:
        assert session.scalars(select(UseDay.count).where(UseDay.day == today)).all() == [2]
    assert _figures(arranged) == live
    assert roll_up(services, clock=_at(21, 1)) == 1
    with services.sessions() as session:
        marked = session.get(RolledUpDay, today)
        assert marked is not None
        assert marked.through is None
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
            # On a day not rolled up yet: a completion is dated when it happens.
            .values(status="completed", completed_at=_DECEMBER_1, updated_at=_DECEMBER_1)
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


def test_a_day_rolled_up_again_is_not_answered_from_the_points_remembered(
    arranged: Registry,
) -> None:
    services = arranged.services
    roll_up(services, clock=_at(21, 2))
    scopes = (None, arranged.first)
    # Read twice: the second answer from the points the process remembered of each day.
    before = [status_changes_per_day(services, WEEK, department_id=d) for d in scopes]
    assert [status_changes_per_day(services, WEEK, department_id=d) for d in scopes] == before
    # A revocation "on the 18th" from a process whose clock is behind, its day rolled up
    # again at the same instant (the day's rows written anew, stamped as before).
    _change(services, arranged.licences["sunday"], "revoke", "注销", china(18, 12))
    assert roll_up(services, since=date(2026, 11, 18), clock=_at(21, 2)) == 3
    after = [status_changes_per_day(services, WEEK, department_id=d) for d in scopes]
    for series in after:
        assert ("2026-11-18", "revoked · 注销", 1) in _points(series, "x", "label", "y")
    assert after != before
    # The records alone, with nothing rolled up, give the same numbers.
    with db.transaction(services.sessions) as session:
        for model in ROLL_UPS:
            session.execute(delete(model))
    assert [status_changes_per_day(services, WEEK, department_id=d) for d in scopes] == after


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


def test_a_duration_bin_grows_with_the_duration_and_is_at_most_a_64th_wide() -> None:
    seconds = 1_000_000
    assert duration_bin(0) == duration_bin(999_999) == 0
    assert duration_bin(-5 * seconds) == 0  # a clock that stepped back: the first bin
    previous = 0
    bounds: dict[int, list[int]] = {}
    for value in range(1, 5000):
        micros = value * seconds
        bin_ = duration_bin(micros)
        assert bin_ >= previous
        previous = bin_
        bounds.setdefault(bin_, [value, value])[1] = value
    for low, high in bounds.values():
        assert high - low <= max(0, low // 64)
    assert duration_bin(2 * 365 * 86400 * seconds) > duration_bin(365 * 86400 * seconds)


def test_completion_percentiles_from_the_roll_ups_are_those_of_every_duration_sorted(
    arranged: Registry,
) -> None:
    services = arranged.services
    draw = random.Random(16)
    durations: dict[int, list[timedelta]] = {arranged.first: [], arranged.second: []}
    with db.transaction(services.sessions) as session:
        for n in range(400):
            initiator = arranged.first if n % 3 else arranged.second
            started = china(1, 8) + timedelta(seconds=draw.randrange(27 * 86400))
            # Sub-second, ties, minutes, days, weeks: many bins, and values on both sides of
            # a percentile's rank in one bin.
            duration = draw.choice(
                (
                    timedelta(microseconds=draw.randrange(1_000_000)),
                    timedelta(hours=2),
                    *[
                        timedelta(
                            seconds=draw.randrange(low, high), microseconds=draw.randrange(10**6)
                        )
                        for low, high in ((60, 3600), (3600, 5 * 86400), (5 * 86400, 20 * 86400))
                        for _ in range(2)
                    ],
                )
            )
            durations[initiator].append(duration)
            session.add(
                Envelope(
                    id=f"env_many_{n}",
                    title="many",
                    initiator_id=initiator,
                    status="completed",
                    steps=1,
                    document_id="doc_overview",
                    certified_document_id="doc_overview",
                    created_at=started,
                    updated_at=started + duration,
                    completed_at=started + duration,
                )
            )
    periods = (*PERIODS, Period(since=date(2026, 11, 1), until=date(2026, 12, 31)))
    live = {
        (period, body): completion_times(services, period, department_id=body)
        for period in periods
        for body in (None, arranged.first, arranged.second)
    }
    # The rule: every duration of the period sorted (here, December has those of November).
    december = live[periods[-1], None]
    for initiator in (arranged.first, arranged.second):
        with services.sessions() as session:
            mine = [
                (finished - started).total_seconds()
                for started, finished in session.execute(
                    select(Envelope.created_at, Envelope.completed_at).where(
                        Envelope.initiator_id == initiator, Envelope.status == "completed"
                    )
                )
                if finished is not None
            ]
        expected = [round(percentile(mine, f), 3) for f in (0.5, 0.9)]
        assert [p.y for p in december.points if p.department_id == initiator] == expected
    # Part rolled up (with the live days in the middle of some periods' counts), then all.
    for clock in (_at(20, 2), _at(26, 2), FixedClock(_DECEMBER_1 + timedelta(days=20))):
        roll_up(services, clock=clock)
        assert {
            (period, body): completion_times(services, period, department_id=body)
            for period, body in live
        } == live
    # A day rolled up again rewrites every later day's running counts alike.
    roll_up(services, since=date(2026, 11, 12), clock=_at(30, 2))
    assert {
        (period, body): completion_times(services, period, department_id=body)
        for period, body in live
    } == live


def test_the_migration_to_status_change_lists_has_every_day_rolled_up_again(
    arranged: Registry,
) -> None:
    services = arranged.services
    live = _figures(arranged)
    november = FixedClock(_DECEMBER_1)
    roll_up(services, clock=november)
    config = db.alembic_config(services.engine)
    command.downgrade(config, "0029")
    with services.engine.connect() as connection:
        # Roll-ups made before the migration: their days would lack the new tables' rows.
        assert connection.scalar(select(func.count()).select_from(RolledUpDay.__table__)) == 0
    with services.engine.begin() as connection:
        # A day rolled up by the code of 0029, without the status change lists.
        connection.execute(insert(RolledUpDay), [{"day": date(2026, 11, 16)}])
        connection.execute(
            insert(IssuedDay).values(count=1),
            [
                {
                    "day": date(2026, 11, 16),
                    "department_id": arranged.first,
                    "type_code": "x",
                    "count": 1,
                }
            ],
        )
    command.upgrade(config, "head")
    assert set(_rows(services).values()) == {0}
    assert _figures(arranged) == live  # read from the records
    assert roll_up(services, clock=november) == 16  # the worker's next round
    assert _rows(services)["overview_status_change_lists"] == 4
    assert _figures(arranged) == live


_DECEMBER_1 = datetime(2026, 12, 1, 1, 30, tzinfo=CHINA)


def _total(series: Series) -> float:
    return sum(point.y for point in series.points)
