"""The console's drill-downs: the records behind every point of a figure's chart, a page at a
time (keyset pages) or all of them as CSV, read through the same conditions as the figure
(:mod:`econtract.supervision`), for the period and department :mod:`routes.console_scope`
checked.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from econtract.clock import CHINA
from econtract.csvsafe import csv_text
from econtract.errors import InvalidInputError, NotFoundError
from econtract.supervision import (
    Page,
    completed_envelopes,
    envelopes_of_status,
    issued_certificates,
    scans_of_day,
    status_changes,
    uses_of_pair,
)
from econtract.supervision._drilldown import MAX_LIMIT
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
        raise PageError(
            400,
            f"缺少或无效的参数“{name}”。",
            f"The {name!r} parameter is missing or not a number.",
        )
    return int(value)


def _text(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if not value:
        raise PageError(400, f"缺少参数“{name}”。", f"The {name!r} parameter is missing.")
    return value


def _records(request: Request, kind: str, scope: Scope) -> _Records:
    services = services_of(request)
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
            if status not in STATUS_NAMES:
                raise PageError(
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
    raise PageError(404, "没有这种记录。", "There is no such kind of record.")


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
    services = services_of(request)
    try:
        scope = read_scope(services, user, since, to, department_id)
        found = _records(request, kind, scope)
        if format == "csv":
            first = found.page(
                after=after, limit=MAX_LIMIT
            )  # refuses a foreign point before streaming
            return csv_download(csv_name(kind, scope), _csv(found, first))
        page = found.page(after=after, limit=limit)
    except PageError as error:
        return message_page(request, user, error)
    except NotFoundError:
        return message_page(
            request, user, PageError(404, "没有这些记录。", "There are no such records.")
        )
    except InvalidInputError as exc:
        return message_page(request, user, PageError(400, "参数无效。", exc.message))
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
    yield csv_text(found.header, [found.row(item) for item in first.items])
    heading = csv_text(found.header, ())
    page = first
    while page.next_after is not None:
        page = found.page(after=page.next_after, limit=MAX_LIMIT)
        # The same writer as the first page's, without the header line again.
        yield csv_text(found.header, [found.row(item) for item in page.items]).removeprefix(heading)
