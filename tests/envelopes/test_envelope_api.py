"""Envelopes over HTTP: a department and two enterprises seal a contract through their own
clients; every refusal is a problem; fifty envelopes sealed at once lose no step."""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from sqlalchemy import func, select

from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.envelopes import Envelope, EnvelopeParty
from econtract.services import Services
from tests.envelopes.parties import ENTERPRISE_A as A
from tests.envelopes.parties import ENTERPRISE_B as B
from tests.envelopes.parties import OTHER, make_parties
from tests.factories import token_for
from tests.live import serve
from tests.signing.sealing import make_pdf

pytestmark = pytest.mark.registry

PROBLEM = "application/problem+json"


def _setup(client: httpx.Client | TestClient, services: Services) -> dict[str, Any]:
    seals = {name: party.seal for name, party in make_parties(services).items()}
    tokens = {
        "dept": token_for(client, services, DEMO_DEPARTMENT_CODE, "seal,read"),
        "a": token_for(client, services, A, "sign"),
        "b": token_for(client, services, B, "sign"),
        "other": token_for(client, services, OTHER, "sign"),
    }
    return {
        "seals": seals,
        "headers": {k: {"Authorization": f"Bearer {t}"} for k, t in tokens.items()},
    }


def _envelope(services: Services, seal: str) -> str:
    deadline = (services.clock.now() + timedelta(days=2)).isoformat()
    return json.dumps(
        {
            "title": "政府采购合同",
            "seal": seal,
            "visible": "1:100,150",
            "steps": [
                {
                    "deadline": deadline,
                    "parties": [
                        {"code": A, "field": "PartyA", "x": 250},
                        {"code": B, "field": "PartyB", "x": 400},
                    ],
                },
                {
                    "deadline": deadline,
                    "parties": [
                        {"code": DEMO_DEPARTMENT_CODE, "field": "Buyer", "x": 500},
                    ],
                },
            ],
        }
    )


def _start(client: Any, services: Services, world: dict[str, Any], key: str) -> Any:
    return client.post(
        "/v1/envelopes",
        files={"file": ("contract.pdf", make_pdf(), "application/pdf")},
        data={"envelope": _envelope(services, world["seals"]["dept"])},
        headers=world["headers"]["dept"] | {"Idempotency-Key": key},
    )


def _seal(client: Any, world: dict[str, Any], envelope_id: str, who: str) -> Any:
    return client.post(
        f"/v1/envelopes/{envelope_id}/seal",
        json={"seal": world["seals"][who]},
        headers=world["headers"][who],
    )


def test_a_contract_of_a_department_and_two_enterprises_completes_and_validates(
    api_client: TestClient, initialised: Services
) -> None:
    world = _setup(api_client, initialised)
    started = _start(api_client, initialised, world, "contract-1")
    assert started.status_code == 201, started.text
    envelope = started.json()
    assert started.headers["location"] == f"/v1/envelopes/{envelope['id']}"
    assert [p["status"] for p in envelope["parties"]] == ["open", "open", "waiting"]
    assert _seal(api_client, world, envelope["id"], "b").json()["progress"] == (
        "1 of 3 parties have sealed"
    )
    assert _seal(api_client, world, envelope["id"], "a").json()["step"] == 2
    done = _seal(api_client, world, envelope["id"], "dept").json()
    assert done["status"] == "completed"
    assert [p["client_id"] is not None for p in done["parties"]] == [True, True, True]
    pdf = api_client.get(f"/v1/envelopes/{envelope['id']}/pdf", headers=world["headers"]["a"])
    assert pdf.headers["content-type"] == "application/pdf"
    reader = PdfFileReader(io.BytesIO(pdf.content))
    trust = asn1_x509.Certificate.load(initialised.pki.root.certificate.public_bytes(Encoding.DER))
    signatures = reader.embedded_signatures
    assert [s.field_name for s in signatures[1:-1]] == ["PartyB", "PartyA", "Buyer"]
    for signature in signatures[:-1]:  # the last is the completion's document timestamp
        status = validate_pdf_signature(
            signature, ValidationContext(trust_roots=[trust], allow_fetching=False)
        )
        assert status.intact
        assert status.valid
        assert status.trusted
        assert status.docmdp_ok
        assert status.modification_level is not None
        assert status.modification_level <= ModificationLevel.FORM_FILLING


