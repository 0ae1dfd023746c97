"""The console's monthly report (月度通报): a page to pick the month (and, for a supervisor,
the province or a department) and the download of the sealed PDF.

A supervisor may have the province's report or any department's; a department admin only
its own department's (another department's is 404: its existence is not revealed). Making
the report seals and registers a document, so it is a form posted with the session's CSRF
token (:data:`routes.console.FormUser`), answered with the PDF as an attachment whose file
name is made of the checked month and credit code alone.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from econtract import audit
from econtract.console import ConsoleRole, SignedInUser
from econtract.errors import InvalidInputError, NotFoundError
from econtract.logs import request_id_var
from econtract.reports import Month, file_name_of, make_monthly_report, reported_departments
from econtract.services import Services
from routes.console import NO_STORE, CurrentUser, FormUser, console_page

router = APIRouter(prefix="/console/reports", tags=["console"], include_in_schema=False)


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _page(
    request: Request,
    user: SignedInUser,
    *,
    month: str | None = None,
    department: str = "",
    status: int = 200,
    error: tuple[str, str] | None = None,
) -> Response:
    services = _services(request)
    today = services.clock.today()
    current = Month(year=today.year, month=today.month)
    supervisor = user.role == ConsoleRole.SUPERVISOR.value
    context = {
        "month": month or str(current.previous),
        "latest": str(current),
        "department": department,
        "departments": reported_departments(services) if supervisor else [],
        "supervisor": supervisor,
        "error_zh": error[0] if error else None,
        "error_en": error[1] if error else None,
    }
    return console_page(request, user, "reports.html", context, status=status)


def _not_found(request: Request, user: SignedInUser, message: str) -> Response:
    context = {"message_zh": "没有这个部门。", "message_en": message}
    return console_page(request, user, "refused.html", context, status=404)


@router.get("", response_class=HTMLResponse)
def reports_page(request: Request, user: CurrentUser) -> Response:
    """The monthly report's form: the month before this one, ready to download."""
    return _page(request, user)


@router.post("/monthly", response_model=None)
def monthly_report_download(
    request: Request,
    user: FormUser,
    month: Annotated[str, Form(max_length=20)] = "",
    department: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """The sealed report of ``month`` for the province or ``department`` (a department
    admin: its own, whatever is asked), as a PDF attachment."""
    department = department.strip()
    not_found = f"There is no department {department[:40]!r}."
    if user.role != ConsoleRole.SUPERVISOR.value:
        if department and department != user.department_code:
            return _not_found(request, user, not_found)
        department = user.department_code or ""
    try:
        parsed = Month.parse(month)
        document = make_monthly_report(
            _services(request),
            parsed,
            department_code=department or None,
            actor=audit.Actor(name=f"console:{user.name}", request_id=request_id_var.get()),
        )
    except NotFoundError:
        return _not_found(request, user, not_found)
    except InvalidInputError as exc:
        zh = "请选择已开始的月份（格式 YYYY-MM）。"
        return _page(
            request, user, month=month, department=department, status=422, error=(zh, exc.message)
        )
    with _services(request).blobs.open(document.blob_key) as stream:
        pdf = stream.read()
    # The name is the parsed month and a credit code the registry knows: nothing unchecked.
    name = file_name_of(parsed, department or None)
    headers = {**NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'}
    return Response(pdf, media_type="application/pdf", headers=headers)
