"""The console's early warnings (监察预警): the list with its filters and CSV export, one
warning with its history, and the supervisor's forms to acknowledge and close it.

Who may do what: a supervisor reads every department's warnings and is the only one who
acknowledges or closes them (the one change a supervisor makes); a department admin reads
its own department's warnings and nothing else (another department's, or picking another
department in the filter, is 404: its existence is not revealed) and may not post the forms
(403). Every form carries the session's CSRF token (:data:`routes.console.FormUser`); a
handled form is answered with a redirect to the warning's page (post, redirect, get).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import NoMatchFound

from econtract.clock import CHINA
from econtract.console import ConsoleRole, SignedInUser
from econtract.csvsafe import csv_text
from econtract.errors import NotFoundError
from econtract.services import Services
from econtract.supervision import (
    DepartmentName,
    SubjectRecord,
    Supervisor,
    WarningClosedError,
    WarningFilter,
    WarningStatus,
    WarningView,
    acknowledge,
    all_warnings,
    close,
    departments_by_id,
    warning_record,
    warning_type_names,
    warnings_page,
)
from econtract.supervision._warning_records import MAX_PAGE
from econtract.supervision._warnings import MAX_NOTE_LENGTH
from routes.console import NO_STORE, CurrentUser, FormUser, console_page, csv_download

router = APIRouter(prefix="/console/warnings", tags=["console"], include_in_schema=False)

#: The rules a list may be filtered on, in the order the filter offers them.
RULE_IDS = (
    "WR-DEADLINE-NEAR",
    "WR-DEADLINE-PAST",
    "WR-REVOCATION-SPIKE",
    "WR-OFF-HOURS",
    "WR-NEW-SEAL-USER",
    "WR-FAILED-SCANS",
    "WR-USED-AFTER-REVOCATION",
)
#: The statuses, as the list's filter and the pages name them.
STATUS_NAMES = {
    WarningStatus.OPEN.value: ("待处理", "open"),
    WarningStatus.ACKNOWLEDGED.value: ("已确认", "acknowledged"),
    WarningStatus.CLOSED.value: ("已关闭", "closed"),
}
#: The status filter's value for every status.
ANY_STATUS = "all"
#: The console's pages of the records a warning is about, by kind: the page's route name and
#: its parameter. A record is linked once the console serves its page, plain text until then.
RECORD_PAGES = {
    "certificate": ("certificate_page", "certificate_id"),
    "envelope": ("envelope_page", "envelope_id"),
}
#: The CSV export's columns.
CSV_COLUMNS = (
    "id",
    "rule_id",
    "warning_type",
    "type_zh",
    "type_en",
    "department_code",
    "department_name",
    "subject_type",
    "subject_id",
    "raised_at",
    "status",
    "description_zh",
    "description_en",
    "acknowledged_by",
    "acknowledged_at",
    "closed_by",
    "closed_at",
    "note",
)


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _is_supervisor(user: SignedInUser) -> bool:
    return user.role == ConsoleRole.SUPERVISOR.value


def _china_time(moment: datetime | None) -> str:
    """A time as people in the province read it (China time, to the minute)."""
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M") if moment else ""


@dataclass(frozen=True)
class _RefusedError(Exception):
    """Input the list refuses, with the message for the page and its status."""

    status: int
    zh: str
    en: str


def _refused(request: Request, user: SignedInUser, status: int, zh: str, en: str) -> Response:
    context = {"message_zh": zh, "message_en": en}
    return console_page(request, user, "refused.html", context, status=status)


def _not_found(request: Request, user: SignedInUser, warning_id: str) -> Response:
    return _refused(request, user, 404, "没有这条预警。", f"There is no warning {warning_id!r}.")


# --- the list -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Filters:
    """The list's filters as the form gives them back, and the warnings' filter they make."""

    status: str
    rule: str
    department: str
    since: str
    until: str
    where: WarningFilter

    def query(self, **extra: str) -> dict[str, str]:
        """The filters as query parameters (with ``extra``), empty ones left out."""
        given = {
            "status": self.status,
            "rule": self.rule,
            "department": self.department,
            "since": self.since,
            "until": self.until,
            **extra,
        }
        return {name: value for name, value in given.items() if value}


def _day(text: str, zh: str, en: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        zh_message, en_message = f"{zh}不是有效日期（YYYY-MM-DD）。", f"{en} is not a date."
        raise _RefusedError(400, zh_message, en_message) from None


def _filters(
    user: SignedInUser,
    departments: dict[int, DepartmentName],
    *,
    status: str,
    rule: str,
    department: str,
    since: str,
    until: str,
) -> _Filters:
    """The filters of a list request, checked; :class:`_RefusedError` for any it refuses."""
    if status != ANY_STATUS and status not in STATUS_NAMES:
        raise _RefusedError(400, "状态只能是待处理、已确认或已关闭。", f"No status {status!r}.")
    if rule and rule not in RULE_IDS:
        raise _RefusedError(400, "没有这条预警规则。", f"There is no rule {rule!r}.")
    department_id = user.department_id
    if department:
        found = [d.id for d in departments.values() if d.code == department]
        # A department admin picking another department finds nothing there, as if it did
        # not exist; so does anyone picking a department that does not.
        if not found or (department_id is not None and found[0] != department_id):
            raise _RefusedError(404, "没有这个部门。", f"There is no department {department!r}.")
        department_id = found[0]
    first = _day(since, "起始日期", "The first day")
    last = _day(until, "截止日期", "The last day")
    try:
        where = WarningFilter(
            status=None if status == ANY_STATUS else WarningStatus(status),
            rule=rule or None,
            department_id=department_id,
            since=first,
            until=last,
        )
    except ValueError:
        zh_message, en_message = "截止日期早于起始日期。", "The last day comes before the first."
        raise _RefusedError(400, zh_message, en_message) from None
    return _Filters(status, rule, department, since, until, where)


def _row(warning: WarningView, departments: dict[int, DepartmentName]) -> dict[str, Any]:
    """A warning as the list, the page and the export show it."""
    type_zh, type_en = warning_type_names(warning.warning_type)
    status_zh, status_en = STATUS_NAMES[warning.status.value]
    department = departments.get(warning.department_id) if warning.department_id else None
    return {
        "id": warning.id,
        "rule_id": warning.rule_id,
        "warning_type": warning.warning_type,
        "type_zh": type_zh,
        "type_en": type_en,
        "department_code": department.code if department else "",
        "department_name": department.name if department else "",
        "subject_type": warning.subject_type,
        "subject_id": warning.subject_id,
        "raised_at": _china_time(warning.raised_at),
        "status": warning.status.value,
        "status_zh": status_zh,
        "status_en": status_en,
        "description_zh": warning.description_zh,
        "description_en": warning.description_en,
        "acknowledged_by": warning.acknowledged_by or "",
        "acknowledged_at": _china_time(warning.acknowledged_at),
        "closed_by": warning.closed_by or "",
        "closed_at": _china_time(warning.closed_at),
        "note": warning.note or "",
    }


def _csv(services: Services, filters: _Filters, departments: dict[int, DepartmentName]) -> Response:
    rows = (_row(w, departments) for w in all_warnings(services, filters.where))
    return csv_download(
        "warnings.csv", [csv_text(CSV_COLUMNS, ([row[c] for c in CSV_COLUMNS] for row in rows))]
    )


@router.get("", response_class=HTMLResponse)
def warnings_list(
    request: Request,
    user: CurrentUser,
    status: Annotated[str, Query(max_length=20)] = WarningStatus.OPEN.value,
    rule: Annotated[str, Query(max_length=40)] = "",
    department: Annotated[str, Query(max_length=18)] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
    after: Annotated[str, Query(max_length=40)] = "",
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    export: Annotated[str, Query(alias="format", max_length=8)] = "html",
) -> Response:
    """The warnings the signed-in person may read, filtered, newest first, a page at a time;
    ``format=csv`` exports every one the filters let through."""
    services = _services(request)
    departments = departments_by_id(services)
    try:
        filters = _filters(
            user,
            departments,
            status=status,
            rule=rule,
            department=department,
            since=since,
            until=until,
        )
    except _RefusedError as refusal:
        return _refused(request, user, refusal.status, refusal.zh, refusal.en)
    if export == "csv":
        return _csv(services, filters, departments)
    try:
        page = warnings_page(services, filters.where, limit=limit, after=after or None)
    except NotFoundError:
        return _refused(
            request, user, 404, "翻页位置无效，请从第一页开始。", "No such page; start again."
        )
    context = {
        "filters": filters,
        "rows": [_row(w, departments) for w in page.items],
        "next_query": (
            filters.query(limit=str(limit), after=page.next_after) if page.next_after else None
        ),
        "csv_query": filters.query(format="csv"),
        "statuses": STATUS_NAMES,
        "rules": RULE_IDS,
        "departments": sorted(departments.values(), key=lambda d: d.code),
        "may_pick_department": _is_supervisor(user),
    }
    return console_page(request, user, "warnings.html", context)


# --- one warning ----------------------------------------------------------------------------


def _record_href(request: Request, subject: SubjectRecord) -> str:
    """The path of the console's page of ``subject``; empty when there is none."""
    if subject.kind not in RECORD_PAGES:
        return ""
    name, parameter = RECORD_PAGES[subject.kind]
    try:
        return str(request.app.url_path_for(name, **{parameter: subject.id}))
    except NoMatchFound:
        return ""


