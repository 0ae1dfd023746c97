"""The API keeps its OpenAPI contract under generated requests: schemathesis sends every
operation requests made from the document (valid and invalid), authenticated as a client
holding every scope, to a real server, and fails on any 5xx, any status the operation does
not declare, and any body or media type the document does not describe.

The run is bounded and derandomised (the same requests every time), so it belongs to the
default test run; a wider exploration is ``st run`` against a served instance. Operations are
driven one by one from here rather than through schemathesis' pytest plugin, so that one
server and one registry serve them all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from econtract.clients import SCOPES
from econtract.services import Services
from tests.factories import token_for
from tests.live import serve

#: Examples per operation and mode: enough to reach each operation's refusals and a few
#: valid calls, few enough that the whole run stays within a few minutes.
EXAMPLES_PER_OPERATION = 15

# The DER bodies of OCSP and timestamp requests go on the wire as the bytes generated.
schemathesis.serializer.alias(
    ["application/ocsp-request", "application/timestamp-query"], "application/octet-stream"
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def bearer(api_client: TestClient, initialised: Services) -> dict[str, str]:
    """The Authorization header of a client of the demo department holding every scope."""
    # Every scope a department's client may hold (``sign`` is an enterprise's).
    token = token_for(api_client, initialised, scopes=",".join(s for s in SCOPES if s != "sign"))
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api_schema(initialised: Services) -> Iterator[schemathesis.BaseSchema]:
    """The OpenAPI document of a real server on the initialised registry, loaded from it."""
    with serve(initialised.settings) as base_url:
        yield schemathesis.openapi.from_url(f"{base_url}/openapi.json")


def _run_operation(
    operation: schemathesis.APIOperation[Any, Any, Any, Any],
    mode: GenerationMode,
    bearer: dict[str, str],
) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    def run(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(headers=bearer, checks=CHECKS, timeout=60)

    run()


def test_the_api_keeps_its_contract(
    api_schema: schemathesis.BaseSchema, bearer: dict[str, str]
) -> None:
    failures: dict[str, str] = {}
    operations = 0
    for result in api_schema.get_all_operations():
        # An operation the document cannot describe fails here, with the reason.
        assert isinstance(result, Ok), result
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _run_operation(operation, mode, bearer)
            except Unsatisfiable:
                # No invalid request exists for an operation without parameters or body.
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as exc:  # all operations report together
                failures[f"{operation.label} ({mode.value})"] = str(exc)
    assert operations > 50
    assert failures == {}, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
