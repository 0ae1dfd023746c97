"""The console's department pages: API clients, seals, certificates and their status, the uses
of the department's licences by other departments, envelopes; each list also as CSV.

A department admin sees their own department and changes it through the domain's use cases
(a client enabled or disabled, a certificate revoked, suspended or reinstated), each change
audited with the person as its actor. A record of another department answers 404, never 403:
its existence is not told. A supervisor sees every department (a department filter narrows
the lists) and changes nothing: every form post of theirs is refused (403).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from econtract import audit
from econtract.certificates import (
    TRANSITIONS,
    CertificateQuery,
    change_status,
    get_certificate,
    list_certificates,
    status_history,
)
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
from econtract.models import Certificate, CertificateStatus, CertificateType
from econtract.reasons import KINDS, OTHER
from econtract.services import Services
from routes.console import NO_STORE, CurrentUser, FormUser, console_page

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)

#: The rows of a page, and the most rows a CSV export holds.
PAGE_SIZE = 50
EXPORT_LIMIT = 10_000

#: The reason codes a status change's reason starts with, as the API takes them
#: (:mod:`econtract.reasons`), offered in the form.
REASON_CODES = (*(kind.code for kind, _ in KINDS), OTHER.code)

Text = Annotated[str, Query(max_length=100)]


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _is_supervisor(user: SignedInUser) -> bool:
    return user.role == ConsoleRole.SUPERVISOR.value


def _scope(services: Services, user: SignedInUser, department: str) -> int | None:
    """The department a list is scoped to: a department admin's own; for a supervisor, the
    department filtered on, or ``None`` (every department)."""
    if not _is_supervisor(user):
        if user.department_id is None:
            raise PermissionDeniedError("This console account has no department.")
        return user.department_id
    if not department:
        return None
    with services.sessions() as session:
        return get_department(session, department).id


def _admin_form(user: FormUser) -> SignedInUser:
    """A form post's person, after its CSRF check: a department admin (a supervisor reads
    only, 403)."""
    if _is_supervisor(user) or user.department_id is None:
        raise PermissionDeniedError(
            "A supervisor reads the console; only a department admin "
            "changes their department's records."
        )
    return user


AdminForm = Annotated[SignedInUser, Depends(_admin_form)]


def _actor(user: SignedInUser) -> audit.Actor:
    return audit.Actor(
        name=f"console:{user.name}",
        department_id=user.department_id,
        request_id=request_id_var.get(),
    )


def _filters(request: Request, user: SignedInUser, **more: Any) -> dict[str, Any]:
    """What every list page shows besides its rows: the department filter of a supervisor."""
    context: dict[str, Any] = {"supervisor": _is_supervisor(user), **more}
    if _is_supervisor(user):
        with _services(request).sessions() as session:
            context["departments"] = [(d.code, d.name) for d in list_departments(session)]
    return context


def _csv(name: str, header: Sequence[str], rows: Iterator[Sequence[object]]) -> Response:
    """A CSV download: UTF-8 with a byte-order mark (so that Excel and WPS read the Chinese
    as such), every cell neutralised by :mod:`econtract.csvsafe`."""
    body = "\ufeff" + csv_text(header, rows)
    return Response(
        body.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"', **NO_STORE},
    )


def _next(request: Request, after: str | None) -> str | None:
    """The address of the next page: this one's query with ``after`` replaced."""
    if after is None:
        return None
    params = {k: v for k, v in request.query_params.items() if k != "after"}
    params["after"] = after
    return str(request.url.replace_query_params(**params))


# --- clients ------------------------------------------------------------------------------

CLIENT_HEADER = ("id", "name", "department", "scopes", "created_at", "enabled")


def _client_rows(request: Request, user: SignedInUser, department: str) -> list[Any]:
    services = _services(request)
    scope = _scope(services, user, department)
    with services.sessions() as session:
        return list(clients_of(session, department_id=scope))


@router.get("/clients", response_class=HTMLResponse)
def clients_page(request: Request, user: CurrentUser, department: Text = "") -> Response:
    """The department's API clients; a department admin enables and disables them here."""
    rows = _client_rows(request, user, department)
    context = _filters(request, user, clients=rows, department=department)
    return console_page(request, user, "department_clients.html", context)


