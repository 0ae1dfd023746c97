"""An envelope's changes reach the subscriptions of its initiator and its parties, signed;
a passed deadline expires the envelope and a near one reminds its step, once, on their own."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from econtract import audit, db, webhooks
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.clock import FixedClock
from econtract.enterprises import add_enterprise
from econtract.envelopes import (
    EnvelopeRequest,
    EnvelopeView,
    PartySpec,
    StepSpec,
    create_envelope,
    get_envelope,
    seal_step,
    sweep_deadlines,
)
from econtract.models import Department, OutboxEvent, Seal, SealKind
from econtract.seals import SealRequest, create_seal
from econtract.services import Services
from keys.handles import KeyAlgorithm
from tests.factories import OPERATOR, token_for
from tests.signing.sealing import make_pdf
from tests.webhooks.conftest import Receiver
from tests.webhooks.helpers import verified_event

ENTERPRISE = "9133010052CL12THX9"
OUTSIDER = "9133040016D272HD32"
TITLE = "政府采购合同"


class World:
    """The demo department (initiator and party), an enterprise party and an enterprise that
    is no party: their seals, actors and clients' headers."""

    def __init__(self, api_client: TestClient, services: Services) -> None:
        self.services = services
        self.seals: dict[str, str] = {}
        self.actors: dict[str, audit.Actor] = {}
        self.headers: dict[str, dict[str, str]] = {}
        for who, code, name, kind, scopes in (
            ("dept", DEMO_DEPARTMENT_CODE, None, SealKind.OFFICIAL, "seal"),
            ("ent", ENTERPRISE, "杭州远航建设工程有限公司", SealKind.CONTRACT, "sign"),
            ("outsider", OUTSIDER, "嘉兴润泽餐饮管理有限公司", SealKind.CONTRACT, "sign"),
        ):
            with db.transaction(services.sessions) as session:
                if name is not None:
                    add_enterprise(session, code=code, name=name, actor=OPERATOR)
                self.seals[who] = create_seal(
                    session,
                    request=SealRequest(
                        department_code=code, kind=kind, algorithm=KeyAlgorithm.EC_P256
                    ),
                    key_store=services.key_store,
                    pki=services.pki,
                    actor=OPERATOR,
                    clock=services.clock,
                ).id
                body = session.scalars(select(Department.id).where(Department.code == code)).one()
            self.actors[who] = audit.Actor(name=f"client:{code}", department_id=body)
            token = token_for(api_client, services, code, scopes)
            self.headers[who] = {"Authorization": f"Bearer {token}"}

    def envelope(self, *, hours: float) -> EnvelopeView:
        """A contract the enterprise and the department seal in one step, due in ``hours``."""
        return create_envelope(
            self.services,
            source=make_pdf(),
            request=EnvelopeRequest(
                title=TITLE,
                seal_id=self.seals["dept"],
                steps=(
                    StepSpec(
                        parties=(
                            PartySpec(code=ENTERPRISE, field="PartyA", x=150),
                            PartySpec(code=DEMO_DEPARTMENT_CODE, field="Buyer", x=350),
                        ),
                        deadline=self.services.clock.now() + timedelta(hours=hours),
                    ),
                ),
            ),
            actor=self.actors["dept"],
        )

    def seal(self, view: EnvelopeView, who: str) -> EnvelopeView:
        """``who`` seals its field of the envelope."""
        return seal_step(
            self.services, envelope_id=view.id, seal_id=self.seals[who], actor=self.actors[who]
        )


@pytest.fixture
def world(api_client: TestClient, initialised: Services) -> World:
    """The bodies of the tests, with their seals and clients."""
    return World(api_client, initialised)


def _subscribe(
    api_client: TestClient, world: World, receiver: Receiver, who: str, events: list[str]
) -> dict[str, Any]:
    answer = api_client.post(
        "/v1/subscriptions",
        json={"url": f"{receiver.url}/{who}", "events": events},
        headers=world.headers[who],
    )
    assert answer.status_code == 201, answer.text
    subscription: dict[str, Any] = answer.json()
    return subscription


