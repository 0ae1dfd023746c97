"""The certificate routes read a certificate's status on the services' clock."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from econtract.clock import FixedClock
from econtract.services import Services
from tests.factories import token_for
from tests.licences import issue_example


def test_a_certificates_status_is_read_on_the_services_date_not_the_machines(
    api_client: TestClient, initialised: Services
) -> None:
    certificate = issue_example(initialised)
    headers = {"Authorization": f"Bearer {token_for(api_client, initialised)}"}
    app_services: Services = api_client.app.state.services  # type: ignore[attr-defined]
    app_services.clock = FixedClock.on(certificate.valid_from - timedelta(days=1))

    one = api_client.get(f"/v1/certificates/{certificate.id}", headers=headers)
    listed = api_client.get("/v1/certificates", headers=headers)

    assert one.json()["status"] == "not-yet-valid"
    assert [c["status"] for c in listed.json() if c["id"] == certificate.id] == ["not-yet-valid"]
