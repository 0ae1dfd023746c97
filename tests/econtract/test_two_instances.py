"""Two ``econtract serve`` processes that share nothing but PostgreSQL: separate data
directories, the same key files, the database blob store. Whichever instance a request
reaches, the registry, the PDFs and the transparency log are the same."""

from __future__ import annotations

import hashlib
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE, initialise
from econtract.clients import create_client
from econtract.config import Settings
from econtract.models import Certificate
from econtract.services import Services
from tests.conftest import PG_URL
from tests.econtract.test_crash import audit, running_server, wait_for_a_head_covering_the_log
from tests.factories import OPERATOR
from tests.licences import holder_fields, qr_token
from tests.live import free_port

pytestmark = pytest.mark.skipif(
    not PG_URL,
    reason="two instances share a PostgreSQL registry (set ECONTRACT_TEST_DATABASE_URL)",
)

#: Settings both instances take: the shared store of PDFs, and a tree head every second.
SHARED = {"ECONTRACT_BLOB_STORE": "database", "ECONTRACT_LOG_STH_SECONDS": "1"}


def token_from(base: str, client_id: str, secret: str) -> str:
    response = httpx.post(
        f"{base}/v1/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def issue(http: httpx.Client, base: str, token: str, key: str) -> dict[str, str]:
    response = http.post(
        f"{base}/v1/certificates",
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
        json={"type": "business_licence", "fields": holder_fields()},
        timeout=120,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def qr_verdict(base: str, token: str) -> str:
    response = httpx.get(f"{base}/v/{token}", headers={"Accept": "application/json"})
    assert response.status_code == 200, response.text
    return str(response.json()["verdict"])


@pytest.mark.slow
def test_two_instances_on_one_registry_serve_one_service(
    settings: Settings, tmp_path: Path
) -> None:
    shared_settings = settings.model_copy(update={"blob_store": "database"})
    services = Services(settings=shared_settings)
    initialise(services)
    with db.transaction(services.sessions) as session:
        client, secret = create_client(
            session,
            department_code=DEMO_DEPARTMENT_CODE,
            name="two-instances",
            scopes="issue,read,revoke",
            actor=OPERATOR,
        )
    # B's data directory holds nothing of A's but the encrypted key files.
    settings_b = shared_settings.model_copy(update={"data_dir": tmp_path / "b"})
    settings_b.data_dir.mkdir(mode=0o700)
    shutil.copytree(shared_settings.data_dir / "keys", settings_b.data_dir / "keys")
    port_a, port_b = free_port(), free_port()
    a, b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
    audit_store = tmp_path / "audit"
    try:
        with (
            running_server(shared_settings, port_a, **SHARED),
            running_server(settings_b, port_b, **SHARED),
        ):
            token_a, token_b = token_from(a, client.id, secret), token_from(b, client.id, secret)
            assert audit(a, "fetch", audit_store).returncode == 0

            # Issued through both at once: every number once, every licence in the registry.
            jobs = [(a, token_a, f"a-{i}") for i in range(6)] + [
                (b, token_b, f"b-{i}") for i in range(6)
            ]
            with httpx.Client() as http, ThreadPoolExecutor(max_workers=12) as pool:
                issued = list(pool.map(lambda job: issue(http, *job), jobs))
            numbers = [c["number"] for c in issued]
            assert len(set(numbers)) == len(jobs)
            with services.sessions() as session:
                registered = {c.id: c for c in session.scalars(select(Certificate))}
            assert {c["id"] for c in issued} == set(registered)

            # A licence issued on A downloads from B byte for byte and verifies there.
            on_a = issued[0]
            pdfs = {
                base: httpx.get(
                    f"{base}/v1/certificates/{on_a['id']}/pdf",
                    headers={"Authorization": f"Bearer {token}"},
                ).content
                for base, token in ((a, token_a), (b, token_b))
            }
            assert pdfs[a] == pdfs[b]
            assert hashlib.sha256(pdfs[b]).hexdigest() == registered[on_a["id"]].pdf_sha256
            report = httpx.post(
                f"{b}/v1/verify", files={"file": ("licence.pdf", pdfs[b], "application/pdf")}
            ).json()
            assert report["verdict"] == "VALID", report
            # B serves it from the registry: its own data directory holds no PDF.
            assert not list(settings_b.data_dir.rglob("*.pdf"))
            assert not list(shared_settings.data_dir.rglob("*.pdf"))

            # A revocation through A shows on B's QR page at the next request.
            token = qr_token(services, registered[on_a["id"]])
            assert qr_verdict(b, token) == "VALID"
            revoked = httpx.post(
                f"{a}/v1/certificates/{on_a['id']}/revoke",
                headers={"Authorization": f"Bearer {token_a}"},
                json={"reason": "两个实例的测试"},
            )
            assert revoked.status_code == 200, revoked.text
            assert qr_verdict(b, token) == "REVOKED"

            # One log: the heads both publish extend the one the auditor kept, whichever
            # instance the auditor asks.
            wait_for_a_head_covering_the_log(a, services)
            wait_for_a_head_covering_the_log(b, services)
            for base in (b, a):
                checked = audit(base, "check", audit_store)
                assert checked.returncode == 0, checked.stdout + checked.stderr
            heads = [httpx.get(f"{base}/log/sth").json() for base in (a, b)]
            assert heads[0]["tree_size"] == heads[1]["tree_size"]
            assert heads[0]["sha256_root_hash"] == heads[1]["sha256_root_hash"]
    finally:
        services.dispose()
