"""At least once across a crash: a change committed before a ``kill -9`` is still told after
the restart, with the event id the outbox gave it."""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest
from sqlalchemy import select

from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.clients import create_client
from econtract.models import OutboxEvent
from econtract.services import Services
from tests.econtract.test_crash import running_server
from tests.factories import OPERATOR
from tests.licences import issue_example
from tests.live import free_port
from tests.webhooks.conftest import Receiver
from tests.webhooks.helpers import use, verified_event


@pytest.mark.slow
def test_an_event_committed_before_a_kill_9_is_delivered_after_the_restart(
    initialised: Services, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    certificate = issue_example(initialised)
    use(initialised, certificate)
    with db.transaction(initialised.sessions) as session:
        client, secret = create_client(
            session,
            department_code=DEMO_DEPARTMENT_CODE,
            name="窗口",
            scopes="use,revoke",
            actor=OPERATOR,
        )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # The first server commits the change but delivers nothing: its worker is off.
    monkeypatch.setenv("ECONTRACT_WEBHOOK_POLL_SECONDS", "0")
    with running_server(initialised.settings, port) as server:
        token = httpx.post(
            f"{base}/v1/token", data={"grant_type": "client_credentials"}, auth=(client.id, secret)
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        subscribed = httpx.post(
            f"{base}/v1/subscriptions",
            json={"url": receiver.url, "events": ["certificate.revoked"]},
            headers=headers,
        )
        assert subscribed.status_code == 201, subscribed.text
        revoked = httpx.post(
            f"{base}/v1/certificates/{certificate.id}/revoke",
            json={"reason": "以欺骗手段取得"},
            headers=headers,
        )
        assert revoked.status_code == 200, revoked.text
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
    assert receiver.received == []

    monkeypatch.setenv("ECONTRACT_WEBHOOK_POLL_SECONDS", "0.2")
    with running_server(initialised.settings, port):
        deadline = time.monotonic() + 30
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.1)
        jwks = httpx.get(f"{base}/.well-known/jwks.json").json()
    assert receiver.received, "the event was not delivered after the restart"
    with initialised.sessions() as session:
        outbox = session.scalars(
            select(OutboxEvent).where(
                OutboxEvent.subject_id == certificate.id, OutboxEvent.type == "certificate.revoked"
            )
        ).one()
    # At least once: every copy that arrived is the one event.
    for got in receiver.received:
        event = verified_event(got.body, jwks)
        assert event["event_id"] == outbox.event_id == got.headers["ECONTRACT-Event-Id"]
        assert event["certificate"]["status"] == "revoked"
