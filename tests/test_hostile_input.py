"""Hostile input that once broke something: a bad timestamp query dropped the connection, a
formula in a path parameter reached a spreadsheet, ``%`` in a holder's name matched every
licence. Each is answered now, and the protocol endpoints are fuzzed over a real socket."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from asn1crypto import core, tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from econtract.batch import load_batch, run_batch
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.csvsafe import csv_text, spreadsheet_cell
from econtract.issuance import IssueRequest, issue_certificate
from econtract.services import Services
from tests.factories import OPERATOR, token_for
from tests.licences import holder_fields
from tests.live import serve

TSQ = {"Content-Type": "application/timestamp-query"}
OCSP = {"Content-Type": "application/ocsp-request"}
#: The query that once made the server drop the connection (a SEQUENCE of one INTEGER).
BROKEN_TSQ = bytes.fromhex("3003020101")
FUZZ = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def live(initialised: Services) -> Iterator[httpx.Client]:
    """A real server on loopback: a dropped connection shows only over a socket."""
    with serve(initialised.settings) as base, httpx.Client(base_url=base, timeout=30) as client:
        yield client


def valid_tsq(algorithm: str = "sha256") -> bytes:
    """A TimeStampReq for a 32-byte digest: SHA-256 goes to the first authority, SM3 to the
    SM2 one."""
    query = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": algorithm},
                "hashed_message": bytes(range(32)),
            },
            "nonce": 12345,
            "cert_req": True,
        }
    )
    return bytes(query.dump())


def valid_ocsp_request(services: Services, *, sm2: bool = False) -> bytes:
    """An OCSP request about a certificate of the issuing CA, or (``sm2``) of the SM2 one."""
    pki = services.pki
    if sm2:
        assert pki.sm2_tsa_authority is not None
        cert, issuer = pki.sm2_tsa_authority.certificate, pki.sm2_tsa_authority.chain[0]
    else:
        cert, issuer = pki.ca_certificates["issuing"], pki.ca_certificates["root"]
    return (
        x509.ocsp.OCSPRequestBuilder()
        .add_certificate(cert, issuer, hashes.SHA1())
        .build()
        .public_bytes(Encoding.DER)
    )


@st.composite
def mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    """``valid`` with a few bytes changed, inserted, removed or cut off."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(("flip", "insert", "delete", "truncate")))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if action == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif action == "delete" and data:
            del data[at]
        else:
            del data[at:]
    return bytes(data)


def tsa_status(reply: bytes) -> tsp.PKIStatusInfo:
    """The status of a DER TimeStampResp (asn1crypto's class wants a token even when refused)."""
    outer = core.Sequence.load(reply, strict=True)
    return tsp.PKIStatusInfo.load(outer[0].dump())


def assert_tsa_answer(response: httpx.Response) -> None:
    """A granted or rejected TimeStampResp, or a problem: never a 5xx."""
    assert response.status_code < 500, response.text
    media = response.headers["content-type"]
    if response.status_code in (200, 400) and media == "application/timestamp-reply":
        status = tsa_status(response.content)["status"].native
        assert status == ("granted" if response.status_code == 200 else "rejection")
    else:
        assert media == "application/problem+json", media


def assert_ocsp_answer(response: httpx.Response) -> None:
    """An OCSPResponse, or a 400 problem: never a 5xx."""
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        assert response.headers["content-type"] == "application/ocsp-response"
        x509.ocsp.load_der_ocsp_response(response.content)
    else:
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"


def test_a_malformed_timestamp_query_is_a_rejection_not_a_dropped_connection(
    live: httpx.Client,
) -> None:
    response = live.post("/pki/tsa", content=BROKEN_TSQ, headers=TSQ)
    assert response.status_code == 400
    status = tsa_status(response.content)
    assert status["status"].native == "rejection"
    assert status["fail_info"].native == {"bad_data_format"}
    detail = response.headers["x-problem-detail"]
    assert "could not be decoded" in detail
    assert detail.isprintable()
    assert detail.isascii()


@pytest.mark.parametrize("algorithm", ["sha256", "sm3"])
def test_a_valid_timestamp_query_is_granted(live: httpx.Client, algorithm: str) -> None:
    response = live.post("/pki/tsa", content=valid_tsq(algorithm), headers=TSQ)
    assert response.status_code == 200
    assert "x-problem-detail" not in response.headers


def test_fuzzed_timestamp_queries_never_drop_the_connection_nor_fail(live: httpx.Client) -> None:
    @FUZZ
    @given(st.one_of(st.binary(max_size=200), mutated(valid_tsq()), mutated(valid_tsq("sm3"))))
    def query(body: bytes) -> None:
        assert_tsa_answer(live.post("/pki/tsa", content=body, headers=TSQ))

    query()


