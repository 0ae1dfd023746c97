"""The console's department pages: a department admin sees and changes their own department
only (another department's record is not found), a supervisor reads every department and
changes nothing; forms need the session's CSRF token; lists export as safe CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.clients import create_client
from econtract.departments import add_department
from econtract.envelopes import Envelope
from econtract.issuance import IssueRequest, issue_certificate
from econtract.models import (
    ApiClient,
    AuditEvent,
    Certificate,
    Department,
    SealedDocument,
    SealKind,
    UsageRecord,
)
from econtract.seals import SealRequest, create_seal
from econtract.services import Services
from tests.console.accounts import HTML, Account, signed_in
from tests.factories import OPERATOR
from tests.licences import holder_fields, qr_token

SECOND = "9133040016D272HD32"
#: A holder whose name has a LIKE wildcard, and one it would match if the wildcard were one.
PERCENT_HOLDER = "百分100%纯净水有限公司"
LOOKALIKE_HOLDER = "百分1000纯净水有限公司"


@dataclass(frozen=True)
class Arranged:
    """Records of the demo department (``own_*``) and of a second one (``other_*``)."""

    services: Services
    own_certificates: tuple[str, ...]
    other_certificate: str
    own_client: str
    other_client: str
    own_use: str
    other_use: str
    own_envelope: str
    other_envelope: str
    own_seal: str
    other_seal: str


def _issue(services: Services, code: str, holder: str | None = None) -> Certificate:
    fields = holder_fields("business_licence")
    if holder is not None:
        fields["name"] = holder
    return issue_certificate(
        services,
        department_code=code,
        request=IssueRequest(type_code="business_licence", fields=fields),
        actor=OPERATOR,
    ).certificate


def _use(usage_id: str, user: int, licence: str) -> UsageRecord:
    return UsageRecord(
        usage_id=usage_id,
        department_id=user,
        client_id="cli_test",
        action="lookup",
        certificate_id=licence,
        identifier=f"id-{usage_id}",
        use_cause="审批",
        matter=f"企业开办 {usage_id}",
        result="granted",
        salt="00" * 16,
    )


def _envelope(envelope_id: str, initiator: int) -> Envelope:
    return Envelope(
        id=envelope_id,
        title=f"合同 {envelope_id}",
        initiator_id=initiator,
        status="completed",
        steps=1,
        document_id="doc_console",
        certified_document_id="doc_console",
    )


@pytest.fixture
def arranged(initialised: Services) -> Arranged:
    """The demo department's licences (one holder with a % in the name), client, seal,
    envelope and the use of its licence by the second department; the same of the second."""
    services = initialised
    with db.transaction(services.sessions) as session:
        add_department(
            session, code=SECOND, name="台州市市场监督管理局", region=None, actor=OPERATOR
        )
        other_seal = create_seal(
            session,
            request=SealRequest(department_code=SECOND, kind=SealKind.LICENCE),
            key_store=services.key_store,
            pki=services.pki,
            actor=OPERATOR,
        ).id
        own_client = create_client(
            session,
            department_code=DEMO_DEPARTMENT_CODE,
            name="=HYPERLINK(1)",
            scopes="read",
            actor=OPERATOR,
        )[0].id
        other_client = create_client(
            session, department_code=SECOND, name="台州审批系统", scopes="read", actor=OPERATOR
        )[0].id
        ids = dict(session.execute(select(Department.code, Department.id)).all())
    own, other = ids[DEMO_DEPARTMENT_CODE], ids[SECOND]
    own_certificates = (
        _issue(services, DEMO_DEPARTMENT_CODE, PERCENT_HOLDER).id,
        _issue(services, DEMO_DEPARTMENT_CODE, LOOKALIKE_HOLDER).id,
    )
    other_certificate = _issue(services, SECOND).id
    with db.transaction(services.sessions) as session:
        own_seal = session.scalars(
            select(Certificate.seal_id).where(Certificate.id == own_certificates[0])
        ).one()
        session.add(
            SealedDocument(
                id="doc_console",
                department_id=own,
                seal_id=own_seal,
                file_name=None,
                level="B-T",
                pdf_sha256="0" * 64,
                signed_digest="0" * 64,
                blob_key="console",
            )
        )
        session.flush()
        session.add_all([_envelope("env_own", own), _envelope("env_other", other)])
        # The second department uses the demo department's licence, and the other way round.
        session.add_all(
            [_use("use_own", other, own_certificates[0]), _use("use_other", own, other_certificate)]
        )
    return Arranged(
        services=services,
        own_certificates=own_certificates,
        other_certificate=other_certificate,
        own_client=own_client,
        other_client=other_client,
        own_use="use_own",
        other_use="use_other",
        own_envelope="env_own",
        other_envelope="env_other",
        own_seal=own_seal,
        other_seal=other_seal,
    )


def _csv_rows(answer: httpx.Response) -> list[list[str]]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"].startswith("attachment;")
    assert answer.content.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))


# --- each page lists its department's records ---------------------------------------------


def test_each_page_lists_exactly_the_admins_department(
    console: TestClient, admin: Account, arranged: Arranged
) -> None:
    signed_in(console, admin)
    pages = {
        "/console/clients": (arranged.own_client, arranged.other_client),
        "/console/seals": (arranged.own_seal, arranged.other_seal),
        "/console/usage": ("企业开办 use_own", "企业开办 use_other"),
        "/console/envelopes": (arranged.own_envelope, arranged.other_envelope),
    }
    for path, (own, other) in pages.items():
        page = console.get(path, headers=HTML)
        assert page.status_code == 200, path
        assert own in page.text, path
        assert other not in page.text, path
    listing = console.get("/console/certificates", headers=HTML).text
    assert all(f"/console/certificates/{c}" in listing for c in arranged.own_certificates)
    assert arranged.other_certificate not in listing


def test_another_departments_records_are_not_found(
    console: TestClient, admin: Account, arranged: Arranged
) -> None:
    csrf = signed_in(console, admin)
    for path in (
        f"/console/certificates/{arranged.other_certificate}",
        f"/console/certificates?after={arranged.other_certificate}",
        f"/console/envelopes/{arranged.other_envelope}",
        f"/console/envelopes?after={arranged.other_envelope}",
    ):
        page = console.get(path, headers=HTML)
        assert page.status_code == 404, path
        assert "没有找到这条记录" in page.text, path
    for path in (
        f"/console/clients/{arranged.other_client}/disable",
        f"/console/certificates/{arranged.other_certificate}/revoke",
    ):
        answer = console.post(path, data={"csrf": csrf, "reason_code": "other"})
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("application/problem+json")
    with arranged.services.sessions() as session:
        client = session.get(ApiClient, arranged.other_client)
        certificate = session.get(Certificate, arranged.other_certificate)
        assert client is not None
        assert client.disabled_at is None
        assert certificate is not None
        assert certificate.status == "valid"


def test_a_supervisor_sees_every_department_without_forms(
    console: TestClient, supervisor: Account, arranged: Arranged
) -> None:
    signed_in(console, supervisor)
    clients = console.get("/console/clients", headers=HTML).text
    assert arranged.own_client in clients
    assert arranged.other_client in clients
    assert "/disable" not in clients
    usage = console.get("/console/usage", headers=HTML).text
    assert "企业开办 use_own" in usage
    assert "企业开办 use_other" in usage
    envelopes = console.get("/console/envelopes", headers=HTML).text
    assert arranged.own_envelope in envelopes
    assert arranged.other_envelope in envelopes
    certificate = console.get(
        f"/console/certificates/{arranged.other_certificate}", headers=HTML
    ).text
    assert "/revoke" not in certificate
    assert "/suspend" not in certificate
    narrowed = console.get(f"/console/clients?department={SECOND}", headers=HTML).text
    assert arranged.other_client in narrowed
    assert arranged.own_client not in narrowed


def test_every_post_of_a_supervisor_is_forbidden(
    console: TestClient, supervisor: Account, arranged: Arranged
) -> None:
    csrf = signed_in(console, supervisor)
    for path in (
        f"/console/clients/{arranged.own_client}/disable",
        f"/console/clients/{arranged.own_client}/enable",
        f"/console/certificates/{arranged.own_certificates[0]}/revoke",
        f"/console/certificates/{arranged.own_certificates[0]}/suspend",
        f"/console/certificates/{arranged.own_certificates[0]}/reinstate",
    ):
        answer = console.post(path, data={"csrf": csrf, "reason_code": "other"}, headers=HTML)
        assert answer.status_code == 403, path
        assert "您无权查看或更改此内容" in answer.text
    with arranged.services.sessions() as session:
        certificate = session.get(Certificate, arranged.own_certificates[0])
        assert certificate is not None
        assert certificate.status == "valid"


# --- changes from the console -------------------------------------------------------------


def test_a_revocation_from_the_console_shows_on_the_qr_page_and_is_audited(
    console: TestClient, admin: Account, arranged: Arranged
) -> None:
    csrf = signed_in(console, admin)
    licence = arranged.own_certificates[0]
    answer = console.post(
        f"/console/certificates/{licence}/revoke",
        data={"csrf": csrf, "reason_code": "privilegeWithdrawn", "reason": "虚假材料"},
    )
    assert answer.status_code == 303
    detail = console.get(f"/console/certificates/{licence}", headers=HTML).text
    assert "privilegeWithdrawn: 虚假材料" in detail
    assert "console:li" in detail
    with arranged.services.sessions() as session:
        certificate = session.get(Certificate, licence)
        assert certificate is not None
        token = qr_token(arranged.services, certificate)
        event = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "certificate.revoke", AuditEvent.target_id == licence
            )
        ).one()
    assert event.actor == "console:li"
    qr = console.get(f"/v/{token}", headers={"Accept": "application/json"}).json()
    assert qr["verdict"] == "REVOKED"


def test_a_department_admin_disables_and_enables_a_client(
    console: TestClient, admin: Account, arranged: Arranged
) -> None:
    csrf = signed_in(console, admin)
    for verb in ("disable", "enable"):
        answer = console.post(f"/console/clients/{arranged.own_client}/{verb}", data={"csrf": csrf})
        assert answer.status_code == 303, answer.text
    again = console.post(
        f"/console/clients/{arranged.own_client}/enable", data={"csrf": csrf}, headers=HTML
    )
    assert again.status_code == 409
    assert "记录的当前状态不允许这样操作" in again.text
    with arranged.services.sessions() as session:
        actions = session.execute(
            select(AuditEvent.action, AuditEvent.actor)
            .where(AuditEvent.target_id == arranged.own_client)
            .order_by(AuditEvent.id)
        ).all()
    assert [tuple(a) for a in actions[1:]] == [
        ("client.disable", "console:li"),
        ("client.enable", "console:li"),
    ]


def test_a_form_without_the_sessions_csrf_token_is_refused(
    console: TestClient, admin: Account, arranged: Arranged
) -> None:
    signed_in(console, admin)
    licence = arranged.own_certificates[0]
    for data in ({"reason_code": "other"}, {"reason_code": "other", "csrf": "forged"}):
        answer = console.post(f"/console/certificates/{licence}/revoke", data=data)
        assert answer.status_code == 403
    with arranged.services.sessions() as session:
        certificate = session.get(Certificate, licence)
        assert certificate is not None
        assert certificate.status == "valid"


def test_an_unknown_reason_code_is_refused_with_a_page(
    console: TestClient, admin: Account, arranged: Arranged
) -> None:
    csrf = signed_in(console, admin)
    answer = console.post(
        f"/console/certificates/{arranged.own_certificates[0]}/suspend",
        data={"csrf": csrf, "reason_code": "whim"},
        headers=HTML,
    )
    assert answer.status_code == 422
    assert "填写的内容有误" in answer.text
    assert "privilegeWithdrawn" in answer.text


# --- search and export --------------------------------------------------------------------


def test_a_percent_sign_in_the_holder_search_matches_literally(
    console: TestClient, admin: Account, arranged: Arranged
) -> None:
    signed_in(console, admin)
    page = console.get("/console/certificates", params={"holder": "100%纯净水"}, headers=HTML)
    assert page.status_code == 200
    assert f"/console/certificates/{arranged.own_certificates[0]}" in page.text
    assert f"/console/certificates/{arranged.own_certificates[1]}" not in page.text


def test_the_csv_exports_hold_the_departments_rows_with_formulas_neutralised(
    console: TestClient, admin: Account, arranged: Arranged
) -> None:
    signed_in(console, admin)
    clients = _csv_rows(console.get("/console/clients.csv"))
    assert clients[0][0] == "id"
    assert [row[0] for row in clients[1:]] == [arranged.own_client]
    assert clients[1][1] == "'=HYPERLINK(1)"
    certificates = _csv_rows(console.get("/console/certificates.csv"))
    assert {row[0] for row in certificates[1:]} == set(arranged.own_certificates)
    assert {row[3] for row in certificates[1:]} == {PERCENT_HOLDER, LOOKALIKE_HOLDER}
    usage = _csv_rows(console.get("/console/usage.csv"))
    assert [row[0] for row in usage[1:]] == [arranged.own_use]
    assert usage[1][2] == SECOND
    envelopes = _csv_rows(console.get("/console/envelopes.csv"))
    assert [row[0] for row in envelopes[1:]] == [arranged.own_envelope]
    seals = _csv_rows(console.get("/console/seals.csv"))
    assert arranged.own_seal in {row[0] for row in seals[1:]}
    assert arranged.other_seal not in {row[0] for row in seals[1:]}


def test_a_refusal_asked_for_as_json_is_a_problem(
    console: TestClient, admin: Account, arranged: Arranged
) -> None:
    signed_in(console, admin)
    answer = console.get(
        f"/console/certificates/{arranged.other_certificate}",
        headers={"Accept": "application/json"},
    )
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"].endswith("not-found")


def test_the_refused_page_is_the_consoles_only(console: TestClient, admin: Account) -> None:
    signed_in(console, admin)
    outside = console.get("/v1/certificates/crt_none", headers=HTML)
    assert outside.status_code == 401
    assert outside.headers["content-type"].startswith("application/problem+json")
    missing = console.get("/nothing-here", headers=HTML)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    inside = console.get("/console/nothing-here", headers=HTML)
    assert inside.status_code == 404
    assert "没有找到这条记录" in inside.text
