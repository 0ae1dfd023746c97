"""Client secrets are hashed with ECONTRACT_SECRET_KEY as a pepper; hashes made before it
still verify and are upgraded by the client's next token request."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.cli import run
from econtract.clients import check_secret, create_client, hash_secret, pepper_of
from econtract.models import ApiClient
from econtract.services import Services
from tests.factories import OPERATOR

SECRET = "a-client-secret-of-some-length"


def test_a_peppered_hash_says_its_scheme_and_admits_the_secret() -> None:
    stored = hash_secret(SECRET, pepper=b"secret key one")
    assert stored.startswith("scrypt-hmac$")
    assert check_secret(SECRET, stored, pepper=b"secret key one")
    assert not check_secret(SECRET + "x", stored, pepper=b"secret key one")


def test_a_peppered_hash_does_not_verify_under_another_secret_key() -> None:
    stored = hash_secret(SECRET, pepper=b"secret key one")
    assert not check_secret(SECRET, stored, pepper=b"secret key two")
    assert not check_secret(SECRET, stored)


def test_a_legacy_hash_still_verifies() -> None:
    stored = hash_secret(SECRET, pepper=None)
    assert stored.startswith("scrypt$")
    assert check_secret(SECRET, stored, pepper=b"any secret key")


def _stored_hash(services: Services, client_id: str) -> str:
    with services.sessions() as session:
        client = session.get(ApiClient, client_id)
        assert client is not None
        return client.secret_hash


def _token_status(api: TestClient, client_id: str, secret: str) -> int:
    response = api.post(
        "/v1/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    return int(response.status_code)


def test_a_legacy_hash_is_upgraded_by_the_next_successful_token_request(
    api_client: TestClient, initialised: Services
) -> None:
    with db.transaction(initialised.sessions) as session:
        client, secret = create_client(
            session, department_code=DEMO_DEPARTMENT_CODE, name="old", scopes="read", actor=OPERATOR
        )
        client_id = client.id
    assert _stored_hash(initialised, client_id).startswith("scrypt$")

    assert _token_status(api_client, client_id, secret + "x") == 401
    assert _stored_hash(initialised, client_id).startswith("scrypt$")

    assert _token_status(api_client, client_id, secret) == 200
    upgraded = _stored_hash(initialised, client_id)
    assert upgraded.startswith("scrypt-hmac$")
    assert check_secret(secret, upgraded, pepper=pepper_of(initialised.settings))
    assert not check_secret(secret, upgraded, pepper=b"another secret key")
    assert _token_status(api_client, client_id, secret) == 200
    assert _stored_hash(initialised, client_id) == upgraded


def test_cli_clients_create_stores_a_peppered_hash(
    initialised: Services, cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["clients", "create", "--department", DEMO_DEPARTMENT_CODE, "--scopes", "read"]
    assert run([*args, "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    stored = _stored_hash(initialised, created["client_id"])
    assert stored.startswith("scrypt-hmac$")
    assert check_secret(created["client_secret"], stored, pepper=pepper_of(initialised.settings))