def _events(api_client: TestClient, receiver: Receiver, who: str) -> list[dict[str, Any]]:
    """What ``who``'s endpoint received, each event checked with the published key."""
    jwks = api_client.get("/.well-known/jwks.json").json()
    return [verified_event(r.body, jwks) for r in receiver.received if r.path.endswith(f"/{who}")]


def _later(services: Services, monkeypatch: pytest.MonkeyPatch, hours: float) -> None:
    monkeypatch.setattr(
        services, "clock", FixedClock(services.clock.now() + timedelta(hours=hours))
    )


def test_the_initiator_and_the_parties_hear_the_envelope_signed_and_an_outsider_does_not(
    api_client: TestClient, world: World, receiver: Receiver
) -> None:
    wanted = ["envelope.sealed", "envelope.completed"]
    subscriptions = {
        who: _subscribe(api_client, world, receiver, who, wanted)
        for who in ("dept", "ent", "outsider")
    }
    view = world.envelope(hours=48)
    world.seal(view, "ent")
    assert world.seal(view, "dept").status == "completed"

    webhooks.run_round(world.services)

    for who in ("dept", "ent"):
        events = _events(api_client, receiver, who)
        assert [e["type"] for e in events] == [
            "envelope.sealed",
            "envelope.sealed",
            "envelope.completed",
        ], who
        assert [e["envelope"] for e in events] == [
            {"id": view.id, "status": "open", "step": 1},
            {"id": view.id, "status": "completed", "step": 1},
            {"id": view.id, "status": "completed", "step": 1},
        ]
        assert {e["subscription_id"] for e in events} == {subscriptions[who]["id"]}
    assert _events(api_client, receiver, "outsider") == []
    # The same event is told to each party under one id, and each is signed once per party.
    ids = Counter(r.headers["ECONTRACT-Event-Id"] for r in receiver.received)
    assert set(ids.values()) == {2}
    # Nothing of the document or the parties: no title, no name, no code.
    for got in receiver.received:
        event = verified_event(got.body, api_client.get("/.well-known/jwks.json").json())
        assert set(event) == {"event_id", "type", "occurred_at", "envelope", "subscription_id"}
        assert TITLE not in str(event)
        assert ENTERPRISE not in str(event)
    # The delivery log names the envelope.
    log = api_client.get(
        f"/v1/subscriptions/{subscriptions['ent']['id']}/deliveries", headers=world.headers["ent"]
    ).json()
    assert {(d["envelope_id"], d["certificate_id"], d["status"]) for d in log} == {
        (view.id, None, "delivered")
    }


def test_a_passed_deadline_expires_the_envelope_and_is_told(
    api_client: TestClient, world: World, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    _subscribe(api_client, world, receiver, "ent", ["envelope.expired"])
    view = world.envelope(hours=1)
    _later(world.services, monkeypatch, hours=2)

    report = webhooks.run_round(world.services)

    assert (report.envelopes_expired, report.delivered) == (1, 1)
    [event] = _events(api_client, receiver, "ent")
    assert (event["type"], event["envelope"]) == (
        "envelope.expired",
        {"id": view.id, "status": "expired", "step": 1},
    )
    assert webhooks.run_round(world.services).envelopes_expired == 0
    assert len(receiver.received) == 1
    # Nobody looked at the envelope: the sweep expired it.
    assert get_envelope(world.services, view.id, actor=world.actors["ent"]).status == "expired"


def test_two_workers_sweeping_at_once_expire_each_envelope_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    views = [world.envelope(hours=1) for _ in range(3)]
    _later(world.services, monkeypatch, hours=2)
    results: list[tuple[int, int]] = []
    barrier = threading.Barrier(2)

    def sweep() -> None:
        barrier.wait()
        results.append(sweep_deadlines(world.services))

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(expired for expired, _ in results) == len(views)
    with world.services.sessions() as session:
        told = session.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(OutboxEvent.type == "envelope.expired")
        )
    assert told == len(views)


