"""The console's figures (统计图表): the supervision figures of a period as charts drawn by the
service, each with the table of its numbers and that table as CSV; every point links to the
records behind it (:mod:`routes.console_records`). Who reads which department, and the
period, are checked by :mod:`routes.console_scope`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from econtract.console import ConsoleRole
from econtract.csvsafe import csv_text
from econtract.services import Services
from econtract.supervision import (
    Chart,
    Period,
    Point,
    Series,
    chart_svg,
    completion_times,
    envelopes_by_status,
    issued_per_day,
    issued_per_week,
    scans_per_day,
    status_changes_per_day,
    uses_by_other_departments,
)
from routes.console import CurrentUser, console_page, csv_download
from routes.console_scope import (
    STATUS_NAMES,
    DepartmentId,
    PageError,
    Scope,
    Since,
    To,
    csv_name,
    message_page,
    read_scope,
    services_of,
)

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)

_SCAN_NAMES = {"scans": "扫码 scans", "forged-or-unknown": "伪造或未知 FORGED/UNKNOWN"}

# --- the charts -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Figure:
    """One chart of the overview: how it is read, drawn and drilled into."""

    name: str
    title_zh: str
    title_en: str
    kind: str
    unit_zh: str
    unit_en: str
    read: Callable[[Services, Period, int | None], Series]
    href: Callable[[Scope, Point], str | None]


def _day_href(kind: str, **keys: Callable[[Point], object]) -> Callable[[Scope, Point], str]:
    """A drill-down into the records of one day's point."""

    def href(scope: Scope, point: Point) -> str:
        assert point.day is not None
        fields = {name: key(point) for name, key in keys.items()}
        return f"/console/records/{kind}?" + _day_scope(scope, point.day, 1).query(**fields)

    return href


def _day_scope(scope: Scope, day: date, days: int) -> Scope:
    return dataclasses.replace(scope, period=Period(since=day, until=day + timedelta(days=days)))


def _week_href(scope: Scope, point: Point) -> str:
    assert point.day is not None
    return "/console/records/issued?" + _day_scope(scope, point.day, 7).query(
        issuer=point.department_id, type=point.type_code
    )


def _reason(point: Point) -> str | None:
    return point.reason


def _scans_href(scope: Scope, point: Point) -> str:
    """The scans of a point's day: every answer, or only the FORGED and UNKNOWN ones behind
    the count and the share of those."""
    failed = None if point.label == _SCAN_NAMES["scans"] else "1"
    return "/console/records/scans?" + _day_scope(scope, point.day or date.min, 1).query(
        failed=failed
    )


def _hours(read: Callable[..., Series]) -> Callable[[Services, Period, int | None], Series]:
    def hours(services: Services, period: Period, department_id: int | None) -> Series:
        series = read(services, period, department_id=department_id)
        points = tuple(dataclasses.replace(p, y=round(p.y / 3600, 2)) for p in series.points)
        return Series(name=series.name, points=points)

    return hours


def _scans(share: bool) -> Callable[[Services, Period, int | None], Series]:
    def scans(services: Services, period: Period, department_id: int | None) -> Series:
        series = scans_per_day(services, period, department_id=department_id)
        if share:
            points = tuple(
                dataclasses.replace(p, label="伪造或未知占比 FORGED/UNKNOWN share", y=p.y * 100)
                for p in series.points
                if p.label == "failed-share"
            )
        else:
            points = tuple(
                dataclasses.replace(p, label=_SCAN_NAMES[p.label])
                for p in series.points
                if p.label in _SCAN_NAMES
            )
        return Series(name=series.name, points=points)

    return scans


def _plain(read: Callable[..., Series]) -> Callable[[Services, Period, int | None], Series]:
    def plain(services: Services, period: Period, department_id: int | None) -> Series:
        return read(services, period, department_id=department_id)

    return plain


def _envelopes(services: Services, period: Period, department_id: int | None) -> Series:
    series = envelopes_by_status(services, period, department_id=department_id)
    points = tuple(
        dataclasses.replace(p, x=STATUS_NAMES.get(p.x, p.x))
        for status in STATUS_NAMES
        for p in series.points
        if p.status == status
    )
    return Series(name=series.name, points=points)


