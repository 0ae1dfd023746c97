"""A round with nothing to fan out and nothing due takes no write transaction: the service's
worker runs one every second in every process, beside the requests (the rounds that do find
work are tested in test_delivery.py and test_envelope_events.py)."""

from __future__ import annotations

from contextlib import AbstractContextManager

import pytest
from sqlalchemy.orm import Session, sessionmaker

from econtract import db, webhooks
from econtract.services import Services


@pytest.fixture
def transactions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The write transactions begun, as they begin."""
    begun: list[str] = []
    transaction = db.transaction

    def counted(factory: sessionmaker[Session]) -> AbstractContextManager[Session]:
        begun.append("transaction")
        return transaction(factory)

    monkeypatch.setattr(db, "transaction", counted)
    return begun


def test_an_idle_round_writes_nothing(initialised: Services, transactions: list[str]) -> None:
    # The first round's fan-out marks the outbox rows that initialisation wrote.
    webhooks.run_round(initialised, sweep=False)
    transactions.clear()
    report = webhooks.run_round(initialised, sweep=False, flush=False)
    assert (report.owed, report.attempted) == (0, 0)
    assert transactions == []
