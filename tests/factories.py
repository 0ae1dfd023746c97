"""Plain helpers the tests share: who acts, and an access token for an API client.

Fixtures live in ``conftest.py``; what is here is called, not injected, because its arguments
vary from test to test (a department, the scopes a rule needs).
"""

from __future__ import annotations

import httpx
from sqlalchemy import text

from econtract import audit, db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE, initialise
from econtract.clients import create_client
from econtract.services import Services

OPERATOR = audit.Actor.operator("test")
"""The actor tests act as."""


def token_for(
    client: httpx.Client,
    services: Services,
    department: str = DEMO_DEPARTMENT_CODE,
    scopes: str = "issue,read,revoke",
    *,
    name: str = "审批系统",
) -> str:
    """An access token of a new API client of ``department`` with ``scopes``.

    The client is registered in the registry, then takes its token from ``/v1/token`` with
    HTTP Basic credentials (RFC 6749 2.3.1), as an approval system would.
    """
    with db.transaction(services.sessions) as session:
        api_client, secret = create_client(
            session, department_code=department, name=name, scopes=scopes, actor=OPERATOR
        )
    response = client.post(
        "/v1/token", data={"grant_type": "client_credentials"}, auth=(api_client.id, secret)
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def initialise_with_an_empty_log(services: Services) -> Services:
    """``econtract init`` without demo data, then the log emptied: init logs the platform seal
    it creates, and tests of the log itself count the leaves they append from 0."""
    initialise(services, demo=False)
    with db.transaction(services.sessions) as session:
        for table in ("log_tree_heads", "log_nodes", "log_leaves"):
            session.execute(text(f"DELETE FROM {table}"))
        session.execute(text("UPDATE log_state SET tree_size = 0"))
    return services
