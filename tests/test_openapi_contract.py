"""The OpenAPI document is the contract: every operation declares the errors it can answer,
each as problem+json of the one ``Problem`` schema, and real error bodies fit that schema."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient
from httpx import Response

from econtract.issuance import TEMPLATES
from econtract.services import Services
from tests.factories import token_for

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


@pytest.fixture
def document(api_client: TestClient) -> dict[str, Any]:
    """The served OpenAPI document."""
    response = api_client.get("/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def _missing(operation: dict[str, Any], statuses: set[int]) -> set[int]:
    return {s for s in statuses if str(s) not in operation["responses"]}


def test_every_operation_declares_the_errors_of_its_kind(document: dict[str, Any]) -> None:
    gaps = {}
    for method, path, operation in _operations(document):
        wanted = {429, 503}
        if operation.get("security"):
            wanted |= {401, 403, 404}
        if "requestBody" in operation:
            wanted |= {400, 413, 415, 422}
        if any(p["in"] == "path" for p in operation.get("parameters", [])):
            wanted |= {404, 422}
        if _missing(operation, wanted):
            gaps[f"{method.upper()} {path}"] = sorted(_missing(operation, wanted))
    assert gaps == {}
    assert len(_operations(document)) > 50


def test_every_error_response_is_a_problem(document: dict[str, Any]) -> None:
    not_problems = []
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            content = response.get("content", {})
            if content.get("application/problem+json", {}).get("schema") != PROBLEM_REF:
                not_problems.append(f"{method.upper()} {path} {status}")
    # /readyz answers 503 with its health report, which says what is not ready; the timestamp
    # authority refuses a query with an RFC 3161 TimeStampResp, which its clients read.
    assert not_problems == ["GET /readyz 503", "POST /pki/tsa 400"]


def test_rate_limits_and_unavailability_say_when_to_retry(document: dict[str, Any]) -> None:
    for _, path, operation in _operations(document):
        for status in ("429", "503"):
            if (path, status) != ("/readyz", "503"):
                assert "Retry-After" in operation["responses"][status]["headers"], path


def test_the_framework_validation_schema_is_gone(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert {"type", "title", "status", "detail", "instance", "errors"} <= set(
        schemas["Problem"]["properties"]
    )
    assert schemas["Problem"]["properties"]["errors"]["items"]["required"] == ["pointer", "detail"]


def _check_problem(document: dict[str, Any], response: Response, method: str, path: str) -> None:
    """``response`` is problem+json, valid against ``Problem``, and declared by its operation."""
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    body = response.json()
    jsonschema.validate(body, document["components"]["schemas"]["Problem"])
    assert body["status"] == response.status_code
    if method in document["paths"].get(path, {}):
        declared = document["paths"][path][method]["responses"]
        assert str(response.status_code) in declared, (method, path, response.status_code)


def _issue_body() -> dict[str, Any]:
    return {
        "type": "business_licence",
        "fields": dict(TEMPLATES["business_licence"].schema["examples"][0]),
    }


def test_real_error_bodies_fit_the_problem_schema_and_are_declared(
    api_client: TestClient, initialised: Services, document: dict[str, Any]
) -> None:
    token = token_for(api_client, initialised, scopes="issue,read,revoke")
    reader = token_for(api_client, initialised, scopes="read")
    bearer = {"Authorization": f"Bearer {token}"}
    issued = api_client.post(
        "/v1/certificates", json=_issue_body(), headers={**bearer, "Idempotency-Key": "k-1"}
    )
    assert issued.status_code == 201, issued.text
    certificate = issued.json()["id"]
    revoke = "/v1/certificates/{certificate_id}/revoke"
    revoked = api_client.post(
        f"/v1/certificates/{certificate}/revoke", json={"reason": "superseded"}, headers=bearer
    )
    assert revoked.status_code == 200, revoked.text

    cases: list[tuple[int, str, str, Response]] = [
        (401, "get", "/v1/certificates", api_client.get("/v1/certificates")),
        (
            401,
            "post",
            "/v1/token",
            api_client.post(
                "/v1/token", data={"grant_type": "client_credentials"}, auth=("cli_x", "wrong")
            ),
        ),
        (
            403,
            "post",
            "/v1/certificates",
            api_client.post(
                "/v1/certificates",
                json=_issue_body(),
                headers={"Authorization": f"Bearer {reader}", "Idempotency-Key": "k-2"},
            ),
        ),
        (
            404,
            "get",
            "/v1/certificates/{certificate_id}",
            api_client.get("/v1/certificates/nope", headers=bearer),
        ),
        (
            409,
            "post",
            revoke,
            api_client.post(
                f"/v1/certificates/{certificate}/revoke",
                json={"reason": "superseded"},
                headers=bearer,
            ),
        ),
        (
            413,
            "post",
            "/v1/certificates",
            api_client.post(
                "/v1/certificates",
                content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                headers={**bearer, "Idempotency-Key": "k-3", "Content-Type": "application/json"},
            ),
        ),
        (
            415,
            "post",
            "/pki/ocsp",
            api_client.post("/pki/ocsp", content=b"x", headers={"Content-Type": "text/plain"}),
        ),
        (
            422,
            "post",
            "/v1/certificates",
            api_client.post(
                "/v1/certificates",
                json={"type": "business_licence", "fields": {}, "extra": 1},
                headers={**bearer, "Idempotency-Key": "k-4"},
            ),
        ),
        (
            428,
            "post",
            "/v1/certificates",
            api_client.post("/v1/certificates", json=_issue_body(), headers=bearer),
        ),
        (405, "put", "/v1/certificates", api_client.put("/v1/certificates", headers=bearer)),
    ]
    for status, method, path, response in cases:
        assert response.status_code == status, (method, path, response.text)
        _check_problem(document, response, method, path)
    invalid = cases[7][3].json()
    assert invalid["errors"]
    assert all(e["pointer"].startswith("/") for e in invalid["errors"])


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("put", "/v1/certificates", {"GET", "POST"}),
        ("delete", "/healthz", {"GET"}),
        ("get", "/v1/token", {"POST"}),
        ("patch", "/v1/subscriptions/sub_1", {"GET", "DELETE"}),
    ],
)
def test_a_405_names_the_allowed_methods(
    api_client: TestClient, document: dict[str, Any], method: str, path: str, allowed: set[str]
) -> None:
    response = api_client.request(method.upper(), path)
    assert response.status_code == 405
    assert set(re.split(r",\s*", response.headers["Allow"])) - {"HEAD"} == allowed
    _check_problem(document, response, method, path)
