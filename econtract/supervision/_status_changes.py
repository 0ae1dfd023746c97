"""The overview's revocations and suspensions per China day (吊销与暂停), by new status and
reason as given.

A rolled-up day's changes are one row of :class:`StatusChangeList`: a JSON list of ``[new
status, reason, count]``. A year of a large registry holds every reason on every day, thousands
of points, and turning the lists into points cost ten times the query that reads them. The
points of a whole day's list are therefore remembered per process, by the day and the list's
text (:func:`_day_points`): an answer is a pure function of the text, so a day rolled up again
whose counts changed has another text and is read afresh; nothing remembered can be stale. The
days read from the records (not rolled up yet, and today after its watermark) are counted and
turned into points each time, as every other figure's.

The points remembered are shared between answers (a :class:`Point` is never changed once made).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from datetime import date
from itertools import chain
from operator import attrgetter

from sqlalchemy import select
from sqlalchemy.orm import Session

from econtract.models import StatusEvent
from econtract.services import Services
from econtract.supervision._conditions import (
    DayCount,
    Period,
    as_date,
    per_day,
    status_change_query,
    status_changes_in,
)
from econtract.supervision._overview import Point, Series, _joined, _short, live_periods
from econtract.supervision._rollup_models import StatusChangeList

#: How many days' points a process remembers (a year of every department's list and of each
#: of a dozen departments', or two years of a few): about a kilobyte each.
REMEMBERED_DAYS = 8192

_BY_LABEL = attrgetter("label")


def status_changes_per_day(
    services: Services, period: Period, *, department_id: int | None = None
) -> Series:
    """Revocations and suspensions per China day, by new status and reason (as given)."""
    with services.sessions() as session:
        listed = _rolled_lists(session, period, department_id)
        runs = live_periods(session, period)
        fresh = _live_rows(session, runs, department_id)
    # A day rolled up in part (today so far) is read with its records since the watermark,
    # its list's counts and theirs summed.
    parts = {run.since for run in runs if run.start_at is not None}
    days: dict[date, tuple[Point, ...]] = {}
    partly: list[DayCount] = []
    for day, text in listed:
        if day in parts:
            partly += _rows(day, text)
        else:
            days[day] = _day_points(day, text)
    live: dict[date, list[DayCount]] = {}
    for row in _joined(partly, fresh, runs):
        live.setdefault(row[0], []).append(row)
    for day, rows in live.items():
        # A day is either rolled up whole or read from the records; both only if a list was
        # written without its day (never): then its points sort as one.
        points = days.get(day, ()) + _points(rows)
        days[day] = tuple(sorted(points, key=_BY_LABEL))
    # In the order of the points' x (the day's ISO text: a date's order) and label: each
    # day's points are sorted by label already, as stably as one sort of them all.
    ordered = chain.from_iterable(days[day] for day in sorted(days))
    return Series(name="status-changes-per-day", points=tuple(ordered))


def _rolled_lists(
    session: Session, period: Period, department_id: int | None
) -> list[tuple[date, str]]:
    """The lists of the rolled-up days of the period: ``(day, JSON text)``."""
    rolled = select(StatusChangeList.day, StatusChangeList.changes).where(
        StatusChangeList.day >= period.since,
        StatusChangeList.day < period.until,
        StatusChangeList.department_id.is_(None)
        if department_id is None
        else StatusChangeList.department_id == department_id,
    )
    # Through the connection: the ORM's row handling costs more than the statement.
    return [(as_date(day), text) for day, text in session.connection().execute(rolled)]


def _live_rows(session: Session, runs: list[Period], department_id: int | None) -> list[DayCount]:
    """The changes of the runs not rolled up, from the records: ``(day, (status, reason),
    count)``."""
    rows: list[DayCount] = []
    for live in runs:
        changes = (
            status_changes_in(live)
            if department_id is None
            else status_change_query(live, department_id)
        )
        rows += per_day(
            session, changes, StatusEvent.created_at, StatusEvent.to_status, StatusEvent.reason
        )
    return rows


def _rows(day: date, text: str) -> list[DayCount]:
    return [(day, (status, reason), n) for status, reason, n in json.loads(text)]


@functools.lru_cache(maxsize=REMEMBERED_DAYS)
def _day_points(day: date, text: str) -> tuple[Point, ...]:
    """The points of a whole day's list (in the list's order: by status and reason), sorted
    by label; remembered by the day and the list's text."""
    return tuple(sorted(_points(_rows(day, text)), key=_BY_LABEL))


def _points(rows: Iterable[DayCount]) -> tuple[Point, ...]:
    """A point for each ``(day, (status, reason), count)``."""
    return tuple(
        # label, x, y, day, department, other department, type, status, reason
        Point(_label(*keys), day.isoformat(), n, day, None, None, None, *keys)
        for day, keys, n in rows
    )


@functools.lru_cache(maxsize=1024)
def _label(status: str, reason: str | None) -> str:
    """A series' label, one string for every day's point of it."""
    return f"{status} · {_short(reason)}"