def _subject_links(request: Request, subjects: tuple[SubjectRecord, ...]) -> list[dict[str, str]]:
    return [
        {"kind": s.kind, "id": s.id, "label": s.label, "href": _record_href(request, s)}
        for s in subjects
    ]


def _warning_page(
    request: Request,
    user: SignedInUser,
    warning_id: str,
    *,
    status: int = 200,
    message: tuple[str, str] | None = None,
    note: str = "",
    closing: bool = False,
) -> Response:
    services = _services(request)
    try:
        record = warning_record(services, warning_id, department_id=user.department_id)
    except NotFoundError:
        return _not_found(request, user, warning_id)
    departments = departments_by_id(services)
    history = [
        {
            "at": _china_time(entry.at),
            "actor": entry.actor,
            "status_zh": STATUS_NAMES[entry.status.value][0],
            "status_en": STATUS_NAMES[entry.status.value][1],
            "raised": index == 0,
            "note": entry.note,
        }
        for index, entry in enumerate(record.history)
    ]
    context = {
        "warning": _row(record.warning, departments),
        "history": history,
        "subjects": _subject_links(request, record.subjects),
        "may_handle": _is_supervisor(user) and record.warning.status is not WarningStatus.CLOSED,
        "max_note": MAX_NOTE_LENGTH,
        "message_zh": message[0] if message else "",
        "message_en": message[1] if message else "",
        "ack_note": "" if closing else note,
        "close_note": note if closing else "",
    }
    return console_page(request, user, "warning.html", context, status=status)


