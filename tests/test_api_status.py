"""GET /v1/status: the public status of one exact file, for anyone holding it; nothing personal."""

from __future__ import annotations

import hashlib
import json

import pytest
from fastapi.testclient import TestClient

from econtract.certificates import change_status
from econtract.models import Seal
from econtract.services import Services
from tests.factories import OPERATOR
from tests.licences import issue_example


def test_a_revoked_licence_answers_its_status_when_and_the_kind_of_reason_only(
    api_client: TestClient, initialised: Services
) -> None:
    certificate = issue_example(initialised)
    change_status(
        initialised,
        certificate_id=certificate.id,
        action="revoke",
        reason="吊销：法定代表人张三未按期年报",
        actor=OPERATOR,
    )
    response = api_client.get("/v1/status", params={"sha256": certificate.pdf_sha256})
    assert response.status_code == 200
    body = response.json()
    assert body["status_changed_at"]
    assert body == {
        "format": "econtract-status/1",
        "kind": "certificate",
        "number": certificate.number,
        "status": "revoked",
        "status_changed_at": body["status_changed_at"],
        "reason_kind": "privilegeWithdrawn",
        "seal_sha256": body["seal_sha256"],
        "matched_by": "file",
    }
    text = json.dumps(body, ensure_ascii=False)
    for personal in ("张三", certificate.holder_name, certificate.fields["credit_code"]):
        assert personal not in text
    assert response.headers["cache-control"] == "no-store"


def test_a_licence_is_found_by_its_seals_signed_digest(
    api_client: TestClient, initialised: Services
) -> None:
    certificate = issue_example(initialised)
    response = api_client.get(
        "/v1/status", params={"signed_digest": certificate.signed_digest.upper()}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["matched_by"], body["reason_kind"]) == (
        "valid",
        "signed-bytes",
        None,
    )
    with initialised.sessions() as session:
        seal = session.get(Seal, certificate.seal_id)
        assert seal is not None
        assert body["seal_sha256"] == hashlib.sha256(seal.certificate_der).hexdigest()


def test_an_unknown_file_is_404_problem(api_client: TestClient) -> None:
    response = api_client.get("/v1/status", params={"sha256": "0" * 64})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:econtract:problem:not-found"


@pytest.mark.parametrize(
    "params",
    [
        {"sha256": "not-hex"},
        {"sha256": "a" * 63},
        {"signed_digest": "g" * 64},
        {},
        {"sha256": "a" * 64, "signed_digest": "b" * 64},
    ],
)
def test_a_malformed_digest_is_400_problem(api_client: TestClient, params: dict[str, str]) -> None:
    response = api_client.get("/v1/status", params=params)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:econtract:problem:malformed-digest"


def test_a_seal_of_the_service_is_known_by_its_certificate(
    api_client: TestClient, initialised: Services
) -> None:
    with initialised.sessions() as session:
        fingerprints = [hashlib.sha256(s.certificate_der).hexdigest() for s in session.query(Seal)]
    assert fingerprints
    for fingerprint in fingerprints:
        answer = api_client.get("/v1/status", params={"seal_sha256": fingerprint})
        assert answer.json() == {
            "format": "econtract-status/1",
            "kind": "seal",
            "seal_sha256": fingerprint,
        }
    assert api_client.get("/v1/status", params={"seal_sha256": "1" * 64}).status_code == 404
