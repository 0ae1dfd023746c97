"""What a page of the console's figures asks for: the period (China days, ``from`` and ``to``
both included, the last 30 days unless given) and the department, checked for the person who
reads it. A supervisor reads every department or the one they pick; a department admin reads
their own department only, and a page that names another answers 404, as if it did not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import Response

from econtract.clock import CHINA
from econtract.console import ConsoleRole, SignedInUser
from econtract.departments import list_departments
from econtract.services import Services
from econtract.supervision import Period
from routes.console import console_page

#: The days the overview covers unless told otherwise.
DEFAULT_DAYS = 30

STATUS_NAMES = {
    "revoked": "吊销 revoked",
    "suspended": "暂停 suspended",
    "open": "进行中 open",
    "completed": "已完成 completed",
    "declined": "已拒签 declined",
    "expired": "已过期 expired",
}


class PageError(Exception):
    """A console page refused: its status and the message in both languages."""

    def __init__(self, status: int, zh: str, en: str) -> None:
        super().__init__(en)
        self.status, self.zh, self.en = status, zh, en


def services_of(request: Request) -> Services:
    """The app's services."""
    services: Services = request.app.state.services
    return services


def message_page(request: Request, user: SignedInUser, error: PageError) -> Response:
    """The refusal ``error`` as a console page."""
    return console_page(
        request,
        user,
        "overview.html",
        {"error": error, "charts": [], "departments": [], "query": {}},
        status=error.status,
    )


# --- what a request asks for ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Scope:
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
        raise PageError(
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
        raise PageError(
            400, "时间段无效：结束日期不得早于开始日期，且不超过两年。", str(exc)
        ) from None


def read_scope(
    services: Services,
    user: SignedInUser,
    since: str | None,
    to: str | None,
    department_id: int | None,
) -> Scope:
    """The period and department a page asks for, as ``user`` may read them
    (:class:`PageError` 400 for bad dates, 404 for a department they may not see)."""
    with services.sessions() as session:
        names = {d.id: d.name for d in list_departments(session)}
    if user.role == ConsoleRole.SUPERVISOR.value:
        if department_id is not None and department_id not in names:
            raise PageError(404, "没有这个部门。", "There is no such department.")
        read = department_id
    else:
        if department_id is not None and department_id != user.department_id:
            raise PageError(404, "没有这个部门。", "There is no such department.")
        read = user.department_id
    return Scope(
        period=_period(services, since, to), department_id=read, picked=department_id, names=names
    )


#: The query parameters of a page's period and department.
Since = Annotated[str | None, Query(alias="from", max_length=40)]
To = Annotated[str | None, Query(alias="to", max_length=40)]
DepartmentId = Annotated[int | None, Query()]


def csv_name(kind: str, scope: Scope) -> str:
    """The file name of a table of ``kind`` over the scope's period."""
    last = scope.period.until - timedelta(days=1)
    return f"{kind}-{scope.period.since}-{last}.csv"