@router.get("/{warning_id}", response_class=HTMLResponse)
def warning_view(request: Request, user: CurrentUser, warning_id: str) -> Response:
    """One warning: what it says, the records it is about, and its history."""
    return _warning_page(request, user, warning_id)


# --- the forms ------------------------------------------------------------------------------


def _handle(
    request: Request, user: SignedInUser, warning_id: str, note: str, *, closing: bool
) -> Response:
    if not _is_supervisor(user):
        return _refused(
            request,
            user,
            403,
            "只有监察人员可以确认或关闭预警。",
            "Only a supervisor acknowledges or closes warnings.",
        )
    text = note.strip()
    if not text or len(text) > MAX_NOTE_LENGTH:
        message = (
            f"请填写处理意见（不超过 {MAX_NOTE_LENGTH} 字）。",
            f"Write a note of at most {MAX_NOTE_LENGTH} characters.",
        )
        return _warning_page(
            request, user, warning_id, status=422, message=message, note=note, closing=closing
        )
    handler = close if closing else acknowledge
    try:
        handler(_services(request), warning_id, text, Supervisor(name=f"console:{user.name}"))
    except NotFoundError:
        return _not_found(request, user, warning_id)
    except WarningClosedError:
        message = (
            "这条预警已关闭，不能再处理。",
            "The warning is closed; it is not handled again.",
        )
        return _warning_page(request, user, warning_id, status=409, message=message)
    return RedirectResponse(f"/console/warnings/{warning_id}", status_code=303, headers=NO_STORE)


@router.post("/{warning_id}/acknowledge")
def acknowledge_submit(
    request: Request,
    user: FormUser,
    warning_id: str,
    note: Annotated[str, Form()] = "",
) -> Response:
    """Acknowledge a warning (seen, being looked into) with a note: a supervisor only."""
    return _handle(request, user, warning_id, note, closing=False)


@router.post("/{warning_id}/close")
def close_submit(
    request: Request,
    user: FormUser,
    warning_id: str,
    note: Annotated[str, Form()] = "",
) -> Response:
    """Close a warning (dealt with) with a note: a supervisor only."""
    return _handle(request, user, warning_id, note, closing=True)
