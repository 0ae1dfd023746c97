"""The issuing API: tokens, scopes, department scoping, idempotency and bad input."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api import create_app
from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.clients import create_client
from econtract.departments import add_department
from econtract.issuance import TEMPLATES
from econtract.models import Certificate, SealKind
from econtract.seals import SealRequest, create_seal
from econtract.services import Services
from econtract.uscc import check_character, organisation_check_character
from tests.factories import OPERATOR, token_for

OTHER_CODE = "9133100015J1YG617W"


def auth(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


def issuing(token: str) -> dict[str, str]:
    """Headers of an issuing request: the token and a fresh Idempotency-Key."""
    return auth(token, **{"Idempotency-Key": f"case-{secrets.token_hex(8)}"})


def body(**overrides: Any) -> dict[str, Any]:
    return {
        "type": "business_licence",
        "fields": dict(TEMPLATES["business_licence"].schema["examples"][0]),
    } | overrides


def credit_code(n: int) -> str:
    """A valid credit code of its own for holder ``n`` (both check characters right)."""
    organisation = f"{n:08d}"
    first17 = "91330100" + organisation + organisation_check_character(organisation)
    return first17 + check_character(first17)


def holder(n: int, **fields: Any) -> dict[str, Any]:
    """An issuing body for holder ``n``: the example licence under another credit code."""
    return body(fields=body()["fields"] | {"credit_code": credit_code(n)} | fields)


def certificates(services: Services) -> int:
    with services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Certificate)) or 0)


def test_certificate_types_carry_schemas_with_examples(api_client: TestClient) -> None:
    types = {t["code"]: t for t in api_client.get("/v1/certificate-types").json()}
    assert {"business_licence", "food_business_permit", "construction_permit"} <= set(types)
    for t in types.values():
        assert t["fields_schema"]["examples"]


def test_issue_then_read_list_and_download(api_client: TestClient, initialised: Services) -> None:
    token = token_for(api_client, initialised)
    created = api_client.post("/v1/certificates", json=body(), headers=issuing(token))
    assert created.status_code == 201, created.text
    certificate = created.json()
    assert certificate["status"] == "valid"
    assert created.headers["location"] == f"/v1/certificates/{certificate['id']}"
    assert (
        api_client.get(f"/v1/certificates/{certificate['id']}", headers=auth(token)).json()
        == certificate
    )
    listed = api_client.get(
        "/v1/certificates", params={"number": certificate["number"]}, headers=auth(token)
    ).json()
    assert [c["id"] for c in listed] == [certificate["id"]]
    pdf = api_client.get(certificate["pdf_url"], headers=auth(token))
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")


def test_idempotency_key_replays_and_refuses_another_body(
    api_client: TestClient, initialised: Services
) -> None:
    token = token_for(api_client, initialised)
    first = api_client.post(
        "/v1/certificates", json=body(), headers=auth(token, **{"Idempotency-Key": "order-42"})
    )
    again = api_client.post(
        "/v1/certificates", json=body(), headers=auth(token, **{"Idempotency-Key": "order-42"})
    )
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    changed = holder(1, name="另一家公司有限公司")
    other = api_client.post(
        "/v1/certificates", json=changed, headers=auth(token, **{"Idempotency-Key": "order-42"})
    )
    assert other.status_code == 422
    assert certificates(initialised) == 1
    # Keys are per client: another client's "order-42" is a different request.
    second_client = token_for(api_client, initialised)
    fresh = api_client.post(
        "/v1/certificates",
        json=changed,
        headers=auth(second_client, **{"Idempotency-Key": "order-42"}),
    )
    assert fresh.status_code == 201


def test_another_departments_certificate_is_404(
    api_client: TestClient, initialised: Services
) -> None:
    mine = api_client.post(
        "/v1/certificates", json=body(), headers=issuing(token_for(api_client, initialised))
    ).json()
    with db.transaction(initialised.sessions) as session:
        add_department(
            session, code=OTHER_CODE, name="台州市市场监督管理局", region=None, actor=OPERATOR
        )
        create_seal(
            session,
            request=SealRequest(department_code=OTHER_CODE, kind=SealKind.LICENCE),
            key_store=initialised.key_store,
            pki=initialised.pki,
            actor=OPERATOR,
        )
    theirs = token_for(api_client, initialised, OTHER_CODE)
    for path in (f"/v1/certificates/{mine['id']}", f"/v1/certificates/{mine['id']}/pdf"):
        assert api_client.get(path, headers=auth(theirs)).status_code == 404
    revoke = api_client.post(
        f"/v1/certificates/{mine['id']}/revoke", json={"reason": "x"}, headers=auth(theirs)
    )
    assert revoke.status_code == 404
    assert api_client.get("/v1/certificates", headers=auth(theirs)).json() == []


def test_status_changes_over_http(api_client: TestClient, initialised: Services) -> None:
    token = token_for(api_client, initialised)
    certificate = api_client.post("/v1/certificates", json=body(), headers=issuing(token)).json()
    path = f"/v1/certificates/{certificate['id']}"
    assert (
        api_client.post(f"{path}/suspend", json={"reason": "核查"}, headers=auth(token)).json()[
            "status"
        ]
        == "suspended"
    )
    assert (
        api_client.post(f"{path}/suspend", json={"reason": "核查"}, headers=auth(token)).status_code
        == 409
    )
    assert (
        api_client.post(f"{path}/reinstate", json={"reason": "完毕"}, headers=auth(token)).json()[
            "status"
        ]
        == "valid"
    )
    renewed = api_client.post(f"{path}/supersede", json={}, headers=auth(token))
    assert renewed.status_code == 201
    assert renewed.json()["supersedes"] == certificate["id"]
    assert api_client.get(path, headers=auth(token)).json()["status"] == "superseded"


@pytest.mark.parametrize(
    ("payload", "pointer"),
    [
        (body(type="driving_licence"), "/type"),
        (body(fields={**body()["fields"], "name": "名" * 2000}), "/fields/name"),
        (body(fields={**body()["fields"], "address": "杭州\u202e市"}), "/fields/address"),
        (body(fields={**body()["fields"], "name": "ab\x07c"}), "/fields/name"),
        (body(fields=["name"]), "/fields"),
        (body(colour="red"), "/colour"),
    ],
)
def test_bad_requests_are_422_naming_the_field(
    api_client: TestClient, initialised: Services, payload: dict[str, Any], pointer: str
) -> None:
    response = api_client.post(
        "/v1/certificates", json=payload, headers=issuing(token_for(api_client, initialised))
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert pointer in {e["pointer"] for e in response.json()["errors"]}
    assert certificates(initialised) == 0


def test_a_100_mb_body_is_413_before_it_is_read(
    api_client: TestClient, initialised: Services
) -> None:
    token = token_for(api_client, initialised)
    response = api_client.post(
        "/v1/certificates",
        content=b"{" + b" " * 100_000_000 + b"}",
        headers=issuing(token) | {"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert certificates(initialised) == 0


def test_issuing_needs_the_issue_scope(api_client: TestClient, initialised: Services) -> None:
    token = token_for(api_client, initialised, scopes="read")
    assert (
        api_client.post("/v1/certificates", json=body(), headers=issuing(token)).status_code == 403
    )


def test_issuing_without_an_idempotency_key_is_428(
    api_client: TestClient, initialised: Services
) -> None:
    token = token_for(api_client, initialised)
    response = api_client.post("/v1/certificates", json=body(), headers=auth(token))
    assert response.status_code == 428, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:econtract:problem:idempotency-key-required"
    assert "Idempotency-Key" in problem["detail"]
    assert "retried request" in problem["detail"]
    assert certificates(initialised) == 0


def test_a_chunked_body_over_the_limit_is_413(initialised: Services) -> None:
    settings = initialised.settings.model_copy(update={"max_request_bytes": 4096})
    with TestClient(create_app(settings)) as client:
        token = token_for(client, initialised)

        def chunks() -> Iterator[bytes]:
            yield b'{"type": "business_licence", "fields": {"name": "'
            for _ in range(10):
                yield b"x" * 1024
            yield b'"}}'

        response = client.post(
            "/v1/certificates",
            content=chunks(),
            headers=issuing(token) | {"Content-Type": "application/json"},
        )
    assert response.status_code == 413, response.text
    assert response.json()["type"] == "urn:econtract:problem:payload-too-large"
    assert certificates(initialised) == 0


def test_a_business_term_before_the_validity_start_names_the_field(
    api_client: TestClient, initialised: Services
) -> None:
    start = date.today() + timedelta(days=30)
    payload = holder(2, business_term=(start - timedelta(days=10)).isoformat()) | {
        "valid_from": start.isoformat()
    }
    response = api_client.post(
        "/v1/certificates", json=payload, headers=issuing(token_for(api_client, initialised))
    )
    assert response.status_code == 422, response.text
    assert [e["pointer"] for e in response.json()["errors"]] == ["/fields/business_term"]
    assert certificates(initialised) == 0


def test_an_establishment_date_in_the_future_is_refused(
    api_client: TestClient, initialised: Services
) -> None:
    tomorrow = date.today() + timedelta(days=2)  # a day ahead of any time zone's today
    response = api_client.post(
        "/v1/certificates",
        json=holder(3, established=tomorrow.isoformat()),
        headers=issuing(token_for(api_client, initialised)),
    )
    assert response.status_code == 422, response.text
    assert [e["pointer"] for e in response.json()["errors"]] == ["/fields/established"]
    assert "after today" in response.json()["detail"]


def test_a_validity_entirely_in_the_past_is_refused(
    api_client: TestClient, initialised: Services
) -> None:
    payload = holder(4) | {"valid_from": "2020-01-01", "valid_until": "2021-12-31"}
    response = api_client.post(
        "/v1/certificates", json=payload, headers=issuing(token_for(api_client, initialised))
    )
    assert response.status_code == 422, response.text
    assert [e["pointer"] for e in response.json()["errors"]] == ["/valid_until"]
    assert "in the past" in response.json()["detail"]
    assert certificates(initialised) == 0


def test_malformed_json_names_line_and_column(
    api_client: TestClient, initialised: Services
) -> None:
    text = '{\n  "type": "business_licence",\n  "fields": {"name": "x",}\n}'
    response = api_client.post(
        "/v1/certificates",
        content=text.encode(),
        headers=issuing(token_for(api_client, initialised)) | {"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    # The stray comma before "}" on the third line: the parser stops at the "}" (column 26).
    assert (error["line"], error["column"]) == (3, 26)
    assert "line 3, column 26" in response.json()["detail"]


def test_a_wrong_credit_code_names_both_wrong_check_characters(
    api_client: TestClient, initialised: Services
) -> None:
    good = credit_code(5)
    wrong = good[:16] + ("0" if good[16] != "0" else "1") + ("A" if good[17] != "A" else "B")
    response = api_client.post(
        "/v1/certificates",
        json=holder(5, credit_code=wrong),
        headers=issuing(token_for(api_client, initialised)),
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["pointer"] == "/fields/credit_code"
    assert f"GB 32100 gives {check_character(wrong[:17])!r}" in error["detail"]
    assert f"GB 11714 gives {good[16]!r}" in error["detail"]


def test_an_unknown_status_filter_is_422_listing_the_allowed_values(
    api_client: TestClient, initialised: Services
) -> None:
    token = token_for(api_client, initialised)
    response = api_client.get("/v1/certificates", params={"status": "bogus"}, headers=auth(token))
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["parameter"] == "status"
    for allowed in ("valid", "suspended", "revoked", "superseded"):
        assert allowed in error["detail"]


def test_listing_pages_carry_a_next_link(api_client: TestClient, initialised: Services) -> None:
    token = token_for(api_client, initialised)
    issued = [
        api_client.post("/v1/certificates", json=holder(10 + n), headers=issuing(token)).json()[
            "id"
        ]
        for n in range(3)
    ]
    first = api_client.get("/v1/certificates", params={"limit": 2}, headers=auth(token))
    assert [c["id"] for c in first.json()] == issued[:0:-1]
    link = first.headers["link"]
    assert link.endswith('>; rel="next"')
    second = api_client.get(link[1 : link.index(">")], headers=auth(token))
    assert [c["id"] for c in second.json()] == issued[:1]
    assert "link" not in second.headers
    # A page that holds the last certificate exactly is not followed by an empty one.
    whole = api_client.get("/v1/certificates", params={"limit": 3}, headers=auth(token))
    assert len(whole.json()) == 3
    assert "link" not in whole.headers


def _forge(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    def enc(d: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    return (
        f"{enc(header)}.{enc(claims)}." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
    )


def _hs256(header: dict[str, Any], claims: dict[str, Any], key: bytes) -> str:
    """A token MACed with the public key, as the classic algorithm-confusion attack makes it."""
    unsigned = _forge(header, claims).rsplit(".", 1)[0]
    mac = hmac.new(key, unsigned.encode(), hashlib.sha256).digest()
    return unsigned + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def test_a_client_may_send_its_secret_in_the_form_body_for_a_15_minute_bearer_token(
    api_client: TestClient, initialised: Services
) -> None:
    with db.transaction(initialised.sessions) as session:
        client, secret = create_client(
            session,
            department_code=DEMO_DEPARTMENT_CODE,
            name="审批系统",
            scopes="seal",
            actor=OPERATOR,
        )
    response = api_client.post(
        "/v1/token",
        data={"grant_type": "client_credentials", "client_id": client.id, "client_secret": secret},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 900)
    assert body["access_token"]


def test_forged_and_expired_tokens_are_401(api_client: TestClient, initialised: Services) -> None:
    genuine = token_for(api_client, initialised)
    claims = jwt.decode(genuine, options={"verify_signature": False})
    header = jwt.get_unverified_header(genuine)
    public_pem = initialised.pki.token_signer.public_key.public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())
    forged = {
        "alg none": _forge({**header, "alg": "none"}, claims),
        "HS256 with the public key": _hs256({**header, "alg": "HS256"}, claims, public_pem),
        "expired": initialised.pki.token_signer.sign(
            claims | {"iat": now - 3600, "exp": now - 1800}, typ=header["typ"]
        ),
        "wrong audience": initialised.pki.token_signer.sign(
            claims | {"aud": "https://elsewhere/v1"}, typ=header["typ"]
        ),
        "issuer prefix": initialised.pki.token_signer.sign(
            claims | {"iss": claims["iss"][:-2]}, typ=header["typ"]
        ),
        "tampered": genuine[:-4] + ("AAAA" if not genuine.endswith("AAAA") else "BBBB"),
    }
    for name, token in forged.items():
        response = api_client.get("/v1/certificates", headers=auth(token))
        assert response.status_code == 401, name
        assert response.json()["error"] == "invalid_token", name
    assert api_client.get("/v1/certificates", headers=auth(genuine)).status_code == 200
