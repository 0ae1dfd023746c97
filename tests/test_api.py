"""The HTTP API's operations and public PKI, checked with OpenSSL against a live server."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient
from sqlalchemy import select

from api import create_app
from econtract import audit, db
from econtract.models import Seal
from econtract.seals import revoke_seal
from econtract.services import Services
from tests.live import serve


@pytest.fixture
def api_client(initialised: Services) -> Iterator[TestClient]:
    with TestClient(create_app(initialised.settings)) as client:
        yield client


@pytest.fixture
def live_server(initialised: Services) -> Iterator[str]:
    """The API served by uvicorn on a free loopback port."""
    with serve(initialised.settings) as base:
        yield base


def pem_files(base: str, tmp_path: Path) -> dict[str, Path]:
    files = {}
    for name in ("root", "issuing"):
        path = tmp_path / f"{name}.pem"
        path.write_bytes(httpx.get(f"{base}/pki/ca/{name}.pem").content)
        files[name] = path
    chain = tmp_path / "chain.pem"
    chain.write_bytes(httpx.get(f"{base}/pki/chain.pem").content)
    files["chain"] = chain
    return files


def seal_pem(services: Services, tmp_path: Path, kind: str) -> tuple[str, Path]:
    with services.sessions() as session:
        seal = session.scalars(select(Seal).where(Seal.kind == kind)).one()
    path = tmp_path / f"{seal.id}.pem"
    path.write_bytes(
        x509.load_der_x509_certificate(seal.certificate_der).public_bytes(Encoding.PEM)
    )
    return seal.id, path


def openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_healthz_and_readyz(api_client: TestClient) -> None:
    assert api_client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = api_client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "key_store": "ok"}
    assert ready.headers["x-request-id"]


def test_readyz_is_503_when_the_database_is_gone(initialised: Services) -> None:
    settings = initialised.settings.model_copy(
        update={"database_url": "postgresql+psycopg://nobody@127.0.0.1:1/none"}
    )
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 503
    assert "ECONTRACT_DATABASE_URL" in ready.json()["checks"]["database"]


def test_metrics_count_requests(api_client: TestClient) -> None:
    api_client.get("/healthz")
    text = api_client.get("/metrics").text
    assert 'econtract_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert "econtract_http_request_duration_seconds_bucket" in text
    assert "econtract_seals_made_total" in text


def test_request_id_is_echoed(api_client: TestClient) -> None:
    response = api_client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"


def test_unknown_route_is_problem_json(api_client: TestClient) -> None:
    response = api_client.get("/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:econtract:problem:not-found"


def test_trust_list_names_root_and_issuing(api_client: TestClient, initialised: Services) -> None:
    body = api_client.get("/pki/trust-list.json").json()
    root = x509.load_pem_x509_certificate(body["root"]["pem"].encode())
    assert root == initialised.pki.root.certificate
    assert [i["name"] for i in body["intermediates"]] == ["issuing"]
    assert body["ocsp_url"] == "http://127.0.0.1:8000/pki/ocsp"


def test_crl_lists_a_revoked_seal(api_client: TestClient, initialised: Services) -> None:
    empty = x509.load_der_x509_crl(api_client.get("/pki/crl/issuing.crl").content)
    assert len(empty) == 0
    assert empty.is_signature_valid(initialised.pki.issuing.certificate.public_key())  # type: ignore[arg-type]
    with initialised.sessions() as session:
        seal = session.scalars(select(Seal).where(Seal.kind == "licence")).one()
    with db.transaction(initialised.sessions) as session:
        revoke_seal(
            session, seal_id=seal.id, reason="keyCompromise", actor=audit.Actor.operator("test")
        )
    crl = x509.load_der_x509_crl(api_client.get("/pki/crl/issuing.crl").content)
    entry = crl.get_revoked_certificate_by_serial_number(int(seal.serial_number))
    assert entry is not None
    assert (
        crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        > empty.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    )


def test_unknown_crl_is_404(api_client: TestClient) -> None:
    assert api_client.get("/pki/crl/nope.crl").status_code == 404


def test_openssl_verifies_a_seal_certificate_against_the_chain(
    live_server: str, initialised: Services, tmp_path: Path
) -> None:
    files = pem_files(live_server, tmp_path)
    _, seal = seal_pem(initialised, tmp_path, "licence")
    done = openssl(
        "verify", "-CAfile", str(files["root"]), "-untrusted", str(files["issuing"]), str(seal)
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(": OK")


def test_openssl_ocsp_says_good_then_revoked(
    live_server: str, initialised: Services, tmp_path: Path
) -> None:
    files = pem_files(live_server, tmp_path)
    seal_id, seal = seal_pem(initialised, tmp_path, "licence")
    args = (
        "ocsp",
        "-issuer",
        str(files["issuing"]),
        "-cert",
        str(seal),
        "-url",
        f"{live_server}/pki/ocsp",
        "-CAfile",
        str(files["root"]),
        "-verify_other",
        str(files["chain"]),
    )
    good = openssl(*args)
    assert good.returncode == 0, good.stderr
    assert f"{seal}: good" in good.stdout
    assert "Response verify OK" in good.stderr
    with db.transaction(initialised.sessions) as session:
        revoke_seal(
            session, seal_id=seal_id, reason="keyCompromise", actor=audit.Actor.operator("test")
        )
    revoked = openssl(*args)
    assert f"{seal}: revoked" in revoked.stdout, revoked.stdout
    assert "Reason: keyCompromise" in revoked.stdout
    assert "Response verify OK" in revoked.stderr


def test_ocsp_request_that_is_not_der_is_400(api_client: TestClient) -> None:
    response = api_client.post(
        "/pki/ocsp", content=b"not der at all", headers={"Content-Type": "application/ocsp-request"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:econtract:problem:malformed-request"


def test_ocsp_wrong_media_type_is_415(api_client: TestClient) -> None:
    response = api_client.post("/pki/ocsp", content=b"x", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415


def test_openssl_ts_verifies_a_token_from_the_tsa(live_server: str, tmp_path: Path) -> None:
    files = pem_files(live_server, tmp_path)
    data = tmp_path / "data.bin"
    data.write_bytes(b"a document to timestamp")
    query = tmp_path / "q.tsq"
    made = openssl("ts", "-query", "-data", str(data), "-sha256", "-cert", "-out", str(query))
    assert made.returncode == 0, made.stderr
    reply = httpx.post(
        f"{live_server}/pki/tsa",
        content=query.read_bytes(),
        headers={"Content-Type": "application/timestamp-query"},
    )
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/timestamp-reply"
    (tmp_path / "r.tsr").write_bytes(reply.content)
    verified = openssl(
        "ts",
        "-verify",
        "-in",
        str(tmp_path / "r.tsr"),
        "-queryfile",
        str(query),
        "-CAfile",
        str(files["root"]),
        "-untrusted",
        str(files["chain"]),
    )
    assert verified.returncode == 0, verified.stderr + verified.stdout
    assert "Verification: OK" in verified.stdout


def test_tsa_refuses_an_unsupported_hash(live_server: str, tmp_path: Path) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(b"x")
    query = tmp_path / "q.tsq"
    assert openssl("ts", "-query", "-data", str(data), "-md5", "-out", str(query)).returncode == 0
    reply = httpx.post(
        f"{live_server}/pki/tsa",
        content=query.read_bytes(),
        headers={"Content-Type": "application/timestamp-query"},
    )
    assert reply.status_code == 400
    assert "md5" in reply.headers["x-problem-detail"].lower()
    (tmp_path / "r.tsr").write_bytes(reply.content)
    shown = openssl("ts", "-reply", "-in", str(tmp_path / "r.tsr"), "-text")
    assert "Status: Rejected" in shown.stdout
    assert "unrecognized or unsupported algorithm identifier" in shown.stdout.lower()


def test_openapi_describes_every_route(api_client: TestClient) -> None:
    spec = api_client.get("/openapi.json").json()
    for path in (
        "/v1/token",
        "/v1/certificates",
        "/v1/documents/seal",
        "/v1/verify",
        "/v/{token}",
        "/pki/ocsp",
        "/pki/tsa",
        "/log/sth",
        "/v1/audit/events",
    ):
        assert path in spec["paths"], path
    create = spec["components"]["schemas"]["CertificateCreate"]
    assert create["examples"][0]["type"] == "business_licence"
    assert create["additionalProperties"] is False
