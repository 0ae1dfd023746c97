"""POST /v1/documents/seal and the access tokens it needs: a department seals with its own
seals only; bad uploads get specific problem+json errors and nothing is registered."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pyhanko.pdf_utils.reader import PdfFileReader
from sqlalchemy import func, select

from api import create_app
from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.clients import create_client
from econtract.departments import add_department
from econtract.models import AuditEvent, Seal, SealedDocument, SealKind
from econtract.seals import SealRequest, create_seal, revoke_seal
from econtract.services import Services
from tests.factories import OPERATOR, token_for
from tests.signing.sealing import make_pdf

OTHER_CODE = "9133100015J1YG617W"


def seal_id(
    services: Services, department: str = DEMO_DEPARTMENT_CODE, kind: str = "official"
) -> str:
    with services.sessions() as session:
        return session.scalars(
            select(Seal.id)
            .join(Seal.department)
            .where(Seal.kind == kind, Seal.department.has(code=department))
        ).one()


def documents(services: Services) -> int:
    with services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(SealedDocument)) or 0)


def upload(client: TestClient, token: str, pdf: bytes, **form: str) -> object:
    return client.post(
        "/v1/documents/seal",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": ("申请书.pdf", pdf, "application/pdf")},
        data=form,
    )


@dataclasses.dataclass(frozen=True)
class Sealed:
    """A document sealed over HTTP: the answer and the PDF served."""

    response: Any
    pdf: bytes

    @property
    def body(self) -> Any:
        return self.response.json()


@pytest.fixture
def sealed(api_client: TestClient, initialised: Services) -> Sealed:
    token = token_for(api_client, initialised, DEMO_DEPARTMENT_CODE, "seal,read")
    response = api_client.post(
        "/v1/documents/seal",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": ("申请书.pdf", make_pdf(), "application/pdf")},
        data={"seal": seal_id(initialised), "level": "B-T", "visible": "1:450,150"},
    )
    assert response.status_code == 201, response.text
    pdf_url = response.json()["pdf_url"]
    pdf = api_client.get(pdf_url, headers={"Authorization": f"Bearer {token}"}).content
    return Sealed(response=response, pdf=pdf)


def test_seal_registers_the_document(sealed: Sealed) -> None:
    body = sealed.body
    assert body["level"] == "B-T"
    assert body["file_name"] == "申请书.pdf"
    assert sealed.response.headers["location"] == f"/v1/documents/{body['id']}"


def test_the_sealed_pdf_served_is_the_one_registered(sealed: Sealed) -> None:
    assert hashlib.sha256(sealed.pdf).hexdigest() == sealed.body["sha256"]


def test_the_document_is_sealed_with_the_departments_seal(sealed: Sealed) -> None:
    [signature] = PdfFileReader(io.BytesIO(sealed.pdf)).embedded_signatures
    assert signature.signer_cert.subject.native["organization_name"] == "杭州市市场监督管理局"


def test_sealing_a_document_is_audited_with_its_signed_digest(
    sealed: Sealed, initialised: Services
) -> None:
    body = sealed.body
    with initialised.sessions() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "document.seal")
        ).one()
    assert event.target_id == body["id"]
    assert event.detail["signed_digest"] == body["signed_digest"]


def test_seal_answers_the_pdf_when_asked(api_client: TestClient, initialised: Services) -> None:
    token = token_for(api_client, initialised, DEMO_DEPARTMENT_CODE, "seal")
    response = api_client.post(
        "/v1/documents/seal",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/pdf"},
        files={"file": ("a.pdf", make_pdf(), "application/pdf")},
        data={"seal": seal_id(initialised), "level": "B-LT"},
    )
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    assert response.headers["x-document-id"].startswith("doc_")


def test_another_departments_seal_is_not_found(
    api_client: TestClient, initialised: Services
) -> None:
    with db.transaction(initialised.sessions) as session:
        add_department(session, code=OTHER_CODE, name="台州市建设局", region=None, actor=OPERATOR)
        create_seal(
            session,
            request=SealRequest(department_code=OTHER_CODE, kind=SealKind.OFFICIAL),
            key_store=initialised.key_store,
            pki=initialised.pki,
            actor=OPERATOR,
        )
    token = token_for(api_client, initialised, DEMO_DEPARTMENT_CODE, "seal")
    response = upload(api_client, token, make_pdf(), seal=seal_id(initialised, OTHER_CODE))
    assert response.status_code == 404  # type: ignore[attr-defined]
    assert response.json()["type"] == "urn:econtract:problem:not-found"  # type: ignore[attr-defined]
    assert documents(initialised) == 0


def test_revoked_seal_is_refused(api_client: TestClient, initialised: Services) -> None:
    seal = seal_id(initialised)
    with db.transaction(initialised.sessions) as session:
        revoke_seal(session, seal_id=seal, reason="keyCompromise", actor=OPERATOR)
    token = token_for(api_client, initialised, DEMO_DEPARTMENT_CODE, "seal")
    response = upload(api_client, token, make_pdf(), seal=seal)
    assert response.status_code == 409  # type: ignore[attr-defined]
    assert "revoked" in response.json()["detail"]  # type: ignore[attr-defined]
    assert documents(initialised) == 0


@pytest.mark.parametrize(
    ("pdf", "form", "status", "problem"),
    [
        (b"GIF89a not a pdf", {}, 415, "not-a-pdf"),
        (make_pdf(), {"visible": "5:100,100"}, 422, "bad-placement"),
        (make_pdf(), {"visible": "1:9999,100"}, 422, "bad-placement"),
        (make_pdf(), {"visible": "here"}, 422, "bad-placement"),
        (make_pdf(), {"level": "B-XL"}, 422, "invalid-input"),
    ],
)
def test_bad_uploads_are_specific_problems(
    api_client: TestClient,
    initialised: Services,
    pdf: bytes,
    form: dict[str, str],
    status: int,
    problem: str,
) -> None:
    token = token_for(api_client, initialised, DEMO_DEPARTMENT_CODE, "seal")
    response = upload(api_client, token, pdf, seal=seal_id(initialised), **form)
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    assert response.json()["type"] == f"urn:econtract:problem:{problem}"  # type: ignore[attr-defined]
    assert documents(initialised) == 0
    blobs = initialised.settings.blob_dir
    assert not blobs.exists() or not list(blobs.rglob("*.pdf"))


def test_upload_over_the_limit_is_413_before_reading(initialised: Services) -> None:
    settings = initialised.settings.model_copy(update={"max_upload_bytes": 10_000})
    with TestClient(create_app(settings)) as client:
        token = token_for(client, initialised, DEMO_DEPARTMENT_CODE, "seal")
        response = upload(client, token, b"%PDF-1.7\n" + bytes(200_000), seal=seal_id(initialised))
    assert response.status_code == 413  # type: ignore[attr-defined]
    assert documents(initialised) == 0


def test_sealing_needs_the_seal_scope(api_client: TestClient, initialised: Services) -> None:
    token = token_for(api_client, initialised, DEMO_DEPARTMENT_CODE, "read")
    response = upload(api_client, token, make_pdf(), seal=seal_id(initialised))
    assert response.status_code == 403  # type: ignore[attr-defined]


def test_sealing_needs_a_token(api_client: TestClient, initialised: Services) -> None:
    response = api_client.post(
        "/v1/documents/seal",
        files={"file": ("a.pdf", make_pdf(), "application/pdf")},
        data={"seal": seal_id(initialised)},
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"] == "invalid_token"


def test_wrong_client_secret_is_invalid_client(
    api_client: TestClient, initialised: Services
) -> None:
    with db.transaction(initialised.sessions) as session:
        client, _ = create_client(
            session, department_code=DEMO_DEPARTMENT_CODE, name="x", scopes="seal", actor=OPERATOR
        )
    response = api_client.post(
        "/v1/token",
        data={"grant_type": "client_credentials", "client_id": client.id, "client_secret": "nope"},
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_other_departments_document_is_not_found(
    api_client: TestClient, initialised: Services
) -> None:
    token = token_for(api_client, initialised, DEMO_DEPARTMENT_CODE, "seal,read")
    doc = upload(api_client, token, make_pdf(), seal=seal_id(initialised), level="B-B").json()  # type: ignore[attr-defined]
    with db.transaction(initialised.sessions) as session:
        add_department(session, code=OTHER_CODE, name="台州市建设局", region=None, actor=OPERATOR)
    other = token_for(api_client, initialised, OTHER_CODE, "read")
    response = api_client.get(
        f"/v1/documents/{doc['id']}", headers={"Authorization": f"Bearer {other}"}
    )
    assert response.status_code == 404
    assert (
        api_client.get(
            f"/v1/documents/{doc['id']}/pdf", headers={"Authorization": f"Bearer {other}"}
        ).status_code
        == 404
    )


def test_jwks_publishes_the_token_key(api_client: TestClient) -> None:
    # The token key comes first; the event key (webhooks) follows with its own key id.
    key, event_key = api_client.get("/.well-known/jwks.json").json()["keys"]
    assert event_key["kid"] != key["kid"]
    assert key["kty"] == "EC"
    assert key["crv"] == "P-256"
    assert key["alg"] == "ES256"
    assert "d" not in key


def test_parallel_approval_through_the_api(api_client: TestClient, initialised: Services) -> None:
    third_code = "9133040016D272HD32"
    with db.transaction(initialised.sessions) as session:
        for code, name in ((OTHER_CODE, "台州市建设局"), (third_code, "嘉兴市住房和城乡建设局")):
            add_department(session, code=code, name=name, region=None, actor=OPERATOR)
            create_seal(
                session,
                request=SealRequest(department_code=code, kind=SealKind.OFFICIAL),
                key_store=initialised.key_store,
                pki=initialised.pki,
                actor=OPERATOR,
            )
    first = upload_pdf(
        api_client,
        token_for(api_client, initialised, DEMO_DEPARTMENT_CODE, "seal"),
        make_pdf(),
        seal=seal_id(initialised),
        level="B-T",
        certify="form-filling",
        field="Dept1",
        visible="1:100,150",
        reserve=["Dept2@1:280,150", "Dept3@1:460,150"],
    )
    second = upload_pdf(
        api_client,
        token_for(api_client, initialised, OTHER_CODE, "seal"),
        first,
        seal=seal_id(initialised, OTHER_CODE),
        level="B-T",
        field="Dept2",
    )
    third = upload_pdf(
        api_client,
        token_for(api_client, initialised, third_code, "seal"),
        second,
        seal=seal_id(initialised, third_code),
        level="B-LT",
        field="Dept3",
    )
    signatures = PdfFileReader(io.BytesIO(third)).embedded_regular_signatures
    assert [s.field_name for s in signatures] == ["Dept1", "Dept2", "Dept3"]
    assert [s.signer_cert.subject.native["organization_name"] for s in signatures] == [
        "杭州市市场监督管理局",
        "台州市建设局",
        "嘉兴市住房和城乡建设局",
    ]
    assert documents(initialised) == 3


def upload_pdf(client: TestClient, token: str, pdf: bytes, **form: object) -> bytes:
    response = client.post(
        "/v1/documents/seal",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/pdf"},
        files={"file": ("a.pdf", pdf, "application/pdf")},
        data=form,
    )
    assert response.status_code == 201, response.text
    return bytes(response.content)


def seals_listed(client: TestClient, token: str, **params: object) -> Any:
    return client.get("/v1/seals", params=params, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def theirs(initialised: Services) -> str:
    """The official seal of another department, OTHER_CODE."""
    with db.transaction(initialised.sessions) as session:
        add_department(session, code=OTHER_CODE, name="台州市建设局", region=None, actor=OPERATOR)
        return create_seal(
            session,
            request=SealRequest(department_code=OTHER_CODE, kind=SealKind.OFFICIAL),
            key_store=initialised.key_store,
            pki=initialised.pki,
            actor=OPERATOR,
        ).id


def demo_seals(services: Services) -> dict[str, Seal]:
    with services.sessions() as session:
        return {
            s.id: s
            for s in session.scalars(
                select(Seal)
                .join(Seal.department)
                .where(Seal.department.has(code=DEMO_DEPARTMENT_CODE))
            )
        }


def test_seals_lists_the_departments_own_seals_only(
    api_client: TestClient, initialised: Services, theirs: str
) -> None:
    token = token_for(api_client, initialised, DEMO_DEPARTMENT_CODE, "read")
    listed = seals_listed(api_client, token)
    assert listed.status_code == 200, listed.text
    assert {s["id"] for s in listed.json()} == set(demo_seals(initialised))
    other = token_for(api_client, initialised, OTHER_CODE, "seal")
    assert [s["id"] for s in seals_listed(api_client, other).json()] == [theirs]


def test_a_listed_seal_describes_its_certificate(
    api_client: TestClient, initialised: Services
) -> None:
    mine = demo_seals(initialised)
    token = token_for(api_client, initialised, DEMO_DEPARTMENT_CODE, "read")
    items = seals_listed(api_client, token).json()
    assert items  # the demo department's licence and official seals
    for item in items:
        seal = mine[item["id"]]
        assert (item["kind"], item["algorithm"], item["status"]) == (
            seal.kind,
            seal.algorithm,
            "active",
        )
        assert item["certificate_sha256"] == hashlib.sha256(seal.certificate_der).hexdigest()
        assert int(item["certificate_serial"], 16) == int(seal.serial_number)
        assert item["not_before"] < item["not_after"]


def test_listing_seals_needs_the_read_or_seal_scope(
    api_client: TestClient, initialised: Services
) -> None:
    token = token_for(api_client, initialised, DEMO_DEPARTMENT_CODE, "issue")
    refused = seals_listed(api_client, token)
    assert refused.status_code == 403
    assert "'read', 'seal' or (an enterprise's) 'sign' scope" in refused.json()["detail"]


def test_seal_pages_carry_a_next_link(api_client: TestClient, initialised: Services) -> None:
    token = token_for(api_client, initialised, DEMO_DEPARTMENT_CODE, "seal")
    whole = [s["id"] for s in seals_listed(api_client, token).json()]
    assert len(whole) == 2  # the demo department's licence and official seals
    first = seals_listed(api_client, token, limit=1)
    link = first.headers["link"]
    assert link.startswith("</v1/seals?limit=1&after=")
    assert link.endswith('>; rel="next"')
    second = api_client.get(link[1 : link.index(">")], headers={"Authorization": f"Bearer {token}"})
    assert [s["id"] for s in first.json() + second.json()] == whole
    assert "link" not in second.headers
