"""The monthly report's figures (月度通报): one China month of the overview, for the province
or one department, beside the month before, with the warnings raised in it and their handling.

Every number comes from the overview's own aggregate queries
(:mod:`econtract.supervision`), so that the report and the console's charts never disagree;
the few counts the overview does not group by department (status changes, scans, warnings)
are one grouped query each, over the same conditions.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from econtract.envelopes import EnvelopeStatus
from econtract.errors import InvalidInputError, NotFoundError
from econtract.models import Certificate, CertificateStatus, Department, StatusEvent
from econtract.services import Services
from econtract.supervision import (
    Period,
    ScanCount,
    Series,
    SupervisionWarning,
    WarningStatus,
    WarningView,
    completion_times,
    envelopes_by_status,
    issued_per_week,
    scans_per_day,
    status_changes_per_day,
    uses_by_other_departments,
)
from econtract.supervision._conditions import FAILED_QR_ANSWERS, scans_in, status_change_query

#: The report's version marker, printed on every page.
REPORT_FORMAT = "econtract-monthly-report/1"
#: The most warnings a report lists one by one (all are counted).
MAX_LISTED_WARNINGS = 300

_MONTH = re.compile(r"(\d{4})-(\d{2})")


@dataclass(frozen=True, kw_only=True)
class Month:
    """A calendar month, in China time."""

    year: int
    month: int
    """1 to 12."""

    def __post_init__(self) -> None:
        if not isinstance(self.year, int) or not isinstance(self.month, int):
            raise TypeError("A month is a year and a month number.")
        if not 1 <= self.month <= 12 or not 2000 <= self.year <= 9999:
            raise ValueError(f"There is no month {self.year}-{self.month:02d}.")

    @classmethod
    def parse(cls, text: str) -> Month:
        """The month written ``YYYY-MM``; :class:`InvalidInputError` for anything else."""
        match = _MONTH.fullmatch(text.strip())
        if match is None:
            raise InvalidInputError(
                f"The month {text[:20]!r} is not written YYYY-MM (e.g. 2026-11).",
                errors=[("/month", "not YYYY-MM")],
            )
        try:
            return cls(year=int(match[1]), month=int(match[2]))
        except ValueError as exc:
            raise InvalidInputError(str(exc), errors=[("/month", "no such month")]) from None

    @property
    def period(self) -> Period:
        """The month's China days."""
        after = (
            date(self.year + 1, 1, 1) if self.month == 12 else date(self.year, self.month + 1, 1)
        )
        return Period(since=date(self.year, self.month, 1), until=after)

    @property
    def previous(self) -> Month:
        """The month before."""
        if self.month == 1:
            return Month(year=self.year - 1, month=12)
        return Month(year=self.year, month=self.month - 1)

    @property
    def zh(self) -> str:
        """``2026年11月``."""
        return f"{self.year}年{self.month:02d}月"

    def __str__(self) -> str:
        return f"{self.year}-{self.month:02d}"


@dataclass(frozen=True, kw_only=True)
class Totals:
    """A month's figures for the province or one department."""

    issued: int
    revoked: int
    suspended: int
    envelopes_started: int
    """Envelopes started in the month (whatever their status now)."""
    envelopes_completed: int
    """… of which completed."""
    uses: int
    """Granted uses of licences by a department other than their issuer."""
    scans: int
    """QR scans."""
    failed_scans: int
    """… answered FORGED or UNKNOWN."""
    warnings: int
    """Early warnings raised in the month."""

    @property
    def failed_share(self) -> float:
        """The share of the scans answered FORGED or UNKNOWN (0 without scans)."""
        return self.failed_scans / self.scans if self.scans else 0.0


@dataclass(frozen=True, kw_only=True)
class DepartmentRow:
    """One department's line of the report's table."""

    department_id: int
    code: str
    name: str
    issued: int
    revoked: int
    suspended: int
    envelopes_started: int
    envelopes_completed: int
    completion_median: float | None
    """Seconds from start to completion, of the envelopes it initiated completed in the month."""
    completion_p90: float | None
    uses_made: int
    """Its granted uses of other departments' licences."""
    uses_of_its_licences: int
    """Other departments' granted uses of its licences."""
    scans: int
    failed_scans: int
    warnings: int
    warnings_open: int
    """Of its warnings raised in the month, those still open."""


@dataclass(frozen=True, kw_only=True)
class ReasonCount:
    """How many licences went to ``status`` for ``reason`` in the month."""

    status: str
    reason: str | None
    count: int