FIGURES = (
    _Figure(
        name="issued-per-day",
        title_zh="每日发证",
        title_en="Certificates issued per day",
        kind="stacked",
        unit_zh="张",
        unit_en="certificates",
        read=_plain(issued_per_day),
        href=_day_href("issued", issuer=lambda p: p.department_id, type=lambda p: p.type_code),
    ),
    _Figure(
        name="issued-per-week",
        title_zh="每周发证",
        title_en="Certificates issued per week",
        kind="stacked",
        unit_zh="张",
        unit_en="certificates",
        read=_plain(issued_per_week),
        href=_week_href,
    ),
    _Figure(
        name="status-changes-per-day",
        title_zh="吊销与暂停（按原因）",
        title_en="Revocations and suspensions, by reason",
        kind="stacked",
        unit_zh="次",
        unit_en="changes",
        read=_plain(status_changes_per_day),
        href=_day_href(
            "status-changes",
            status=lambda p: p.status,
            reason=_reason,
            no_reason=lambda p: "1" if p.reason is None else None,
        ),
    ),
    _Figure(
        name="envelopes-by-status",
        title_zh="签署流程状态",
        title_en="Envelopes by status",
        kind="stacked",
        unit_zh="个",
        unit_en="envelopes",
        read=_envelopes,
        href=lambda scope, p: (
            "/console/records/envelopes?" + scope.query(initiator=p.department_id, status=p.status)
        ),
    ),
    _Figure(
        name="completion-times",
        title_zh="签署流程用时（中位数与第90百分位）",
        title_en="Envelope start to completion, median and 90th percentile",
        kind="bar",
        unit_zh="小时",
        unit_en="hours",
        read=_hours(completion_times),
        href=lambda scope, p: (
            "/console/records/completed?" + scope.query(initiator=p.department_id)
        ),
    ),
    _Figure(
        name="uses-by-other-departments",
        title_zh="跨部门用证",
        title_en="Uses of licences by other departments",
        kind="stacked",
        unit_zh="次",
        unit_en="uses",
        read=_plain(uses_by_other_departments),
        href=_day_href(
            "uses", user=lambda p: p.department_id, issuer=lambda p: p.other_department_id
        ),
    ),
    _Figure(
        name="scans-per-day",
        title_zh="每日扫码核验",
        title_en="QR scans per day",
        kind="bar",
        unit_zh="次",
        unit_en="scans",
        read=_scans(share=False),
        href=_scans_href,
    ),
    _Figure(
        name="failed-share-per-day",
        title_zh="伪造或未知占比",
        title_en="Share of FORGED/UNKNOWN answers",
        kind="line",
        unit_zh="%",
        unit_en="",
        read=_scans(share=True),
        href=_scans_href,
    ),
)
_BY_NAME = {figure.name: figure for figure in FIGURES}


def _chart(figure: _Figure, series: Series) -> Chart:
    return Chart(
        title_zh=figure.title_zh,
        title_en=figure.title_en,
        kind=figure.kind,  # type: ignore[arg-type]
        series=(series,),
        unit_zh=figure.unit_zh,
        unit_en=figure.unit_en,
    )


def _value(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


TABLE_HEADER = ("类别 Category", "系列 Series", "数值 Value")


@router.get("/overview", response_class=HTMLResponse)
def overview(
    request: Request,
    user: CurrentUser,
    since: Since = None,
    to: To = None,
    department_id: DepartmentId = None,
) -> Response:
    """The overview: every figure of the period as a chart, its table and its CSV link."""
    services = services_of(request)
    try:
        scope = read_scope(services, user, since, to, department_id)
    except PageError as error:
        return message_page(request, user, error)
    charts = []
    for figure in FIGURES:
        series = figure.read(services, scope.period, scope.department_id)
        chart = _chart(figure, series)
        charts.append(
            {
                "name": figure.name,
                "title_zh": figure.title_zh,
                "title_en": figure.title_en,
                "unit": chart.unit,
                # chart_svg escapes every text and link itself (an XML writer).
                "svg": Markup(chart_svg(chart, href=functools.partial(figure.href, scope))),  # noqa: S704
                "rows": [(p.x, p.label, _value(p.y), figure.href(scope, p)) for p in series.points],
                "csv": f"/console/overview.csv?{scope.query(chart=figure.name)}",
            }
        )
    departments = sorted(scope.names.items(), key=lambda item: item[1])
    return console_page(
        request,
        user,
        "overview.html",
        {
            "charts": charts,
            "departments": departments if user.role == ConsoleRole.SUPERVISOR.value else [],
            "query": {
                "from": scope.period.since.isoformat(),
                "to": (scope.period.until - timedelta(days=1)).isoformat(),
                "department_id": scope.picked,
            },
            "header": TABLE_HEADER,
        },
    )


@router.get("/overview.csv")
def overview_csv(
    request: Request,
    user: CurrentUser,
    chart: Annotated[str, Query(max_length=40)],
    since: Since = None,
    to: To = None,
    department_id: DepartmentId = None,
) -> Response:
    """One chart's table as CSV."""
    services = services_of(request)
    try:
        scope = read_scope(services, user, since, to, department_id)
        figure = _BY_NAME.get(chart)
        if figure is None:
            raise PageError(404, "没有这个图表。", "There is no such chart.")
    except PageError as error:
        return message_page(request, user, error)
    series = figure.read(services, scope.period, scope.department_id)
    return csv_download(
        csv_name(figure.name, scope),
        [csv_text(TABLE_HEADER, [(p.x, p.label, _value(p.y)) for p in series.points])],
    )
