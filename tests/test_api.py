"""The HTTP API's operations and public PKI, checked with OpenSSL against a live server."""

from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient
from sqlalchemy import select

from api import create_app, status_of
from econtract import db
from econtract.errors import ConflictError, EContractError, NotFoundError
from econtract.models import Seal
from econtract.seals import revoke_seal
from econtract.services import Services
from econtract.translog import LogNotFoundError
from signing.errors import TimestampError
from tests.factories import OPERATOR, token_for
from tests.live import serve


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


def test_healthz_is_ok_without_checking_anything(api_client: TestClient) -> None:
    assert api_client.get("/healthz").json() == {"status": "ok", "checks": {}}


def test_readyz_checks_the_database_and_the_key_store(api_client: TestClient) -> None:
    ready = api_client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "key_store": "ok"}


def test_a_request_without_an_id_is_given_one(api_client: TestClient) -> None:
    assert api_client.get("/readyz").headers["x-request-id"]


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


def issuing_crl(api_client: TestClient) -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl(api_client.get("/pki/crl/issuing.crl").content)


def crl_number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def revoke_the_licence_seal(services: Services) -> Seal:
    with services.sessions() as session:
        seal = session.scalars(select(Seal).where(Seal.kind == "licence")).one()
    with db.transaction(services.sessions) as session:
        revoke_seal(session, seal_id=seal.id, reason="keyCompromise", actor=OPERATOR)
    return seal


def test_the_crl_is_signed_by_the_issuing_ca(api_client: TestClient, initialised: Services) -> None:
    crl = issuing_crl(api_client)
    assert crl.is_signature_valid(initialised.pki.issuing.certificate.public_key())  # type: ignore[arg-type]


def test_crl_lists_a_revoked_seal(api_client: TestClient, initialised: Services) -> None:
    assert len(issuing_crl(api_client)) == 0
    seal = revoke_the_licence_seal(initialised)
    entry = issuing_crl(api_client).get_revoked_certificate_by_serial_number(
        int(seal.serial_number)
    )
    assert entry is not None


def test_a_revocation_raises_the_crl_number(api_client: TestClient, initialised: Services) -> None:
    before = crl_number(issuing_crl(api_client))
    revoke_the_licence_seal(initialised)
    assert crl_number(issuing_crl(api_client)) > before


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


def openssl_ocsp_args(live_server: str, tmp_path: Path, seal: Path) -> tuple[str, ...]:
    files = pem_files(live_server, tmp_path)
    return (
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


def test_openssl_ocsp_says_a_live_seal_is_good(
    live_server: str, initialised: Services, tmp_path: Path
) -> None:
    _, seal = seal_pem(initialised, tmp_path, "licence")
    good = openssl(*openssl_ocsp_args(live_server, tmp_path, seal))
    assert good.returncode == 0, good.stderr
    assert f"{seal}: good" in good.stdout
    assert "Response verify OK" in good.stderr


def test_openssl_ocsp_says_a_revoked_seal_is_revoked_with_its_reason(
    live_server: str, initialised: Services, tmp_path: Path
) -> None:
    seal_id, seal = seal_pem(initialised, tmp_path, "licence")
    with db.transaction(initialised.sessions) as session:
        revoke_seal(session, seal_id=seal_id, reason="keyCompromise", actor=OPERATOR)
    revoked = openssl(*openssl_ocsp_args(live_server, tmp_path, seal))
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


@pytest.mark.parametrize(
    "path",
    [
        "/v1/token",
        "/v1/certificates",
        "/v1/documents/seal",
        "/v1/verify",
        "/v/{token}",
        "/pki/ocsp",
        "/pki/tsa",
        "/log/sth",
        "/v1/audit/events",
        "/v1/seals",
    ],
)
def test_openapi_describes_every_route(api_client: TestClient, path: str) -> None:
    spec = api_client.get("/openapi.json").json()
    assert path in spec["paths"], path


def certificate_create_schema(api_client: TestClient) -> dict[str, object]:
    schema: dict[str, object] = api_client.get("/openapi.json").json()["components"]["schemas"][
        "CertificateCreate"
    ]
    return schema


def test_openapi_shows_an_example_of_a_certificate_to_issue(api_client: TestClient) -> None:
    examples = certificate_create_schema(api_client)["examples"]
    assert isinstance(examples, list)
    assert examples[0]["type"] == "business_licence"


def test_openapi_says_a_certificate_to_issue_takes_no_unknown_fields(
    api_client: TestClient,
) -> None:
    assert certificate_create_schema(api_client)["additionalProperties"] is False


# -- errors a person can act on ------------------------------------------------------------

PACKAGES = ("keys", "signing", "verify", "econtract")


def error_classes() -> list[type[EContractError]]:
    """Every error class of the project's packages (their modules imported first)."""
    for name in PACKAGES:
        package = importlib.import_module(name)
        for module in pkgutil.walk_packages(package.__path__, f"{name}."):
            # Alembic's environment runs migrations when imported; it defines no errors.
            if ".migrations" not in module.name:
                importlib.import_module(module.name)
    found: list[type[EContractError]] = []
    pending: list[type[EContractError]] = [EContractError]
    while pending:
        cls = pending.pop()
        if cls.__module__.split(".")[0] in (*PACKAGES, "api") and cls not in found:
            found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def test_the_walk_finds_the_packages_errors_not_just_the_root() -> None:
    assert len(error_classes()) > 30


def test_every_error_type_declares_a_title_of_its_own() -> None:
    for cls in error_classes():
        title = cls.__dict__.get("title")
        assert isinstance(title, str), f"{cls.__qualname__} declares no title of its own"


def test_every_error_title_is_a_plain_sentence() -> None:
    for cls in error_classes():
        title = cls.title
        assert title[0].isupper(), f"{cls.__qualname__}: {title!r}"
        assert title.endswith("."), f"{cls.__qualname__}: {title!r}"
        assert "`" not in title, f"{cls.__qualname__}: {title!r}"


def test_no_two_errors_of_different_codes_share_a_title() -> None:
    titles: dict[str, type[EContractError]] = {}
    for cls in error_classes():
        title = cls.title
        assert title not in titles or titles[title].code == cls.code, (
            f"{cls.__qualname__} and {titles[title].__qualname__} share the title {title!r}"
        )
        titles[title] = cls


def test_the_title_does_not_come_from_the_docstring(api_client: TestClient) -> None:
    problem = api_client.get("/pki/ca/nope.pem").json()
    assert problem["title"] == NotFoundError.title
    assert problem["title"] != (NotFoundError.__doc__ or "").strip().splitlines()[0]


def test_the_status_of_a_new_error_follows_its_family() -> None:
    class DuplicateThingError(ConflictError):
        code = "duplicate-thing"
        title = "The thing exists already."

    class DeepNotFoundError(LogNotFoundError):
        code = "deep-not-found"
        title = "The deep thing does not exist."

    assert status_of(DuplicateThingError("x")) == 409
    assert status_of(DeepNotFoundError("x")) == 404
    assert status_of(TimestampError("x")) == 503  # before its family, SigningError (422)
    assert status_of(EContractError("x")) == 400


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v1/certificates", "GET, POST"),
        ("POST", "/healthz", "GET"),
        # The QR page is a plain route of its own, matched before the others; it answers HEAD.
        ("POST", "/v/abc", "GET, HEAD"),
    ],
    ids=["certificates", "healthz", "qr-page"],
)
def test_a_405_names_every_method_the_resource_takes(
    api_client: TestClient, method: str, path: str, allow: str
) -> None:
    response = api_client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow


