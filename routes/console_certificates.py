"""The console's certificate pages: a department's certificates filtered and paged, one
certificate with its status history, and a department admin's forms to revoke, suspend or
reinstate it (the rules of :mod:`routes.console_department` hold here too)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from econtract.certificates import (
    TRANSITIONS,
    CertificateQuery,
    change_status,
    get_certificate,
    list_certificates,
    status_history,
)
from econtract.console import SignedInUser
from econtract.errors import InvalidInputError
from econtract.models import Certificate, CertificateStatus, CertificateType
from econtract.reasons import KINDS, OTHER
from routes.console import NO_STORE, CurrentUser, console_page
from routes.console_department import (
    EXPORT_LIMIT,
    PAGE_SIZE,
    AdminForm,
    Text,
    actor_of,
    csv_table,
    is_supervisor,
    list_context,
    next_page_of,
    scope_of,
    services_of,
)

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)

#: The reason codes a status change's reason starts with, as the API takes them
#: (:mod:`econtract.reasons`), offered in the form.
REASON_CODES = (*(kind.code for kind, _ in KINDS), OTHER.code)


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
        department_id=scope_of(services_of(request), user, department),
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
    with services_of(request).sessions() as session:
        rows = list_certificates(session, query)
        types = list(session.execute(select(CertificateType.code, CertificateType.name)))
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    context = list_context(
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
        next_page=next_page_of(request, rows[-1].id if more else None),
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
    with services_of(request).sessions() as session:
        while len(rows) < EXPORT_LIMIT:
            page = list_certificates(session, query)
            rows.extend(page)
            if len(page) < query.limit:
                break
            query = dataclasses.replace(query, after=page[-1].id)
    return csv_table(
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
    scope = None if is_supervisor(user) else scope_of(services_of(request), user, "")
    with services_of(request).sessions() as session:
        certificate = get_certificate(session, certificate_id, department_id=scope)
        history = status_history(session, certificate.id)
    actions = [
        action for action, (sources, _) in TRANSITIONS.items() if certificate.status in sources
    ]
    context = {
        "supervisor": is_supervisor(user),
        "certificate": certificate,
        "history": history,
        "actions": [] if is_supervisor(user) else actions,
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
            services_of(request),
            certificate_id=certificate_id,
            action=action,
            reason=text,
            actor=actor_of(user),
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
