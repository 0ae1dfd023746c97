"""The console's department pages: API clients, seals, certificates and their status, the uses
of the department's licences by other departments, envelopes; each list also as CSV.

A department admin sees their own department and changes it through the domain's use cases
(a client enabled or disabled; a certificate revoked, suspended or reinstated in
:mod:`routes.console_certificates`), each change audited with the person as its actor. A
record of another department answers 404, never 403: its existence is not told. A supervisor
sees every department (a department filter narrows the lists) and changes nothing: every form
post of theirs is refused (403).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from econtract import audit
from econtract.console import ConsoleRole, SignedInUser
from econtract.console.department_records import (
    clients_of,
    seals_of,
    set_client_enabled,
    uses_of_licences,
)
from econtract.csvsafe import csv_text
from econtract.departments import get_department, list_departments
from econtract.envelopes import EnvelopeStatus, EnvelopeView, get_envelope, list_envelopes
from econtract.errors import InvalidInputError, PermissionDeniedError
from econtract.logs import request_id_var
from econtract.services import Services
from routes.console import NO_STORE, CurrentUser, FormUser, console_page, csv_download

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)

#: The rows of a page, and the most rows a CSV export holds.
PAGE_SIZE = 50
EXPORT_LIMIT = 10_000

Text = Annotated[str, Query(max_length=100)]
_Row = TypeVar("_Row")


def csv_table(name: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Response:
    """The table ``name`` as a CSV download (see :func:`routes.console.csv_download`)."""
    return csv_download(f"{name}.csv", [csv_text(header, rows)])


def services_of(request: Request) -> Services:
    """The service's services, as the app holds them."""
    services: Services = request.app.state.services
    return services


def is_supervisor(user: SignedInUser) -> bool:
    """Whether ``user`` reads every department (and changes nothing)."""
    return user.role == ConsoleRole.SUPERVISOR.value


def scope_of(services: Services, user: SignedInUser, department: str) -> int | None:
    """The department a list is scoped to: a department admin's own; for a supervisor, the
    department filtered on, or ``None`` (every department)."""
    if not is_supervisor(user):
        if user.department_id is None:
            raise PermissionDeniedError("This console account has no department.")
        return user.department_id
    if not department:
        return None
    with services.sessions() as session:
        return get_department(session, department).id


def admin_form(user: FormUser) -> SignedInUser:
    """A form post's person, after its CSRF check: a department admin (a supervisor reads
    only, 403)."""
    if is_supervisor(user) or user.department_id is None:
        raise PermissionDeniedError(
            "A supervisor reads the console; only a department admin "
            "changes their department's records."
        )
    return user


AdminForm = Annotated[SignedInUser, Depends(admin_form)]


def actor_of(user: SignedInUser) -> audit.Actor:
    """The person as the audit trail names them: ``console:<name>``, of their department."""
    return audit.Actor(
        name=f"console:{user.name}",
        department_id=user.department_id,
        request_id=request_id_var.get(),
    )


def list_context(request: Request, user: SignedInUser, **more: Any) -> dict[str, Any]:
    """What every list page shows besides its rows: the department filter of a supervisor."""
    context: dict[str, Any] = {"supervisor": is_supervisor(user), **more}
    if is_supervisor(user):
        with services_of(request).sessions() as session:
            context["departments"] = [(d.code, d.name) for d in list_departments(session)]
    return context


def next_page_of(request: Request, after: str | None) -> str | None:
    """The address of the next page: this one's query with ``after`` replaced."""
    if after is None:
        return None
    params = {k: v for k, v in request.query_params.items() if k != "after"}
    params["after"] = after
    return str(request.url.replace_query_params(**params))


# --- clients ------------------------------------------------------------------------------

CLIENT_HEADER = ("id", "name", "department", "scopes", "created_at", "enabled")


def _rows_of(
    request: Request,
    user: SignedInUser,
    department: str,
    lister: Callable[..., Sequence[_Row]],
) -> Sequence[_Row]:
    """What ``lister`` lists of the departments ``user`` may see (narrowed to ``department``
    for a supervisor who filters on one)."""
    services = services_of(request)
    scope = scope_of(services, user, department)
    with services.sessions() as session:
        return lister(session, department_id=scope)