def test_fuzzed_ocsp_requests_never_drop_the_connection_nor_fail(
    live: httpx.Client, initialised: Services
) -> None:
    valid = valid_ocsp_request(initialised)
    valid_sm2 = valid_ocsp_request(initialised, sm2=True)
    for body in (valid, valid_sm2):
        assert_ocsp_answer(live.post("/pki/ocsp", content=body, headers=OCSP))

    @FUZZ
    @given(st.one_of(st.binary(max_size=200), mutated(valid), mutated(valid_sm2)))
    def query(body: bytes) -> None:
        assert_ocsp_answer(live.post("/pki/ocsp", content=body, headers=OCSP))

    query()


# --- CSV -----------------------------------------------------------------------------------

#: A path parameter cannot hold a slash (the router splits the path first), so the link has
#: none; the spreadsheet follows it all the same.
FORMULA = '=HYPERLINK("http:x.example","y")'


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_cell_a_spreadsheet_would_run_is_prefixed_with_a_quote(start: str) -> None:
    assert spreadsheet_cell(start + "1+1") == "'" + start + "1+1"


def test_plain_cells_are_kept_and_every_field_is_quoted() -> None:
    text = csv_text(("a", "b"), [["营业执照", None], [42, "x=1"]])
    assert text.splitlines() == ['"a","b"', '"营业执照",""', '"42","x=1"']


def test_a_formula_in_a_refused_calls_path_lands_neutralised_in_the_audit_csv(
    api_client: TestClient, initialised: Services
) -> None:
    token = token_for(api_client, initialised, scopes="issue,read,revoke,audit")
    auth = {"Authorization": f"Bearer {token}"}
    refused = api_client.post(
        f"/v1/certificates/{FORMULA}/revoke", json={"reason": "测试"}, headers=auth
    )
    assert refused.status_code in (404, 422), refused.text
    exported = api_client.get("/v1/audit/events", params={"format": "csv"}, headers=auth)
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    [refusal] = [r for r in rows if r["outcome"].startswith("refused")]
    assert refusal["target_id"] == "'" + FORMULA
    assert not [cell for r in rows for cell in r.values() if cell.startswith(("=", "+", "@"))]
    # Every field is quoted, so no cell can spill into the next.
    assert f'"\'{FORMULA.replace(chr(34), chr(34) * 2)}"' in exported.text


def test_batch_results_csv_neutralises_an_error_quoting_the_input(
    initialised: Services, tmp_path: Path
) -> None:
    fields = holder_fields()
    header = list(fields)
    bad = {**fields, "established": "=1+2"}
    lines = [",".join(header), ",".join(csv_quote(str(bad[k])) for k in header)]
    source = tmp_path / "batch.csv"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run_batch(
        initialised,
        type_code="business_licence",
        batch=load_batch(source),
        department=DEMO_DEPARTMENT_CODE,
        out_dir=tmp_path / "out",
    )
    text = (tmp_path / "out" / "results.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["status"] for r in rows] == ["failed"]
    assert rows[0]["error"]
    assert not [cell for cell in rows[0].values() if cell.startswith(("=", "+", "-", "@"))]
    assert text.startswith('"row","status"')


def csv_quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


# --- LIKE wildcards ------------------------------------------------------------------------


def issue_to(services: Services, name: str) -> str:
    fields = holder_fields() | {"name": name}
    return issue_certificate(
        services,
        department_code=DEMO_DEPARTMENT_CODE,
        request=IssueRequest(type_code="business_licence", fields=fields),
        actor=OPERATOR,
    ).certificate.id


@pytest.mark.parametrize(
    ("wanted", "other", "query"),
    # Three characters: a part that long is looked for anywhere in the name; read as a LIKE
    # pattern, each query would match the other name too.
    [("百分之百%商行", "杭州市西湖区商行", "%商行"), ("下划_线商行", "下划线商行", "_线商")],
)
def test_like_wildcards_in_a_holder_query_match_themselves(
    api_client: TestClient, initialised: Services, wanted: str, other: str, query: str
) -> None:
    wanted_id = issue_to(initialised, wanted)
    issue_to(initialised, other)
    token = token_for(api_client, initialised, scopes="read")
    found = api_client.get(
        "/v1/certificates",
        params={"holder": query},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert found.status_code == 200, found.text
    assert [c["id"] for c in found.json()] == [wanted_id]
