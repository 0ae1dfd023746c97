"""API clients: the secret is shown once, stored hashed; scopes are checked."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.clients import (
    check_secret,
    create_client,
    disable_client,
    enable_client,
    list_clients,
)
from econtract.errors import ConflictError, InvalidInputError
from econtract.models import ApiClient
from econtract.services import Services
from tests.factories import OPERATOR


@pytest.fixture
def created(initialised: Services) -> tuple[str, ApiClient]:
    """A client created with the issue and read scopes: the secret shown once, the row."""
    with db.transaction(initialised.sessions) as session:
        _client, secret = create_client(
            session,
            department_code=DEMO_DEPARTMENT_CODE,
            name="审批系统",
            scopes="issue,read",
            actor=OPERATOR,
        )
    with initialised.sessions() as session:
        return secret, list_clients(session)[0]


def test_secret_is_stored_only_as_a_hash(created: tuple[str, ApiClient]) -> None:
    secret, stored = created
    assert secret not in stored.secret_hash


def test_the_stored_hash_admits_the_secret_and_nothing_else(
    created: tuple[str, ApiClient],
) -> None:
    secret, stored = created
    assert check_secret(secret, stored.secret_hash)
    assert not check_secret(secret + "x", stored.secret_hash)


def test_scopes_are_stored_space_separated(created: tuple[str, ApiClient]) -> None:
    _, stored = created
    assert stored.scopes == "issue read"


def test_unknown_scope_is_refused(initialised: Services) -> None:
    with (
        pytest.raises(InvalidInputError, match="got admin"),
        db.transaction(initialised.sessions) as session,
    ):
        create_client(
            session,
            department_code=DEMO_DEPARTMENT_CODE,
            name="x",
            scopes="issue,admin",
            actor=OPERATOR,
        )
    with initialised.sessions() as session:
        assert list_clients(session) == []


def test_disable_twice_is_a_conflict(initialised: Services) -> None:
    with db.transaction(initialised.sessions) as session:
        client, _ = create_client(
            session, department_code=DEMO_DEPARTMENT_CODE, name="x", scopes="read", actor=OPERATOR
        )
    with db.transaction(initialised.sessions) as session:
        assert disable_client(session, client_id=client.id, actor=OPERATOR).disabled_at is not None
    with (
        pytest.raises(ConflictError, match="already disabled"),
        db.transaction(initialised.sessions) as session,
    ):
        disable_client(session, client_id=client.id, actor=OPERATOR)


def test_enabling_a_client_again_does_not_revive_the_tokens_it_held_before(
    initialised: Services, api_client: TestClient
) -> None:
    with db.transaction(initialised.sessions) as session:
        client, secret = create_client(
            session, department_code=DEMO_DEPARTMENT_CODE, name="x", scopes="read", actor=OPERATOR
        )
        client_id = client.id

    def token() -> dict[str, str]:
        answer = api_client.post(
            "/v1/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    old = token()
    with db.transaction(initialised.sessions) as session:
        disable_client(session, client_id=client_id, actor=OPERATOR)
    assert api_client.get("/v1/certificates", headers=old).status_code == 401
    with db.transaction(initialised.sessions) as session:
        enable_client(session, client_id=client_id, actor=OPERATOR)
    still = api_client.get("/v1/certificates", headers=old)
    assert still.status_code == 401
    assert "issued before its client was disabled" in still.text
    # The secret works again, and a token taken a second on (iat counts seconds) is good.
    time.sleep(1.05)
    assert api_client.get("/v1/certificates", headers=token()).status_code == 200
