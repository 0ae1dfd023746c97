"""Console accounts for the tests: made through the use case, with their one-time-code secret
at hand."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from fastapi.testclient import TestClient

from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.console import ConsoleRole, add_user
from econtract.console._totp import code_at
from econtract.services import Services
from tests.factories import OPERATOR

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Account:
    """A console account the test made."""

    name: str
    password: str
    secret: bytes | None

    def code(self, at: datetime | None = None) -> str:
        """The one-time code of the account's secret now (or at ``at``)."""
        assert self.secret is not None
        return code_at(self.secret, at or datetime.now(UTC))


def make_account(
    services: Services, name: str, role: ConsoleRole, *, password: str = PASSWORD
) -> Account:
    """Add an account: a supervisor, or an admin of the demo department."""
    department = DEMO_DEPARTMENT_CODE if role is ConsoleRole.DEPARTMENT_ADMIN else None
    with db.transaction(services.sessions) as session:
        account = add_user(
            session,
            name=name,
            role=role,
            department_code=department,
            password=password,
            settings=services.settings,
            actor=OPERATOR,
        )
    secret = None
    if account.totp is not None:
        text = account.totp.secret
        secret = base64.b32decode(text + "=" * (-len(text) % 8))
    return Account(name, password, secret)


HTML = {"Accept": "text/html"}


def form_token(page: httpx.Response) -> str:
    """The CSRF token of the form on ``page``."""
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match, "the form carries no CSRF token"
    return match.group(1)


def sign_in(client: TestClient, name: str, password: str, code: str = "") -> httpx.Response:
    """Open the sign-in form and post it, as a browser does."""
    form = client.get("/console/sign-in")
    assert form.status_code == 200
    answer: httpx.Response = client.post(
        "/console/sign-in",
        data={"name": name, "password": password, "code": code, "csrf": form_token(form)},
        headers=HTML,
    )
    return answer


def signed_in(client: TestClient, account: Account) -> str:
    """Sign ``account`` in on ``client`` (with its one-time code if it has one); the session's
    CSRF token, which every console form posts as ``csrf``."""
    code = account.code() if account.secret is not None else ""
    answer = sign_in(client, account.name, account.password, code)
    assert answer.status_code == 303, answer.text
    home = client.get("/console", headers=HTML)
    assert home.status_code == 200
    return form_token(home)