def test_a_405_is_a_problem_naming_the_methods_in_its_detail(api_client: TestClient) -> None:
    response = api_client.delete("/v1/certificates")
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:econtract:problem:method-not-allowed"
    assert "GET, POST" in response.json()["detail"]


def test_a_json_token_request_is_told_to_send_a_form(api_client: TestClient) -> None:
    response = api_client.post(
        "/v1/token", json={"grant_type": "client_credentials", "client_id": "x"}
    )
    assert response.status_code == 400
    problem = response.json()
    assert problem["error"] == "invalid_request"
    assert "application/x-www-form-urlencoded" in problem["detail"]
    assert "not application/json" in problem["detail"]


@pytest.mark.parametrize(("path", "scopes"), [("/v1/verify", None), ("/v1/documents/seal", "seal")])
def test_not_a_pdf_is_415_on_every_upload_endpoint(
    api_client: TestClient, initialised: Services, path: str, scopes: str | None
) -> None:
    headers = {}
    form = {}
    if scopes is not None:
        headers["Authorization"] = f"Bearer {token_for(api_client, initialised, scopes=scopes)}"
        with initialised.sessions() as session:
            form["seal"] = session.scalars(select(Seal.id).where(Seal.kind == "official")).one()
    response = api_client.post(
        path,
        files={"file": ("photo.pdf", b"GIF89a not a pdf" + bytes(2000), "application/pdf")},
        data=form,
        headers=headers,
    )
    assert response.status_code == 415, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:econtract:problem:not-a-pdf"
    assert response.json()["title"] == "The file is not a PDF."


@pytest.mark.parametrize(("path", "scopes"), [("/v1/verify", None), ("/v1/documents/seal", "seal")])
def test_a_chunked_upload_over_the_limit_is_413(
    initialised: Services, path: str, scopes: str | None
) -> None:
    settings = initialised.settings.model_copy(update={"max_upload_bytes": 10_000})
    boundary = "eContract-boundary"
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    with serve(settings) as base:
        if scopes is not None:
            with TestClient(create_app(settings)) as client:
                headers["Authorization"] = f"Bearer {token_for(client, initialised, scopes=scopes)}"

        def chunks() -> Iterator[bytes]:
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                'filename="big.pdf"\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.7\n'
            ).encode()
            for _ in range(30):
                yield bytes(8192)
            yield f"\r\n--{boundary}--\r\n".encode()

        response = httpx.post(f"{base}{path}", content=chunks(), headers=headers, timeout=30)
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413, response.text
    assert response.json()["type"] == "urn:econtract:problem:payload-too-large"


def test_docs_are_served_without_the_internet(api_client: TestClient) -> None:
    page = api_client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page.text)
    assets += re.findall(r"""url:\s*["']([^"']+)["']""", page.text)
    assert assets
    for url in assets:
        # Same origin: a path on this service, never another host (not even "//host/...").
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
        assert api_client.get(url).status_code == 200, url
    assert "swagger-ui-bundle.js" in page.text


def test_redoc_is_not_served(api_client: TestClient) -> None:
    # Its page would load its script from a CDN.
    assert api_client.get("/redoc").status_code == 404


def test_openapi_says_issuing_requires_an_idempotency_key(api_client: TestClient) -> None:
    issue = api_client.get("/openapi.json").json()["paths"]["/v1/certificates"]["post"]
    [key] = [p for p in issue["parameters"] if p["name"] == "Idempotency-Key"]
    assert key["in"] == "header"
    assert key["required"] is True
    assert "428" in issue["responses"]


def test_openapi_says_a_certificate_listing_carries_a_link_header(api_client: TestClient) -> None:
    listing = api_client.get("/openapi.json").json()["paths"]["/v1/certificates"]["get"]
    assert "Link" in listing["responses"]["200"]["headers"]
