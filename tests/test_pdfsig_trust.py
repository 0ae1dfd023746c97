"""End to end: a document sealed by the running service is trusted by pdfsig (NSS) with the
published root, its OCSP URL answered by the service itself."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE, initialise
from econtract.clients import create_client
from econtract.config import Settings
from econtract.seals import list_seals
from econtract.services import Services
from tests.factories import OPERATOR
from tests.live import free_port, serve
from tests.pdfsig import nss_db
from tests.signing.sealing import make_pdf


@pytest.fixture
def service(settings: Settings) -> Iterator[tuple[str, Services]]:
    """A service whose public URL is the live server's, so certificates point at it."""
    port = free_port()
    settings = settings.model_copy(update={"public_base_url": f"http://127.0.0.1:{port}"})
    services = Services(settings=settings)
    initialise(services)
    with serve(settings, port) as base:
        yield base, services
    services.dispose()


@pytest.mark.parametrize("level", ["B-B", "B-T", "B-LT", "B-LTA"])
def test_pdfsig_trusts_a_sealed_document(
    service: tuple[str, Services], tmp_path: Path, level: str
) -> None:
    base, services = service
    with db.transaction(services.sessions) as session:
        client, secret = create_client(
            session,
            department_code=DEMO_DEPARTMENT_CODE,
            name="x",
            scopes="seal",
            actor=OPERATOR,
        )
    token = httpx.post(
        f"{base}/v1/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client.id,
            "client_secret": secret,
        },
    ).json()["access_token"]
    with services.sessions() as session:
        seal = next(s for s in list_seals(session) if s.kind == "licence")
    response = httpx.post(
        f"{base}/v1/documents/seal",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/pdf"},
        files={"file": ("a.pdf", make_pdf(), "application/pdf")},
        data={"seal": seal.id, "level": level, "visible": "1:450,150"},
        timeout=60,
    )
    assert response.status_code == 201, response.text
    sealed = tmp_path / "sealed.pdf"
    sealed.write_bytes(response.content)
    nss = nss_db(tmp_path / "nss", httpx.get(f"{base}/pki/ca/root.pem").content)
    done = subprocess.run(
        ["pdfsig", "-nssdir", f"sql:{nss}", str(sealed)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = done.stdout + done.stderr
    assert "Signature Validation: Signature is Valid." in report, report
    assert "Certificate Validation: Certificate is Trusted." in report, report
