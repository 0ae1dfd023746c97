"""API clients: the secret is shown once, stored hashed; scopes are checked."""

from __future__ import annotations

import pytest

from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.clients import check_secret, create_client, disable_client, list_clients
from econtract.errors import ConflictError, InvalidInputError
from econtract.services import Services
from tests.factories import OPERATOR


def test_secret_is_stored_only_as_a_hash(initialised: Services) -> None:
    with db.transaction(initialised.sessions) as session:
        _client, secret = create_client(
            session,
            department_code=DEMO_DEPARTMENT_CODE,
            name="审批系统",
            scopes="issue,read",
            actor=OPERATOR,
        )
    with initialised.sessions() as session:
        stored = list_clients(session)[0]
    assert secret not in stored.secret_hash
    assert check_secret(secret, stored.secret_hash)
    assert not check_secret(secret + "x", stored.secret_hash)
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