@dataclass(frozen=True, kw_only=True)
class MonthlyReport:
    """The month's report (月度通报) as data; :func:`econtract.reports.monthly_report_pdf`
    draws it."""

    month: Month
    department_code: str | None
    """The one department reported on, or ``None`` for the province."""
    department_name: str | None
    made_at: datetime
    totals: Totals
    totals_before: Totals
    """The same figures for the month before."""
    departments: tuple[DepartmentRow, ...]
    """Every department with something in the month (the one department: its own line)."""
    issued_per_week: Series
    status_changes: Series
    """Revocations and suspensions per day, by status and reason."""
    reasons: tuple[ReasonCount, ...]
    envelopes: Series
    completion: Series
    completion_before: Series
    uses: Series
    scans: Series
    warnings: tuple[WarningView, ...]
    """The warnings raised in the month, oldest first, at most :data:`MAX_LISTED_WARNINGS`."""
    warning_counts: dict[tuple[str, str], int]
    """Warnings raised in the month by (rule, status now)."""
    names: dict[int, str]
    """Department names by id, for the warnings and the series."""


def monthly_report(
    services: Services, month: Month, *, department_code: str | None = None
) -> MonthlyReport:
    """The figures of ``month`` for the province, or for the department ``department_code``.

    :class:`InvalidInputError` for a month that has not begun; :class:`NotFoundError` for a
    department the registry does not know."""
    period = month.period
    if period.since > services.clock.today():
        raise InvalidInputError(
            f"The month {month} has not begun; a report covers a month under way or past.",
            errors=[("/month", "in the future")],
        )
    department_id, department_name = _department(services, department_code)
    figures = _Figures.read(services, period, department_id)
    before = _Figures.read(services, month.previous.period, department_id)
    with services.sessions() as session:
        per_status = _status_counts(session, period, department_id)
        per_scan = _scan_counts(session, period, department_id)
        warnings = _warnings(session, period, department_id)
        counted = Counter(
            (row.department_id, row.status) for row in warnings if row.department_id is not None
        )
        listed = [WarningView.of(row) for row in warnings[:MAX_LISTED_WARNINGS]]
        warning_counts = dict(Counter((row.rule_id, row.status) for row in warnings))
        rows = _department_rows(session, figures, per_status, per_scan, counted, department_id)
        names = _names(
            session,
            [row.department_id for row in rows]
            + [w.department_id for w in listed if w.department_id is not None],
        )
        warnings_before = len(_warnings(session, month.previous.period, department_id))
    return MonthlyReport(
        month=month,
        department_code=department_code,
        department_name=department_name,
        made_at=services.clock.now(),
        totals=figures.totals(len(warnings)),
        totals_before=before.totals(warnings_before),
        departments=rows,
        issued_per_week=figures.issued,
        status_changes=figures.status_changes,
        reasons=figures.reasons(),
        envelopes=figures.envelopes,
        completion=figures.completion,
        completion_before=before.completion,
        uses=figures.uses,
        scans=figures.scans,
        warnings=tuple(listed),
        warning_counts=warning_counts,
        names=names,
    )


def reported_departments(services: Services) -> list[tuple[str, str]]:
    """The departments a report may be about, as (code, name), by name: the choice a
    supervisor is offered."""
    with services.sessions() as session:
        rows = session.execute(
            select(Department.code, Department.name).order_by(Department.name, Department.code)
        ).all()
    return [(str(code), str(name)) for code, name in rows]


@dataclass(frozen=True)
class _Figures:
    """The overview's figures of one period."""

    issued: Series
    status_changes: Series
    envelopes: Series
    completion: Series
    uses: Series
    scans: Series

    @classmethod
    def read(cls, services: Services, period: Period, department_id: int | None) -> _Figures:
        return cls(
            *(
                figure(services, period, department_id=department_id)
                for figure in (
                    issued_per_week,
                    status_changes_per_day,
                    envelopes_by_status,
                    completion_times,
                    uses_by_other_departments,
                    scans_per_day,
                )
            )
        )

    def totals(self, warnings: int) -> Totals:
        status = Counter[str]()
        for point in self.status_changes.points:
            status[point.status or ""] += int(point.y)
        completed = EnvelopeStatus.COMPLETED.value
        return Totals(
            issued=_sum(self.issued.points),
            revoked=status[CertificateStatus.REVOKED.value],
            suspended=status[CertificateStatus.SUSPENDED.value],
            envelopes_started=_sum(self.envelopes.points),
            envelopes_completed=_sum(p for p in self.envelopes.points if p.status == completed),
            uses=_sum(self.uses.points),
            scans=_sum(p for p in self.scans.points if p.label == "scans"),
            failed_scans=_sum(p for p in self.scans.points if p.label == "forged-or-unknown"),
            warnings=warnings,
        )

    def reasons(self) -> tuple[ReasonCount, ...]:
        counts = Counter[tuple[str, str | None]]()
        for point in self.status_changes.points:
            counts[(point.status or "", point.reason)] += int(point.y)
        return tuple(
            ReasonCount(status=status, reason=reason, count=n)
            for (status, reason), n in sorted(
                counts.items(), key=lambda item: (item[0][0], -item[1], item[0][1] or "")
            )
        )


def _sum(points: Iterable[object]) -> int:
    return int(sum(getattr(point, "y", 0) for point in points))


