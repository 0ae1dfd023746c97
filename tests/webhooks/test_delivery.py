"""Events reach the departments that used a licence, signed, at least once, with backoff."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from econtract import db, webhooks
from econtract.clock import FixedClock
from econtract.models import Certificate, Delivery, OutboxEvent
from econtract.services import Services
from tests.licences import issue_example
from tests.webhooks.conftest import Receiver
from tests.webhooks.helpers import later, revoke, subscribe, use, verified_event


def test_a_used_licence_that_is_revoked_is_told_signed(
    api_client: TestClient, initialised: Services, receiver: Receiver
) -> None:
    certificate = issue_example(initialised)
    use(initialised, certificate)
    subscription = subscribe(initialised, receiver.url)
    revoke(initialised, certificate)

    report = webhooks.run_round(initialised, clock=later())

    assert (report.owed, report.attempted, report.delivered) == (1, 1, 1)
    [got] = receiver.received
    event = verified_event(got.body, api_client.get("/.well-known/jwks.json").json())
    with initialised.sessions() as session:
        outbox = session.scalars(
            select(OutboxEvent).where(
                OutboxEvent.subject_id == certificate.id, OutboxEvent.type == "certificate.revoked"
            )
        ).one()
    assert event["event_id"] == outbox.event_id == got.headers["ECONTRACT-Event-Id"]
    assert event["type"] == "certificate.revoked" == got.headers["ECONTRACT-Event-Type"]
    assert event["subscription_id"] == subscription.id
    assert event["certificate"] == {
        "id": certificate.id,
        "identifier": certificate.identifier,
        "type": certificate.type_code,
        "status": "revoked",
        "national_status": {"code": "03", "name": "注销"},
    }
    # No personal data: the holder appears nowhere in what was sent.
    assert certificate.holder_name not in got.body
    assert str(certificate.holder_code) not in str(event)


def test_a_licence_the_department_did_not_use_is_not_told(
    initialised: Services, receiver: Receiver
) -> None:
    used, unused = issue_example(initialised), issue_example(initialised)
    use(initialised, used)
    subscribe(initialised, receiver.url)
    revoke(initialised, unused)
    report = webhooks.run_round(initialised, clock=later())
    assert report.owed == 0
    assert receiver.received == []


def test_a_refused_use_does_not_subscribe_to_the_licence(
    initialised: Services, receiver: Receiver
) -> None:
    certificate = issue_example(initialised)
    use(initialised, certificate, result="no-grant")
    subscribe(initialised, receiver.url)
    revoke(initialised, certificate)
    assert webhooks.run_round(initialised, clock=later()).owed == 0
    assert receiver.received == []


def test_an_event_type_not_subscribed_is_not_told(
    initialised: Services, receiver: Receiver
) -> None:
    certificate = issue_example(initialised)
    use(initialised, certificate)
    subscribe(initialised, receiver.url, events=("certificate.suspended",))
    revoke(initialised, certificate)
    assert webhooks.run_round(initialised, clock=later()).owed == 0


def test_a_failing_receiver_gets_the_event_again_with_backoff_until_it_recovers(
    initialised: Services, receiver: Receiver
) -> None:
    certificate = issue_example(initialised)
    use(initialised, certificate)
    subscription = subscribe(initialised, receiver.url)
    revoke(initialised, certificate)
    receiver.answers = [500, 500]
    start = later()

    webhooks.run_round(initialised, clock=start)
    # Not due again before its backoff (2 s after the first failure) ...
    assert (
        webhooks.run_round(initialised, clock=FixedClock(start.at + timedelta(seconds=1))).attempted
        == 0
    )
    # ... then retried, failing once more (next in 4 s), then taken.
    assert (
        webhooks.run_round(initialised, clock=FixedClock(start.at + timedelta(seconds=2))).attempted
        == 1
    )
    assert (
        webhooks.run_round(initialised, clock=FixedClock(start.at + timedelta(seconds=5))).attempted
        == 0
    )
    third = webhooks.run_round(initialised, clock=FixedClock(start.at + timedelta(seconds=6)))
    assert third.delivered == 1

    assert len(receiver.received) == 3
    assert len({r.headers["ECONTRACT-Event-Id"] for r in receiver.received}) == 1
    with initialised.sessions() as session:
        [delivery] = webhooks.list_deliveries(
            session, subscription.id, department_id=subscription.department_id
        )
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 3, 200)


def test_a_delivery_is_given_up_after_the_last_attempt(
    initialised: Services, receiver: Receiver
) -> None:
    initialised.settings.webhook_max_attempts = 2
    certificate = issue_example(initialised)
    use(initialised, certificate)
    subscribe(initialised, receiver.url)
    revoke(initialised, certificate)
    receiver.answers = [503, 503]
    start = later()
    webhooks.run_round(initialised, clock=start)
    webhooks.run_round(initialised, clock=FixedClock(start.at + timedelta(seconds=2)))
    assert (
        webhooks.run_round(initialised, clock=FixedClock(start.at + timedelta(hours=2))).attempted
        == 0
    )
    with initialised.sessions() as session:
        delivery = session.scalars(select(Delivery)).one()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("given-up", 2, 503)


def test_redelivery_on_request_sends_the_same_event_again(
    initialised: Services, receiver: Receiver
) -> None:
    certificate = issue_example(initialised)
    use(initialised, certificate)
    subscription = subscribe(initialised, receiver.url)
    revoke(initialised, certificate)
    webhooks.run_round(initialised, clock=later())
    with initialised.sessions() as session:
        delivery = session.scalars(select(Delivery)).one()
    webhooks.redeliver(
        initialised, subscription.id, delivery.id, department_id=subscription.department_id
    )
    assert webhooks.run_round(initialised, clock=later(120)).delivered == 1
    first, second = receiver.received
    assert first.headers["ECONTRACT-Event-Id"] == second.headers["ECONTRACT-Event-Id"]


def test_fanning_out_twice_owes_nothing_twice(initialised: Services, receiver: Receiver) -> None:
    certificate = issue_example(initialised)
    use(initialised, certificate)
    subscribe(initialised, receiver.url)
    revoke(initialised, certificate)
    assert webhooks.run_round(initialised, clock=later()).owed == 1
    with db.transaction(initialised.sessions) as session:
        for row in session.scalars(select(OutboxEvent)):
            row.delivered_at = None
    assert webhooks.run_round(initialised, clock=later()).owed == 0
    assert len(receiver.received) == 1


def test_an_expired_licence_used_in_the_window_is_told_once(
    initialised: Services, receiver: Receiver
) -> None:
    certificate = issue_example(initialised)
    use(initialised, certificate)
    subscribe(initialised, receiver.url)
    with db.transaction(initialised.sessions) as session:
        # Its last day was yesterday: it expired with no status change.
        row = session.get(Certificate, certificate.id)
        assert row is not None
        row.valid_from = initialised.clock.today() - timedelta(days=400)
        row.valid_until = initialised.clock.today() - timedelta(days=1)
    first = webhooks.run_round(initialised, clock=later())
    second = webhooks.run_round(initialised, clock=later())
    assert (first.expired, first.delivered, second.expired, second.attempted) == (1, 1, 0, 0)
    [got] = receiver.received
    assert got.headers["ECONTRACT-Event-Type"] == "certificate.expired"