def test_a_sweep_and_parties_looking_at_once_expire_each_envelope_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    views = [world.envelope(hours=1) for _ in range(3)]
    _later(world.services, monkeypatch, hours=2)
    barrier = threading.Barrier(4)

    def sweep() -> None:
        barrier.wait()
        sweep_deadlines(world.services)

    def look(who: str) -> None:
        barrier.wait()
        for view in views:
            assert get_envelope(world.services, view.id, actor=world.actors[who]).status == (
                "expired"
            )

    threads = [
        threading.Thread(target=sweep),
        threading.Thread(target=look, args=("dept",)),
        threading.Thread(target=look, args=("ent",)),
        threading.Thread(target=look, args=("dept",)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    with world.services.sessions() as session:
        told = session.scalars(
            select(OutboxEvent.subject_id).where(OutboxEvent.type == "envelope.expired")
        ).all()
    assert sorted(told) == sorted(v.id for v in views)


def test_a_near_deadline_is_reminded_once(
    api_client: TestClient, world: World, receiver: Receiver
) -> None:
    _subscribe(api_client, world, receiver, "dept", ["envelope.reminder"])
    near = world.envelope(hours=10)
    world.envelope(hours=48)

    first = webhooks.run_round(world.services)
    second = webhooks.run_round(world.services)

    assert (first.reminded, first.delivered, second.reminded, second.delivered) == (1, 1, 0, 0)
    [event] = _events(api_client, receiver, "dept")
    assert (event["type"], event["envelope"]) == (
        "envelope.reminder",
        {"id": near.id, "status": "open", "step": 1},
    )


def test_an_enterprise_subscribes_to_envelope_events_only(
    api_client: TestClient, world: World, receiver: Receiver
) -> None:
    headers = world.headers["ent"]
    refused = api_client.post(
        "/v1/subscriptions",
        json={"url": receiver.url, "events": ["envelope.sealed", "certificate.revoked"]},
        headers=headers,
    )
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["type"] == "urn:econtract:problem:invalid-input"
    assert problem["errors"][0]["pointer"] == "/events/1"
    # The address rules hold for an enterprise as for a department.
    unsafe = api_client.post(
        "/v1/subscriptions",
        json={"url": "http://10.0.0.8/hook", "events": ["envelope.sealed"]},
        headers=headers,
    )
    assert (unsafe.status_code, unsafe.json()["type"]) == (422, "urn:econtract:problem:unsafe-url")
    made = _subscribe(api_client, world, receiver, "ent", ["envelope.sealed"])
    assert api_client.get("/v1/subscriptions", headers=headers).json() == [made]
    assert api_client.delete(f"/v1/subscriptions/{made['id']}", headers=headers).status_code == 204
    assert api_client.get("/v1/subscriptions", headers=headers).json() == []


def test_the_worker_finishes_a_completion_a_crash_left_undone(world: World) -> None:
    view = world.envelope(hours=48)
    world.seal(view, "ent")
    # The platform seal unusable at the last seal: the completion certificate is not made,
    # as a crash between the last seal and the completion leaves it.
    services = world.services
    with db.transaction(services.sessions) as session:
        platform = session.scalars(
            select(Seal)
            .join(Department, Department.id == Seal.department_id)
            .where(Department.code == services.settings.platform_code)
        ).one()
        platform.status = "retired"
    try:
        world.seal(view, "dept")
    finally:
        with db.transaction(services.sessions) as session:
            session.execute(update(Seal).where(Seal.id == platform.id).values(status="active"))

    assert webhooks.run_round(services).completions == 1
    assert webhooks.run_round(services).completions == 0
    shown = get_envelope(services, view.id, actor=world.actors["dept"])
    assert shown.completion_certificate is not None