@router.get("/clients", response_class=HTMLResponse)
def clients_page(request: Request, user: CurrentUser, department: Text = "") -> Response:
    """The department's API clients; a department admin enables and disables them here."""
    rows = _rows_of(request, user, department, clients_of)
    context = list_context(request, user, clients=rows, department=department)
    return console_page(request, user, "department_clients.html", context)


@router.get("/clients.csv")
def clients_csv(request: Request, user: CurrentUser, department: Text = "") -> Response:
    """The clients of :func:`clients_page` as CSV."""
    rows = _rows_of(request, user, department, clients_of)
    return csv_table(
        "clients",
        CLIENT_HEADER,
        (
            (c.id, c.name, c.department_code, c.scopes, c.created_at.isoformat(), c.enabled)
            for c in rows
        ),
    )


def _client_change(enabled: bool) -> Any:
    def change(request: Request, client_id: str, user: AdminForm) -> Response:
        set_client_enabled(
            services_of(request), client_id=client_id, enabled=enabled, actor=actor_of(user)
        )
        return RedirectResponse("/console/clients", status_code=303, headers=NO_STORE)

    change.__doc__ = f"{'Enable' if enabled else 'Disable'} one of the department's clients."
    return change


router.add_api_route(
    "/clients/{client_id}/disable", _client_change(False), methods=["POST"], name="client_disable"
)
router.add_api_route(
    "/clients/{client_id}/enable", _client_change(True), methods=["POST"], name="client_enable"
)


# --- seals --------------------------------------------------------------------------------

SEAL_HEADER = (
    "id",
    "department",
    "kind",
    "algorithm",
    "subject",
    "not_before",
    "not_after",
    "status",
)


@router.get("/seals", response_class=HTMLResponse)
def seals_page(request: Request, user: CurrentUser, department: Text = "") -> Response:
    """The department's seals and their certificates' validity."""
    rows = _rows_of(request, user, department, seals_of)
    context = list_context(request, user, seals=rows, department=department)
    return console_page(request, user, "department_seals.html", context)


@router.get("/seals.csv")
def seals_csv(request: Request, user: CurrentUser, department: Text = "") -> Response:
    """The seals of :func:`seals_page` as CSV."""
    rows = _rows_of(request, user, department, seals_of)
    return csv_table(
        "seals",
        SEAL_HEADER,
        (
            (
                s.id,
                s.department_code,
                s.kind,
                s.algorithm,
                s.subject,
                s.not_before.isoformat(),
                s.not_after.isoformat(),
                s.status,
            )
            for s in rows
        ),
    )


# --- uses of the department's licences ----------------------------------------------------

USE_HEADER = (
    "usage_id",
    "time",
    "user_department",
    "user_name",
    "issuer",
    "certificate_id",
    "number",
    "action",
    "use_cause",
    "matter",
    "case_number",
    "consent_id",
    "result",
)


def _cursor(after: str) -> int | None:
    if not after:
        return None
    if not after.isdigit():
        raise InvalidInputError("The page cursor is a number.", errors=[("/after", "not a number")])
    return int(after)


@router.get("/usage", response_class=HTMLResponse)
def usage_page(
    request: Request, user: CurrentUser, department: Text = "", after: Text = ""
) -> Response:
    """The uses of the department's licences by other departments, newest first."""
    services = services_of(request)
    scope = scope_of(services, user, department)
    with services.sessions() as session:
        rows, more = uses_of_licences(
            session, issuer_id=scope, after=_cursor(after), limit=PAGE_SIZE
        )
    context = list_context(
        request,
        user,
        uses=rows,
        department=department,
        next_page=next_page_of(request, str(rows[-1].cursor) if more else None),
    )
    return console_page(request, user, "department_usage.html", context)


@router.get("/usage.csv")
def usage_csv(request: Request, user: CurrentUser, department: Text = "") -> Response:
    """The uses of :func:`usage_page` (up to :data:`EXPORT_LIMIT`) as CSV."""
    services = services_of(request)
    scope = scope_of(services, user, department)
    rows: list[Any] = []
    after = None
    with services.sessions() as session:
        while len(rows) < EXPORT_LIMIT:
            page, more = uses_of_licences(session, issuer_id=scope, after=after, limit=200)
            rows.extend(page)
            if not more:
                break
            after = page[-1].cursor
    return csv_table(
        "usage",
        USE_HEADER,
        (
            (
                u.usage_id,
                u.time.isoformat(),
                u.user_code,
                u.user_name,
                u.issuer_code,
                u.certificate_id,
                u.number,
                u.action,
                u.use_cause,
                u.matter,
                u.case_number,
                u.consent_id,
                u.result,
            )
            for u in rows[:EXPORT_LIMIT]
        ),
    )


