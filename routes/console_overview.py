"""The console's overview (统计图表): the supervision figures of a period as charts drawn by
the service, each with the table of its numbers and that table as CSV; and the drill-downs,
the records behind every point of a chart, a page at a time or all of them as CSV.

A supervisor reads every department or the one they pick; a department admin reads their own
department only, and a page that names another department answers 404, as if it did not
exist. Dates are China days, ``from`` and ``to`` both included (the last 30 days unless
given).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from markupsafe import Markup

from econtract.clock import CHINA
from econtract.console import ConsoleRole, SignedInUser
from econtract.csvsafe import csv_text
from econtract.departments import list_departments
from econtract.errors import InvalidInputError, NotFoundError
from econtract.services import Services
from econtract.supervision import (
    Chart,
    Page,
    Period,
    Point,
    Series,
    chart_svg,
    completed_envelopes,
    completion_times,
    envelopes_by_status,
    envelopes_of_status,
    issued_certificates,
    issued_per_day,
    issued_per_week,
    scans_of_day,
    scans_per_day,
    status_changes,
    status_changes_per_day,
    uses_by_other_departments,
    uses_of_pair,
)
from econtract.supervision._drilldown import MAX_LIMIT
from routes.console import NO_STORE, CurrentUser, console_page

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)

#: The days the overview covers unless told otherwise.
DEFAULT_DAYS = 30
#: Excel reads a CSV as UTF-8 (and so the Chinese names) only after this mark.
BOM = "\ufeff"

_STATUS_NAMES = {
    "revoked": "吊销 revoked",
    "suspended": "暂停 suspended",
    "open": "进行中 open",
    "completed": "已完成 completed",
    "declined": "已拒签 declined",
    "expired": "已过期 expired",
}
_SCAN_NAMES = {"scans": "扫码 scans", "forged-or-unknown": "伪造或未知 FORGED/UNKNOWN"}


class _PageError(Exception):
    """A console page refused: its status and the message in both languages."""

    def __init__(self, status: int, zh: str, en: str) -> None:
        super().__init__(en)
        self.status, self.zh, self.en = status, zh, en


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _message_page(request: Request, user: SignedInUser, error: _PageError) -> Response:
    return console_page(
        request,
        user,
        "overview.html",
        {"error": error, "charts": [], "departments": [], "query": {}},
        status=error.status,
    )


# --- what a request asks for ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Scope:
    """The period and the department a page is about, as checked for its reader."""

    period: Period
    department_id: int | None
    """The department read (a department admin's own, or a supervisor's pick), or all."""
    picked: int | None
    """The department the query named (kept in the page's links)."""
    names: dict[int, str]
    """The departments' names by id."""

    def query(self, **more: object) -> str:
        """The query string of a page of the same scope, with ``more``."""
        fields: dict[str, object] = {
            "from": self.period.since.isoformat(),
            "to": (self.period.until - timedelta(days=1)).isoformat(),
        }
        if self.picked is not None:
            fields["department_id"] = self.picked
        fields.update({k: v for k, v in more.items() if v is not None})
        return urlencode(fields)


def _date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _PageError(
            400,
            f"“{field}”日期应写作 YYYY-MM-DD，例如 2026-11-18。",
            f"The {field!r} date is written YYYY-MM-DD, e.g. 2026-11-18, not {value[:40]!r}.",
        ) from None


def _period(services: Services, since: str | None, to: str | None) -> Period:
    last = _date(to, "to") if to else services.clock.now().astimezone(CHINA).date()
    first = _date(since, "from") if since else last - timedelta(days=DEFAULT_DAYS - 1)
    try:
        return Period(since=first, until=last + timedelta(days=1))
    except ValueError as exc:
        raise _PageError(
            400, "时间段无效：结束日期不得早于开始日期，且不超过两年。", str(exc)
        ) from None


def _scope(
    services: Services,
    user: SignedInUser,
    since: str | None,
    to: str | None,
    department_id: int | None,
) -> _Scope:
    with services.sessions() as session:
        names = {d.id: d.name for d in list_departments(session)}
    if user.role == ConsoleRole.SUPERVISOR.value:
        if department_id is not None and department_id not in names:
            raise _PageError(404, "没有这个部门。", "There is no such department.")
        read = department_id
    else:
        if department_id is not None and department_id != user.department_id:
            raise _PageError(404, "没有这个部门。", "There is no such department.")
        read = user.department_id
    return _Scope(
        period=_period(services, since, to), department_id=read, picked=department_id, names=names
    )


Since = Annotated[str | None, Query(alias="from", max_length=40)]
To = Annotated[str | None, Query(alias="to", max_length=40)]
DepartmentId = Annotated[int | None, Query()]


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
    href: Callable[[_Scope, Point], str | None]


def _day_href(kind: str, **keys: Callable[[Point], object]) -> Callable[[_Scope, Point], str]:
    """A drill-down into the records of one day's point."""

    def href(scope: _Scope, point: Point) -> str:
        assert point.day is not None
        fields = {name: key(point) for name, key in keys.items()}
        return f"/console/records/{kind}?" + _day_scope(scope, point.day, 1).query(**fields)

    return href


def _day_scope(scope: _Scope, day: date, days: int) -> _Scope:
    return dataclasses.replace(scope, period=Period(since=day, until=day + timedelta(days=days)))


def _week_href(scope: _Scope, point: Point) -> str:
    assert point.day is not None
    return "/console/records/issued?" + _day_scope(scope, point.day, 7).query(
        issuer=point.department_id, type=point.type_code
    )


def _reason(point: Point) -> str | None:
    return point.reason


def _scans_href(scope: _Scope, point: Point) -> str:
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
        dataclasses.replace(p, x=_STATUS_NAMES.get(p.x, p.x))
        for status in _STATUS_NAMES
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
    services = _services(request)
    try:
        scope = _scope(services, user, since, to, department_id)
    except _PageError as error:
        return _message_page(request, user, error)
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
    services = _services(request)
    try:
        scope = _scope(services, user, since, to, department_id)
        figure = _BY_NAME.get(chart)
        if figure is None:
            raise _PageError(404, "没有这个图表。", "There is no such chart.")
    except _PageError as error:
        return _message_page(request, user, error)
    series = figure.read(services, scope.period, scope.department_id)
    text = csv_text(TABLE_HEADER, [(p.x, p.label, _value(p.y)) for p in series.points])
    return Response(
        BOM + text,
        media_type="text/csv; charset=utf-8",
        headers={**NO_STORE, "Content-Disposition": _attachment(figure.name, scope)},
    )


def _attachment(name: str, scope: _Scope) -> str:
    # Only a fixed name and checked dates go into the header.
    last = scope.period.until - timedelta(days=1)
    return f'attachment; filename="{name}-{scope.period.since}-{last}.csv"'


# --- the drill-downs --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Records:
    """A drill-down's title, columns and one page of records."""

    title_zh: str
    title_en: str
    header: tuple[str, ...]
    page: Callable[..., Page[Any]]
    """A page of records: ``page(after=…, limit=…)``."""
    row: Callable[[Any], Sequence[object]]


def _time(at: datetime | None) -> str:
    return "" if at is None else at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")


def _int(request: Request, name: str) -> int:
    value = request.query_params.get(name, "")
    if not value.isdigit():
        raise _PageError(
            400,
            f"缺少或无效的参数“{name}”。",
            f"The {name!r} parameter is missing or not a number.",
        )
    return int(value)


def _text(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if not value:
        raise _PageError(400, f"缺少参数“{name}”。", f"The {name!r} parameter is missing.")
    return value


def _records(request: Request, kind: str, scope: _Scope) -> _Records:
    services = _services(request)
    # Every drill-down of the scope's period and department; the point's keys come after.
    mine = scope.department_id
    period = scope.period

    def name(department: int) -> str:
        return scope.names.get(department, str(department))

    if kind == "issued":
        return _Records(
            title_zh="发证记录",
            title_en="Certificates issued",
            header=(
                "证照编号 Number",
                "类型 Type",
                "发证部门 Issuer",
                "持证主体 Holder",
                "状态 Status",
                "发证时间 Issued",
            ),
            page=functools.partial(
                issued_certificates,
                services,
                period,
                issuer_id=_int(request, "issuer"),
                type_code=_text(request, "type"),
                department_id=mine,
            ),
            row=lambda r: (
                (
                    r.number,
                    r.type_code,
                    name(r.department_id),
                    r.holder_name,
                    r.status,
                    _time(r.issued_at),
                )
            ),
        )
    if kind == "status-changes":
        no_reason = request.query_params.get("no_reason") == "1"
        return _Records(
            title_zh="吊销与暂停记录",
            title_en="Revocations and suspensions",
            header=(
                "证照 Certificate",
                "发证部门 Issuer",
                "原状态 From",
                "新状态 To",
                "原因 Reason",
                "操作人 Actor",
                "时间 Time",
            ),
            page=functools.partial(
                status_changes,
                services,
                period,
                status=_text(request, "status"),
                reason=None if no_reason else _text(request, "reason"),
                department_id=mine,
            ),
            row=lambda r: (
                (
                    r.certificate_id,
                    name(r.department_id),
                    r.from_status,
                    r.to_status,
                    r.reason,
                    r.actor,
                    _time(r.created_at),
                )
            ),
        )
    if kind in ("envelopes", "completed"):
        initiator = _int(request, "initiator")
        if kind == "envelopes":
            status = _text(request, "status")
            if status not in _STATUS_NAMES:
                raise _PageError(
                    400, "没有这种签署流程状态。", f"There is no envelope status {status[:40]!r}."
                )
            page: Callable[..., Page[Any]] = functools.partial(
                envelopes_of_status,
                services,
                period,
                initiator_id=initiator,
                status=status,
                department_id=mine,
            )
        else:
            page = functools.partial(
                completed_envelopes, services, period, initiator_id=initiator, department_id=mine
            )
        return _Records(
            title_zh="签署流程" if kind == "envelopes" else "已完成的签署流程",
            title_en="Envelopes" if kind == "envelopes" else "Completed envelopes",
            header=(
                "流程 Envelope",
                "标题 Title",
                "发起部门 Initiator",
                "状态 Status",
                "发起时间 Started",
                "完成时间 Completed",
            ),
            page=page,
            row=lambda r: (
                (
                    r.id,
                    r.title,
                    name(r.initiator_id),
                    r.status,
                    _time(r.created_at),
                    _time(r.completed_at),
                )
            ),
        )
    if kind == "uses":
        return _Records(
            title_zh="跨部门用证记录",
            title_en="Uses by other departments",
            header=(
                "用证记录 Use",
                "用证部门 User",
                "发证部门 Issuer",
                "证照 Certificate",
                "标识 Identifier",
                "操作 Action",
                "事项 Matter",
                "时间 Time",
            ),
            page=functools.partial(
                uses_of_pair,
                services,
                period,
                user_id=_int(request, "user"),
                issuer_id=_int(request, "issuer"),
                department_id=mine,
            ),
            row=lambda r: (
                (
                    r.usage_id,
                    name(r.department_id),
                    name(r.issuer_id),
                    r.certificate_id,
                    r.identifier,
                    r.action,
                    r.matter,
                    _time(r.created_at),
                )
            ),
        )
    if kind == "scans":
        failed = request.query_params.get("failed") == "1"
        return _Records(
            title_zh="伪造或未知的扫码" if failed else "扫码核验",
            title_en="FORGED or UNKNOWN QR answers" if failed else "QR scans",
            header=("日期 Day", "证照 Certificate", "结果 Answer", "次数 Count"),
            page=functools.partial(
                scans_of_day, services, period.since, failed_only=failed, department_id=mine
            ),
            row=lambda r: (r.day.isoformat(), r.subject, r.verdict, r.count),
        )
    raise _PageError(404, "没有这种记录。", "There is no such kind of record.")


@router.get("/records/{kind}", response_class=HTMLResponse)
def records(
    request: Request,
    user: CurrentUser,
    kind: str,
    since: Since = None,
    to: To = None,
    department_id: DepartmentId = None,
    after: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    format: Annotated[str, Query(max_length=10)] = "html",
) -> Response:
    """The records behind a point of a chart, a page at a time (``after`` the last of the
    page before), or all of them as CSV (``format=csv``)."""
    services = _services(request)
    try:
        scope = _scope(services, user, since, to, department_id)
        found = _records(request, kind, scope)
        if format == "csv":
            first = found.page(
                after=after, limit=MAX_LIMIT
            )  # refuses a foreign point before streaming
            return StreamingResponse(
                _csv(found, first),
                media_type="text/csv; charset=utf-8",
                headers={**NO_STORE, "Content-Disposition": _attachment(kind, scope)},
            )
        page = found.page(after=after, limit=limit)
    except _PageError as error:
        return _message_page(request, user, error)
    except NotFoundError:
        return _message_page(
            request, user, _PageError(404, "没有这些记录。", "There are no such records.")
        )
    except InvalidInputError as exc:
        return _message_page(request, user, _PageError(400, "参数无效。", exc.message))
    given = {k: v for k, v in request.query_params.items() if k not in ("after", "format")}
    return console_page(
        request,
        user,
        "records.html",
        {
            "title_zh": found.title_zh,
            "title_en": found.title_en,
            "header": found.header,
            "rows": [found.row(item) for item in page.items],
            "period": (scope.period.since, scope.period.until - timedelta(days=1)),
            "next": None
            if page.next_after is None
            else f"{request.url.path}?{urlencode({**given, 'after': page.next_after})}",
            "csv": f"{request.url.path}?{urlencode({**given, 'format': 'csv'})}",
            "overview": f"/console/overview?{scope.query()}",
        },
    )


def _csv(found: _Records, first: Page[Any]) -> Iterator[str]:
    """Every record of a drill-down, a page of rows at a time."""
    yield BOM + csv_text(found.header, [found.row(item) for item in first.items])
    heading = csv_text(found.header, ())
    page = first
    while page.next_after is not None:
        page = found.page(after=page.next_after, limit=MAX_LIMIT)
        # The same writer as the first page's, without the header line again.
        yield csv_text(found.header, [found.row(item) for item in page.items]).removeprefix(heading)
