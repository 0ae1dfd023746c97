"""The console's fixtures: the service over https as a browser reaches it, and one account of
each role (the department admin's department is the demo department)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api import create_app
from econtract.console import ConsoleRole
from econtract.services import Services
from tests.console.accounts import Account, make_account


@pytest.fixture
def console(initialised: Services) -> Iterator[TestClient]:
    """The service over https, as a browser reaches it (redirects are not followed).

    Without the service's worker: the tests arrange registries in the past (a fixed clock)
    while the app's clock is today's, and the worker's round would roll those days up
    (econtract.supervision's daily roll-ups) half-arranged, as it would a day in production
    whose records all lie in the past."""
    settings = initialised.settings.model_copy(update={"webhook_poll_seconds": 0})
    with TestClient(
        create_app(settings), base_url="https://testserver", follow_redirects=False
    ) as client:
        yield client


@pytest.fixture
def admin(initialised: Services) -> Account:
    """A department admin of the demo department."""
    return make_account(initialised, "li", ConsoleRole.DEPARTMENT_ADMIN)


@pytest.fixture
def supervisor(initialised: Services) -> Account:
    """A supervisor, who signs in with a one-time code."""
    return make_account(initialised, "zhang", ConsoleRole.SUPERVISOR)
