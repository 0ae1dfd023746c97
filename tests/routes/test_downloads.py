"""Sealed PDFs sent from the blob store: whole, with their length and name."""

from __future__ import annotations

from fastapi.testclient import TestClient

from econtract.services import Services
from tests.factories import token_for
from tests.licences import issue_example


def test_a_licence_download_carries_its_length_and_number(
    api_client: TestClient, initialised: Services
) -> None:
    certificate = issue_example(initialised)
    token = token_for(api_client, initialised, scopes="read")
    with initialised.blobs.open(certificate.blob_key) as stored:
        expected = stored.read()

    response = api_client.get(
        f"/v1/certificates/{certificate.id}/pdf", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-length"] == str(len(expected))
    assert response.headers["content-disposition"] == (
        f'attachment; filename="{certificate.number}.pdf"'
    )
    assert response.content == expected