def test_every_refusal_is_a_problem_and_changes_nothing(
    api_client: TestClient, initialised: Services
) -> None:
    world = _setup(api_client, initialised)
    envelope = _start(api_client, initialised, world, "contract-2").json()
    envelope_id = envelope["id"]

    def problem(response: Any, status: int, code: str) -> None:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"] == f"urn:econtract:problem:{code}"

    problem(_seal(api_client, world, envelope_id, "dept"), 409, "envelope-not-your-turn")
    problem(
        api_client.get(f"/v1/envelopes/{envelope_id}", headers=world["headers"]["other"]),
        404,
        "not-found",
    )
    problem(_seal(api_client, world, envelope_id, "other"), 404, "not-found")
    # An enterprise with another party's seal, and with the department's.
    for seal in (world["seals"]["b"], world["seals"]["dept"]):
        problem(
            api_client.post(
                f"/v1/envelopes/{envelope_id}/seal",
                json={"seal": seal},
                headers=world["headers"]["a"],
            ),
            404,
            "not-found",
        )
    assert _seal(api_client, world, envelope_id, "a").status_code == 200
    problem(_seal(api_client, world, envelope_id, "a"), 409, "envelope-already-acted")
    declined = api_client.post(
        f"/v1/envelopes/{envelope_id}/decline",
        json={"reason": "价格条款有误"},
        headers=world["headers"]["b"],
    )
    assert declined.json()["status"] == "declined"
    problem(_seal(api_client, world, envelope_id, "b"), 409, "envelope-closed")
    now = api_client.get(f"/v1/envelopes/{envelope_id}", headers=world["headers"]["dept"]).json()
    assert now["progress"] == "1 of 3 parties have sealed"
    # Starting needs a key, and well-formed steps.
    problem(
        api_client.post(
            "/v1/envelopes",
            files={"file": ("c.pdf", make_pdf(), "application/pdf")},
            data={"envelope": _envelope(initialised, world["seals"]["dept"])},
            headers=world["headers"]["dept"],
        ),
        428,
        "idempotency-key-required",
    )
    bad = api_client.post(
        "/v1/envelopes",
        files={"file": ("c.pdf", make_pdf(), "application/pdf")},
        data={"envelope": json.dumps({"title": "x", "seal": "s", "steps": []})},
        headers=world["headers"]["dept"] | {"Idempotency-Key": "bad-1"},
    )
    problem(bad, 422, "invalid-input")
    assert any(e["pointer"] == "/envelope/steps" for e in bad.json()["errors"])
    # A client with neither seal nor sign.
    reader = token_for(api_client, initialised, DEMO_DEPARTMENT_CODE, "read")
    problem(
        api_client.get("/v1/envelopes", headers={"Authorization": f"Bearer {reader}"}),
        403,
        "forbidden",
    )


def test_fifty_envelopes_of_three_parties_sealed_at_once_lose_no_step(
    initialised: Services,
) -> None:
    with serve(initialised.settings) as base, httpx.Client(base_url=base, timeout=120) as client:
        world = _setup(client, initialised)
        with ThreadPoolExecutor(8) as pool:
            started = list(
                pool.map(lambda n: _start(client, initialised, world, f"bulk-{n}"), range(50))
            )
        assert [r.status_code for r in started] == [201] * 50
        ids = [r.json()["id"] for r in started]
        jobs = [(envelope_id, who) for envelope_id in ids for who in ("a", "b")]
        with ThreadPoolExecutor(8) as pool:
            first = list(pool.map(lambda job: _seal(client, world, *job), jobs))
        assert [r.status_code for r in first] == [200] * 100, [
            r.text for r in first if r.status_code != 200
        ][:2]
        with ThreadPoolExecutor(8) as pool:
            last = list(pool.map(lambda e: _seal(client, world, e, "dept"), ids))
        assert [r.json()["status"] for r in last] == ["completed"] * 50
    with initialised.sessions() as session:
        assert (
            session.scalar(
                select(func.count()).select_from(Envelope).where(Envelope.status == "completed")
            )
            == 50
        )
        assert (
            session.scalar(
                select(func.count())
                .select_from(EnvelopeParty)
                .where(EnvelopeParty.status == "sealed")
            )
            == 150
        )
        # Every party's seal made a revision of its own: no two parties share one.
        documents = {d for (d,) in session.execute(select(EnvelopeParty.document_id)).all()}
        assert len(documents) == 150


def test_the_list_filters_by_status_and_party_and_pages_with_a_link(
    api_client: TestClient, initialised: Services
) -> None:
    world = _setup(api_client, initialised)
    started = [_start(api_client, initialised, world, f"list-{n}").json()["id"] for n in range(3)]
    # A contract between the department and enterprise A alone.
    alone = api_client.post(
        "/v1/envelopes",
        files={"file": ("c.pdf", make_pdf(), "application/pdf")},
        data={
            "envelope": json.dumps(
                {
                    "title": "补充协议",
                    "seal": world["seals"]["dept"],
                    "steps": [
                        {
                            "deadline": (initialised.clock.now() + timedelta(days=1)).isoformat(),
                            "parties": [{"code": A, "field": "PartyA"}],
                        }
                    ],
                }
            )
        },
        headers=world["headers"]["dept"] | {"Idempotency-Key": "list-alone"},
    ).json()["id"]
    assert _seal(api_client, world, alone, "a").status_code == 200

    def listed(who: str, query: str = "") -> tuple[list[str], str | None]:
        answer = api_client.get(f"/v1/envelopes{query}", headers=world["headers"][who])
        assert answer.status_code == 200, answer.text
        return [e["id"] for e in answer.json()["envelopes"]], answer.headers.get("link")

    newest_first = [alone, *reversed(started)]
    assert listed("dept") == (newest_first, None)
    assert listed("b") == (list(reversed(started)), None)
    assert listed("dept", f"?party={B}") == (list(reversed(started)), None)
    assert listed("dept", "?status=completed") == ([alone], None)
    assert listed("b", "?status=completed") == ([], None)
    assert listed("other") == ([], None)

    # Pages of two, followed by their Link headers.
    seen: list[str] = []
    page, link = listed("dept", "?limit=2")
    while True:
        seen += page
        if link is None:
            break
        url = link.split(";")[0].strip("<>")
        page, link = listed("dept", url.removeprefix("/v1/envelopes"))
    assert seen == newest_first
    # Another party's envelope is no cursor for an outsider.
    refused = api_client.get(f"/v1/envelopes?after={alone}", headers=world["headers"]["b"])
    assert refused.status_code == 404
    assert refused.headers["content-type"] == PROBLEM
