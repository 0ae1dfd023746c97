"""The OpenAPI document declares every error an operation can answer, as problem+json.

Routes declare what is particular to them (a 409 when a licence is already revoked, a 428 when
the Idempotency-Key is missing); the errors every operation of a kind can give are added here,
from what the document already says of the operation, so that no route can forget them:

- every operation: 429 (a rate limit) and 503 (the registry, the key store or the verification
  pool unavailable), with ``Retry-After``;
- an operation with parameters or a body: 400 (malformed) and 422 (invalid, with pointers);
- an operation with path parameters: 404;
- an operation with a body: 413 (too large) and 415 (not the media type it takes);
- an authenticated operation: 401 (no or a bad token), 403 (a scope or department it lacks)
  and 404 (it names a registry object, a seal, a licence, a paging cursor, that is not there
  or not the caller's); a state-changing one also 409 (the state forbids it).

Every error response, declared by a route or added here, gets the one ``Problem`` schema
(RFC 9457) unless its route gave it a body of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI

PROBLEM_JSON = "application/problem+json"

#: The schema of every problem+json body the service sends (RFC 9457 with its extension
#: members: ``errors`` of a 422, ``request_id``, OAuth's ``error``, a conflict's data).
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "An RFC 9457 problem detail; members not named here are extensions.",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "description": "The problem type, a URN naming it."},
        "title": {"type": "string", "description": "The problem type's short summary."},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string", "description": "What went wrong with this request."},
        "instance": {"type": "string", "description": "The occurrence of the problem."},
        "request_id": {"type": "string", "description": "The request's id in the logs."},
        "errors": {
            "type": "array",
            "description": "Each invalid part of the request, by JSON pointer.",
            "items": {
                "type": "object",
                "required": ["pointer", "detail"],
                "properties": {
                    "pointer": {"type": "string", "description": "RFC 6901 JSON pointer."},
                    "detail": {"type": "string"},
                    "parameter": {"type": "string", "description": "The parameter's name."},
                    "line": {"type": "integer", "minimum": 1},
                    "column": {"type": "integer", "minimum": 1},
                },
                "additionalProperties": True,
            },
        },
    },
    "additionalProperties": True,
}

RETRY_AFTER = {
    "description": "Seconds to wait before trying again.",
    "schema": {"type": "integer", "minimum": 0},
}

#: The description of each error status, where the route gives none.
DESCRIPTIONS = {
    400: "The request is malformed.",
    401: "The access token or client credentials are missing or invalid.",
    403: "The caller may not do this: a scope, its department or a consent is missing.",
    404: "Not found (or not the caller's to see).",
    409: "The resource's state does not allow this now.",
    413: "The request body is larger than the service accepts.",
    415: "The request body is not of a media type this operation takes.",
    422: "The request is well-formed but invalid; ``errors`` points at each part.",
    428: "A precondition header (Idempotency-Key) is missing.",
    429: "Too many requests; try again after ``Retry-After`` seconds.",
    503: "The service cannot answer now; try again after ``Retry-After`` seconds.",
    507: "The service has no room to store the result.",
}

_CHANGES = frozenset({"post", "put", "patch", "delete"})
_FRAMEWORK_SCHEMAS = frozenset({"HTTPValidationError", "ValidationError"})


def standard_errors(operation: dict[str, Any], method: str) -> set[int]:
    """The error statuses an operation can answer, judged from its own declaration."""
    statuses = {429, 503}
    parameters = operation.get("parameters", [])
    has_body = "requestBody" in operation
    if parameters or has_body:
        statuses |= {400, 422}
    if any(p.get("in") == "path" for p in parameters):
        statuses.add(404)
    if has_body:
        statuses |= {413, 415}
    if operation.get("security"):
        statuses |= {401, 403, 404}
        if method in _CHANGES:
            statuses.add(409)
    return statuses


def declare_problems(document: dict[str, Any]) -> dict[str, Any]:
    """Add the ``Problem`` schema and every operation's standard errors to ``document``."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    problem_content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for operations in document.get("paths", {}).values():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status in standard_errors(operation, method):
                responses.setdefault(str(status), {})
            for key, response in responses.items():
                if not key.isdigit() or int(key) < 400:
                    continue
                status = int(key)
                if response.get("description", "") in _generic_descriptions(status):
                    response["description"] = DESCRIPTIONS.get(status, HTTPStatus(status).phrase)
                content = response.get("content")
                if content and not _is_framework_default(content):
                    continue  # the route describes a body of its own (``/readyz``'s health)
                response["content"] = problem_content
                if status in (429, 503):
                    response.setdefault("headers", {}).setdefault("Retry-After", RETRY_AFTER)
    # The framework's own 422 schema describes a body this service never sends.
    text = repr(document["paths"])
    for name in _FRAMEWORK_SCHEMAS:
        if f"#/components/schemas/{name}'" not in text:
            schemas.pop(name, None)
    return document


def _generic_descriptions(status: int) -> tuple[str, ...]:
    # What FastAPI writes when a route gives no description: the reason phrase, or these.
    return ("", "Validation Error", "Additional Response", HTTPStatus(status).phrase)


def _is_framework_default(content: dict[str, Any]) -> bool:
    # FastAPI documents a 422 as JSON of its HTTPValidationError; an empty JSON entry is what
    # a route's bare ``{status: {}}`` becomes.
    json_content = content.get("application/json")
    if set(content) != {"application/json"} or not isinstance(json_content, dict):
        return False
    ref = json_content.get("schema", {}).get("$ref", "")
    return not json_content.get("schema") or ref.endswith("/HTTPValidationError")


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and ``/openapi.json``) declare the problems of every operation."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = declare_problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
