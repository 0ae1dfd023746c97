"""API clients: the secret is shown once, stored hashed; scopes are checked."""

from __future__ import annotations

import pytest

from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.clients import check_secret, create_client, disable_client, list_clients
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
