"""Console accounts for the tests: made through the use case, with their one-time-code secret
at hand."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime

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
