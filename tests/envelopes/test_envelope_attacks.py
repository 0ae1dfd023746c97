"""Attacks on an envelope, each refused with a clear problem and the document unchanged: a
party naming another party's field, a page or a field added between steps, a step replayed
after completion, a seal after the deadline."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.writer import PageObject
from pyhanko.sign.fields import SigFieldSpec, append_signature_field

from econtract.clock import FixedClock
from econtract.services import Services
from tests.envelopes.test_envelope_api import _seal, _setup, _start

pytestmark = pytest.mark.registry

PROBLEM = "application/problem+json"


def _problem(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == f"urn:econtract:problem:{code}"


def _pdf(client: TestClient, world: dict[str, Any], envelope_id: str) -> bytes:
    response = client.get(f"/v1/envelopes/{envelope_id}/pdf", headers=world["headers"]["dept"])
    assert response.status_code == 200
    pdf: bytes = response.content
    return pdf


def _verdict(client: TestClient, pdf: bytes) -> dict[str, Any]:
    response = client.post("/v1/verify", files={"file": ("x.pdf", pdf, "application/pdf")})
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def _with_page(pdf: bytes) -> bytes:
    """``pdf`` with a blank page appended in a revision of its own, as a party that kept
    the file might try between two steps."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    contents = writer.add_object(generic.StreamObject(stream_data=b"BT ET"))
    page = PageObject(contents=contents, media_box=(0, 0, 595, 842))  # type: ignore[no-untyped-call]
    writer.insert_page(page)  # type: ignore[no-untyped-call]
    out = io.BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    return out.getvalue()


def _with_field(pdf: bytes) -> bytes:
    """``pdf`` with a new, unbound signature field added in a revision of its own."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    append_signature_field(writer, SigFieldSpec("Extra", box=(50, 50, 150, 100), on_page=0))
    out = io.BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    return out.getvalue()


@pytest.fixture
def started(api_client: TestClient, initialised: Services) -> tuple[dict[str, Any], str]:
    world = _setup(api_client, initialised)
    response = _start(api_client, initialised, world, "attacks-1")
    assert response.status_code == 201, response.text
    return world, response.json()["id"]


def test_a_party_naming_another_partys_field_is_refused(
    api_client: TestClient, started: tuple[dict[str, Any], str]
) -> None:
    world, envelope_id = started
    before = _pdf(api_client, world, envelope_id)
    refused = api_client.post(
        f"/v1/envelopes/{envelope_id}/seal",
        json={"seal": world["seals"]["a"], "field": "PartyB"},
        headers=world["headers"]["a"],
    )
    _problem(refused, 422, "invalid-input")
    assert any(e["pointer"] == "/field" for e in refused.json()["errors"]), refused.json()
    assert _pdf(api_client, world, envelope_id) == before


@pytest.mark.parametrize("change", [_with_page, _with_field], ids=["page", "field"])
def test_a_page_or_field_added_between_steps_does_not_verify(
    api_client: TestClient, started: tuple[dict[str, Any], str], change: Any
) -> None:
    world, envelope_id = started
    assert _seal(api_client, world, envelope_id, "a").status_code == 200
    between = _pdf(api_client, world, envelope_id)
    assert _verdict(api_client, between)["verdict"] == "INCOMPLETE"

    report = _verdict(api_client, change(between))
    # A change the certification does not allow: the file is no longer what was sealed.
    assert report["verdict"] in ("MODIFIED", "INVALID"), report["reasons"]
    # The envelope's own document is the service's; the altered copy never reaches it.
    assert _pdf(api_client, world, envelope_id) == between


def test_a_completed_step_replayed_is_refused_and_changes_nothing(
    api_client: TestClient, started: tuple[dict[str, Any], str]
) -> None:
    world, envelope_id = started
    for who in ("a", "b", "dept"):
        assert _seal(api_client, world, envelope_id, who).status_code == 200
    done = _pdf(api_client, world, envelope_id)
    for who in ("a", "b", "dept"):
        _problem(_seal(api_client, world, envelope_id, who), 409, "envelope-closed")
    _problem(
        api_client.post(
            f"/v1/envelopes/{envelope_id}/decline",
            json={"reason": "改主意了"},
            headers=world["headers"]["b"],
        ),
        409,
        "envelope-closed",
    )
    assert _pdf(api_client, world, envelope_id) == done
    state = api_client.get(f"/v1/envelopes/{envelope_id}", headers=world["headers"]["a"]).json()
    assert (state["status"], state["progress"]) == ("completed", "3 of 3 parties have sealed")


def test_a_seal_after_the_deadline_is_refused_and_changes_nothing(
    api_client: TestClient, started: tuple[dict[str, Any], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    world, envelope_id = started
    before = _pdf(api_client, world, envelope_id)
    served: Services = api_client.app.state.services  # type: ignore[attr-defined]
    monkeypatch.setattr(served, "clock", FixedClock(served.clock.now() + timedelta(days=3)))
    _problem(_seal(api_client, world, envelope_id, "a"), 409, "envelope-expired")
    assert _pdf(api_client, world, envelope_id) == before
    state = api_client.get(f"/v1/envelopes/{envelope_id}", headers=world["headers"]["a"]).json()
    assert (state["status"], state["progress"]) == ("expired", "0 of 3 parties have sealed")