@router.get("/clients.csv")
def clients_csv(request: Request, user: CurrentUser, department: Text = "") -> Response:
    """The clients of :func:`clients_page` as CSV."""
    rows = _client_rows(request, user, department)
    return _csv(
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
            _services(request), client_id=client_id, enabled=enabled, actor=_actor(user)
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


def _seal_rows(request: Request, user: SignedInUser, department: str) -> list[Any]:
    services = _services(request)
    scope = _scope(services, user, department)
    with services.sessions() as session:
        return list(seals_of(session, department_id=scope))


@router.get("/seals", response_class=HTMLResponse)
def seals_page(request: Request, user: CurrentUser, department: Text = "") -> Response:
    """The department's seals and their certificates' validity."""
    rows = _seal_rows(request, user, department)
    context = _filters(request, user, seals=rows, department=department)
    return console_page(request, user, "department_seals.html", context)


@router.get("/seals.csv")
def seals_csv(request: Request, user: CurrentUser, department: Text = "") -> Response:
    """The seals of :func:`seals_page` as CSV."""
    rows = _seal_rows(request, user, department)
    return _csv(
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


# --- certificates -------------------------------------------------------------------------

CERTIFICATE_HEADER = (
    "id",
    "number",
    "type",
    "holder",
    "department",
    "valid_from",
    "valid_until",
    "status",
    "issued_at",
)


def _certificate_query(
    request: Request,
    user: SignedInUser,
    *,
    department: str,
    type: str,
    status: str,
    number: str,
    holder: str,
    after: str,
    limit: int,
) -> CertificateQuery:
    if status and status not in {s.value for s in CertificateStatus}:
        raise InvalidInputError(
            f"The status is one of {', '.join(s.value for s in CertificateStatus)}.",
            errors=[("/status", "unknown")],
        )
    return CertificateQuery(
        department_id=_scope(_services(request), user, department),
        type_code=type or None,
        status=status or None,
        number=number.strip() or None,
        holder=holder.strip() or None,
        after=after or None,
        limit=limit,
    )


@router.get("/certificates", response_class=HTMLResponse)
def certificates_page(
    request: Request,
    user: CurrentUser,
    department: Text = "",
    type: Text = "",
    status: Text = "",
    number: Text = "",
    holder: Text = "",
    after: Text = "",
) -> Response:
    """The department's certificates, newest first, filtered by type, status, number or a
    part of the holder's name, a page at a time."""
    query = _certificate_query(
        request,
        user,
        department=department,
        type=type,
        status=status,
        number=number,
        holder=holder,
        after=after,
        limit=PAGE_SIZE + 1,
    )
    with _services(request).sessions() as session:
        rows = list_certificates(session, query)
        types = list(session.execute(select(CertificateType.code, CertificateType.name)))
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    context = _filters(
        request,
        user,
        certificates=rows,
        types=types,
        statuses=[s.value for s in CertificateStatus],
        department=department,
        type=type,
        status=status,
        number=number,
        holder=holder,
        next_page=_next(request, rows[-1].id if more else None),
    )
    return console_page(request, user, "department_certificates.html", context)


@router.get("/certificates.csv")
def certificates_csv(
    request: Request,
    user: CurrentUser,
    department: Text = "",
    type: Text = "",
    status: Text = "",
    number: Text = "",
    holder: Text = "",
) -> Response:
    """The certificates of :func:`certificates_page` (every page, up to
    :data:`EXPORT_LIMIT`) as CSV."""
    query = _certificate_query(
        request,
        user,
        department=department,
        type=type,
        status=status,
        number=number,
        holder=holder,
        after="",
        limit=200,
    )
    rows: list[Certificate] = []
    with _services(request).sessions() as session:
        while len(rows) < EXPORT_LIMIT:
            page = list_certificates(session, query)
            rows.extend(page)
            if len(page) < query.limit:
                break
            query = dataclasses.replace(query, after=page[-1].id)
    return _csv(
        "certificates",
        CERTIFICATE_HEADER,
        (
            (
                c.id,
                c.number,
                c.type_code,
                c.holder_name,
                c.issuer.code,
                c.valid_from.isoformat(),
                c.valid_until.isoformat() if c.valid_until else "",
                c.status,
                c.issued_at.isoformat(),
            )
            for c in rows[:EXPORT_LIMIT]
        ),
    )


@router.get("/certificates/{certificate_id}", response_class=HTMLResponse)
def certificate_page(request: Request, user: CurrentUser, certificate_id: str) -> Response:
    """One certificate and its status history; a department admin's forms to change its
    status."""
    scope = None if _is_supervisor(user) else _scope(_services(request), user, "")
    with _services(request).sessions() as session:
        certificate = get_certificate(session, certificate_id, department_id=scope)
        history = status_history(session, certificate.id)
    actions = [
        action for action, (sources, _) in TRANSITIONS.items() if certificate.status in sources
    ]
    context = {
        "supervisor": _is_supervisor(user),
        "certificate": certificate,
        "history": history,
        "actions": [] if _is_supervisor(user) else actions,
        "reason_codes": REASON_CODES,
    }
    return console_page(request, user, "department_certificate.html", context)


def _status_change(action: str) -> Any:
    def change(
        request: Request,
        certificate_id: str,
        user: AdminForm,
        reason_code: Annotated[str, Form(max_length=40)],
        reason: Annotated[str, Form(max_length=480)] = "",
    ) -> Response:
        if reason_code not in REASON_CODES:
            raise InvalidInputError(
                f"The reason code is one of {', '.join(REASON_CODES)}.",
                errors=[("/reason_code", "unknown")],
            )
        # The API takes a reason whose first word is its code; the form gives both apart.
        text = f"{reason_code}: {reason.strip()}" if reason.strip() else reason_code
        change_status(
            _services(request),
            certificate_id=certificate_id,
            action=action,
            reason=text,
            actor=_actor(user),
        )
        return RedirectResponse(
            f"/console/certificates/{certificate_id}", status_code=303, headers=NO_STORE
        )

    change.__doc__ = f"{action.capitalize()} one of the department's certificates, with a reason."
    return change


for _action in TRANSITIONS:
    router.add_api_route(
        f"/certificates/{{certificate_id}}/{_action}",
        _status_change(_action),
        methods=["POST"],
        name=f"console_certificate_{_action}",
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
    services = _services(request)
    scope = _scope(services, user, department)
    with services.sessions() as session:
        rows, more = uses_of_licences(
            session, issuer_id=scope, after=_cursor(after), limit=PAGE_SIZE
        )
    context = _filters(
        request,
        user,
        uses=rows,
        department=department,
        next_page=_next(request, str(rows[-1].cursor) if more else None),
    )
    return console_page(request, user, "department_usage.html", context)


@router.get("/usage.csv")
def usage_csv(request: Request, user: CurrentUser, department: Text = "") -> Response:
    """The uses of :func:`usage_page` (up to :data:`EXPORT_LIMIT`) as CSV."""
    services = _services(request)
    scope = _scope(services, user, department)
    rows: list[Any] = []
    after = None
    with services.sessions() as session:
        while len(rows) < EXPORT_LIMIT:
            page, more = uses_of_licences(session, issuer_id=scope, after=after, limit=200)
            rows.extend(page)
            if not more:
                break
            after = page[-1].cursor
    return _csv(
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
    scope = None if _is_supervisor(user) else _scope(_services(request), user, "")
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
        _services(request),
        actor=_envelope_actor(request, user),
        status=_envelope_status(status),
        party=party.strip().upper() or None,
        after=after or None,
        limit=PAGE_SIZE,
    )
    context = {
        "supervisor": _is_supervisor(user),
        "envelopes": envelopes,
        "statuses": [s.value for s in EnvelopeStatus],
        "status": status,
        "party": party,
        "next_deadline": next_deadline,
        "next_page": _next(request, envelopes[-1].id if more else None),
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
            _services(request),
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
    return _csv(
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
    envelope = get_envelope(_services(request), envelope_id, actor=_envelope_actor(request, user))
    context = {"supervisor": _is_supervisor(user), "envelope": envelope}
    return console_page(request, user, "department_envelope.html", context)