# --- envelopes ----------------------------------------------------------------------------

ENVELOPE_HEADER = (
    "id",
    "title",
    "initiator",
    "status",
    "step",
    "steps",
    "parties",
    "next_deadline",
    "created_at",
    "completed_at",
)


def _envelope_status(status: str) -> EnvelopeStatus | None:
    if not status:
        return None
    try:
        return EnvelopeStatus(status)
    except ValueError:
        raise InvalidInputError(
            f"The status is one of {', '.join(s.value for s in EnvelopeStatus)}.",
            errors=[("/status", "unknown")],
        ) from None


def _envelope_actor(request: Request, user: SignedInUser) -> audit.Actor:
    """Who reads envelopes: the admin's department, or a supervisor (every department)."""
    scope = None if is_supervisor(user) else scope_of(services_of(request), user, "")
    return audit.Actor(name=f"console:{user.name}", department_id=scope)


def next_deadline(envelope: EnvelopeView) -> str:
    """The deadline of the step the envelope waits on ("" once it is closed)."""
    deadlines = [p.deadline for p in envelope.parties if p.step == envelope.step]
    return min(deadlines).isoformat() if deadlines and envelope.status == "open" else ""


@router.get("/envelopes", response_class=HTMLResponse)
def envelopes_page(
    request: Request,
    user: CurrentUser,
    status: Text = "",
    party: Text = "",
    after: Text = "",
) -> Response:
    """The envelopes the department initiated or is a party to (every envelope for a
    supervisor), newest first, by status and party."""
    envelopes, more = list_envelopes(
        services_of(request),
        actor=_envelope_actor(request, user),
        status=_envelope_status(status),
        party=party.strip().upper() or None,
        after=after or None,
        limit=PAGE_SIZE,
    )
    context = {
        "supervisor": is_supervisor(user),
        "envelopes": envelopes,
        "statuses": [s.value for s in EnvelopeStatus],
        "status": status,
        "party": party,
        "next_deadline": next_deadline,
        "next_page": next_page_of(request, envelopes[-1].id if more else None),
    }
    return console_page(request, user, "department_envelopes.html", context)


@router.get("/envelopes.csv")
def envelopes_csv(
    request: Request, user: CurrentUser, status: Text = "", party: Text = ""
) -> Response:
    """The envelopes of :func:`envelopes_page` (up to :data:`EXPORT_LIMIT`) as CSV."""
    rows: list[EnvelopeView] = []
    after = None
    actor = _envelope_actor(request, user)
    while len(rows) < EXPORT_LIMIT:
        page, more = list_envelopes(
            services_of(request),
            actor=actor,
            status=_envelope_status(status),
            party=party.strip().upper() or None,
            after=after,
            limit=200,
        )
        rows.extend(page)
        if not more:
            break
        after = page[-1].id
    return csv_table(
        "envelopes",
        ENVELOPE_HEADER,
        (
            (
                e.id,
                e.title,
                e.initiator,
                e.status,
                e.step,
                e.steps,
                " ".join(f"{p.step}:{p.code}:{p.status}" for p in e.parties),
                next_deadline(e),
                e.created_at.isoformat(),
                e.completed_at.isoformat() if e.completed_at else "",
            )
            for e in rows[:EXPORT_LIMIT]
        ),
    )


@router.get("/envelopes/{envelope_id}", response_class=HTMLResponse)
def envelope_page(request: Request, user: CurrentUser, envelope_id: str) -> Response:
    """One envelope: its parties in step order, their deadlines and what each did."""
    envelope = get_envelope(services_of(request), envelope_id, actor=_envelope_actor(request, user))
    context = {"supervisor": is_supervisor(user), "envelope": envelope}
    return console_page(request, user, "department_envelope.html", context)