def _department(services: Services, code: str | None) -> tuple[int | None, str | None]:
    if code is None:
        return None, None
    with services.sessions() as session:
        row = session.execute(
            select(Department.id, Department.name).where(Department.code == code)
        ).first()
    if row is None:
        raise NotFoundError(f"There is no department {code[:40]!r}.")
    return int(row[0]), str(row[1])


def _status_counts(
    session: Session, period: Period, department_id: int | None
) -> dict[tuple[int, str], int]:
    """Revocations and suspensions of the period by the licence's department and status."""
    stmt = status_change_query(period, department_id)
    rows = session.execute(
        stmt.with_only_columns(
            Certificate.department_id, StatusEvent.to_status, func.count()
        ).group_by(Certificate.department_id, StatusEvent.to_status)
    ).all()
    return {(int(body), str(status)): int(n) for body, status, n in rows}


def _scan_counts(
    session: Session, period: Period, department_id: int | None
) -> dict[int, tuple[int, int]]:
    """QR scans of the period by the scanned licence's department: (all, FORGED or UNKNOWN)."""
    rows = session.execute(
        select(ScanCount.department_id, ScanCount.verdict, func.sum(ScanCount.count))
        .where(scans_in(period, department_id), ScanCount.department_id.is_not(None))
        .group_by(ScanCount.department_id, ScanCount.verdict)
    ).all()
    out: dict[int, tuple[int, int]] = {}
    for body, verdict, n in rows:
        if body is None:
            continue
        total, bad = out.get(body, (0, 0))
        out[body] = (total + int(n), bad + (int(n) if verdict in FAILED_QR_ANSWERS else 0))
    return out


def _warnings(
    session: Session, period: Period, department_id: int | None
) -> list[SupervisionWarning]:
    """The warnings raised in the period (about one department), oldest first."""
    stmt = select(SupervisionWarning).where(
        SupervisionWarning.raised_at >= period.start, SupervisionWarning.raised_at < period.end
    )
    if department_id is not None:
        stmt = stmt.where(SupervisionWarning.department_id == department_id)
    return list(session.scalars(stmt.order_by(SupervisionWarning.raised_at, SupervisionWarning.id)))


def _department_rows(
    session: Session,
    figures: _Figures,
    per_status: dict[tuple[int, str], int],
    per_scan: dict[int, tuple[int, int]],
    warnings: Counter[tuple[int, str]],
    department_id: int | None,
) -> tuple[DepartmentRow, ...]:
    """A line per department with anything in the month (the one department: always)."""
    numbers: dict[int, Counter[str]] = defaultdict(Counter)
    for point in figures.issued.points:
        numbers[point.department_id or 0]["issued"] += int(point.y)
    for point in figures.envelopes.points:
        numbers[point.department_id or 0]["envelopes_started"] += int(point.y)
        if point.status == EnvelopeStatus.COMPLETED.value:
            numbers[point.department_id or 0]["envelopes_completed"] += int(point.y)
    for point in figures.uses.points:
        numbers[point.department_id or 0]["uses_made"] += int(point.y)
        numbers[point.other_department_id or 0]["uses_of_its_licences"] += int(point.y)
    for (body, status), n in per_status.items():
        numbers[body][status] += n
    for body, (total, bad) in per_scan.items():
        numbers[body]["scans"] += total
        numbers[body]["failed_scans"] += bad
    for (body, status), n in warnings.items():
        numbers[body]["warnings"] += n
        if status == WarningStatus.OPEN.value:
            numbers[body]["warnings_open"] += n
    times: dict[int, dict[str, float]] = defaultdict(dict)
    for point in figures.completion.points:
        times[point.department_id or 0][point.label] = point.y
    wanted = {department_id} if department_id is not None else set(numbers) | set(times)
    wanted.discard(0)
    departments = session.execute(
        select(Department.id, Department.code, Department.name).where(Department.id.in_(wanted))
    ).all()
    rows = [
        DepartmentRow(
            department_id=body,
            code=code,
            name=name,
            issued=numbers[body]["issued"],
            revoked=numbers[body][CertificateStatus.REVOKED.value],
            suspended=numbers[body][CertificateStatus.SUSPENDED.value],
            envelopes_started=numbers[body]["envelopes_started"],
            envelopes_completed=numbers[body]["envelopes_completed"],
            completion_median=times[body].get("median"),
            completion_p90=times[body].get("p90"),
            uses_made=numbers[body]["uses_made"],
            uses_of_its_licences=numbers[body]["uses_of_its_licences"],
            scans=numbers[body]["scans"],
            failed_scans=numbers[body]["failed_scans"],
            warnings=numbers[body]["warnings"],
            warnings_open=numbers[body]["warnings_open"],
        )
        for body, code, name in departments
    ]
    return tuple(sorted(rows, key=lambda row: (-row.issued, row.code)))


def _names(session: Session, ids: Iterable[int]) -> dict[int, str]:
    wanted = set(ids)
    if not wanted:
        return {}
    return {
        int(body): str(name)
        for body, name in session.execute(
            select(Department.id, Department.name).where(Department.id.in_(wanted))
        )
    }
