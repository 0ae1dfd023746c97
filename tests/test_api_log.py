"""The transparency log as the service runs it: every use case appends, the QR page carries a
checked inclusion proof, the audit trail exports, and `econtract audit` catches an insider."""

from __future__ import annotations

import base64
import csv
import dataclasses
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.certificates import change_status
from econtract.clients import create_client
from econtract.issuance import TEMPLATES
from econtract.seals import list_seals
from econtract.services import Services
from econtract.translog import publish_sth
from econtract.translog._tables import LogLeaf
from econtract.verification import log_appendix, log_proofs
from tests.factories import OPERATOR
from tests.licences import issue_example, qr_token
from tests.live import serve

ECONTRACT = str(Path(sys.executable).with_name("econtract"))


def publish(services: Services) -> None:
    with db.transaction(services.sessions) as session:
        publish_sth(session, services.pki.log_key, force=True)


def entries(client: TestClient) -> list[dict[str, Any]]:
    size = client.get("/log/sth").json()["tree_size"]
    body = client.get("/log/entries", params={"start": 0, "end": size}).json()
    return [json.loads(base64.b64decode(e["entry"])) for e in body["entries"]]


@pytest.fixture
def suspended(initialised: Services) -> Any:
    """A licence issued then suspended, both changes under a published tree head."""
    certificate = issue_example(initialised)
    change_status(
        initialised, certificate_id=certificate.id, action="suspend", reason="核查", actor=OPERATOR
    )
    publish(initialised)
    return certificate


def seals_made_by_init(services: Services) -> int:
    """The seals ``init`` created (the demo department's and the platform's), each logged."""
    with services.sessions() as session:
        return len(list_seals(session))


@pytest.mark.usefixtures("suspended")
def test_every_change_is_logged(api_client: TestClient, initialised: Services) -> None:
    kinds = [e["kind"] for e in entries(api_client)]
    seals = seals_made_by_init(initialised)
    assert seals == 3
    assert kinds == ["seal.create"] * seals + ["certificate.issue", "certificate.status"]


def issue_entry(client: TestClient) -> dict[str, Any]:
    """The log's one ``certificate.issue`` entry."""
    [issued] = [e for e in entries(client) if e["kind"] == "certificate.issue"]
    return issued


def test_an_issue_entry_names_the_certificate_and_its_file(
    api_client: TestClient, suspended: Any
) -> None:
    issued = issue_entry(api_client)
    assert issued["certificate_id"] == suspended.id
    assert issued["certificate_number"] == suspended.number
    assert issued["pdf_sha256"] == suspended.pdf_sha256


@pytest.mark.usefixtures("suspended")
def test_the_public_log_carries_no_licence_fields(api_client: TestClient) -> None:
    assert "holder" not in json.dumps(issue_entry(api_client))


def test_qr_json_carries_a_checked_inclusion_proof(
    api_client: TestClient, initialised: Services
) -> None:
    certificate = issue_example(initialised)
    publish(initialised)
    token = qr_token(initialised, certificate)
    body = api_client.get(f"/v/{token}", headers={"Accept": "application/json"}).json()
    log = body["transparency"]
    seals = seals_made_by_init(initialised)
    assert log["sth"]["tree_size"] >= seals + 1
    [entry] = log["entries"]
    assert entry["leaf_index"] == seals
    assert entry["audit_path"]
    assert log["checked"] is True


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/log/proof/inclusion", {"leaf_index": 99, "tree_size": 2}),
        ("/log/proof/inclusion", {"leaf_index": -1, "tree_size": 2}),
        ("/log/proof/consistency", {"first": 2, "second": 1}),
        ("/log/proof/consistency", {"first": 1, "second": 10**30}),
        ("/log/proof/consistency", {"first": 1, "second": 7}),  # a size never published
        ("/log/entries", {"start": "x", "end": 1}),
    ],
    ids=[
        "leaf-past-the-tree",
        "negative-leaf",
        "first-after-second",
        "huge-second",
        "unpublished-size",
        "start-not-a-number",
    ],
)
def test_log_requests_out_of_range_are_400(
    api_client: TestClient, initialised: Services, path: str, params: dict[str, object]
) -> None:
    publish(initialised)
    response = api_client.get(path, params=params)
    assert response.status_code in (400, 404), (path, params, response.text)
    assert response.headers["content-type"] == "application/problem+json"


@dataclasses.dataclass(frozen=True)
class Auditor:
    """A client with the issue and audit scopes, its bearer headers and the licence it issued."""

    client_id: str
    secret: str
    headers: dict[str, str]
    certificate_id: str


@pytest.fixture
def auditor(api_client: TestClient, initialised: Services) -> Auditor:
    with db.transaction(initialised.sessions) as session:
        client, secret = create_client(
            session,
            department_code=DEMO_DEPARTMENT_CODE,
            name="审计",
            scopes="issue,audit",
            actor=OPERATOR,
        )
    token = api_client.post(
        "/v1/token", data={"grant_type": "client_credentials"}, auth=(client.id, secret)
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    made = api_client.post(
        "/v1/certificates",
        headers=headers | {"Idempotency-Key": "audit-1"},
        json={
            "type": "business_licence",
            "fields": dict(TEMPLATES["business_licence"].schema["examples"][0]),
        },
    ).json()
    return Auditor(client.id, secret, headers, made["id"])


def test_the_audit_trail_of_a_certificate_names_the_client_and_the_request(
    api_client: TestClient, auditor: Auditor
) -> None:
    events = api_client.get(
        "/v1/audit/events", headers=auditor.headers, params={"certificate": auditor.certificate_id}
    ).json()
    assert [e["action"] for e in events] == ["certificate.issue"]
    assert events[0]["actor"] == f"client:{auditor.client_id}"
    assert events[0]["request_id"]


def test_the_audit_trail_exports_as_json_lines(api_client: TestClient, auditor: Auditor) -> None:
    lines = api_client.get(
        "/v1/audit/events", headers=auditor.headers, params={"format": "jsonl"}
    ).text
    assert all(json.loads(line)["id"] for line in lines.splitlines())


def test_the_audit_trail_exports_as_csv(api_client: TestClient, auditor: Auditor) -> None:
    text = api_client.get(
        "/v1/audit/events", headers=auditor.headers, params={"format": "csv"}
    ).text
    table = list(csv.DictReader(io.StringIO(text)))
    assert "certificate.issue" in {row["action"] for row in table}


def test_the_audit_trail_needs_the_audit_scope(api_client: TestClient, auditor: Auditor) -> None:
    reader = api_client.post(
        "/v1/token",
        data={"grant_type": "client_credentials", "scope": "issue"},
        auth=(auditor.client_id, auditor.secret),
    )
    narrow = {"Authorization": f"Bearer {reader.json()['access_token']}"}
    assert api_client.get("/v1/audit/events", headers=narrow).status_code == 403


def test_audit_cli_names_a_rewritten_entry(initialised: Services, tmp_path: Path) -> None:
    issue_example(initialised)
    publish(initialised)
    store = tmp_path / "store"
    with serve(initialised.settings.model_copy(update={"log_sth_seconds": 3600.0})) as base:
        fetched = subprocess.run(
            [ECONTRACT, "audit", "fetch", "--url", base, "--store", str(store)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert fetched.returncode == 0, fetched.stdout + fetched.stderr
        clean = subprocess.run(
            [ECONTRACT, "audit", "check", "--url", base, "--store", str(store)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert clean.returncode == 0, clean.stdout
        with db.transaction(initialised.sessions) as session:
            forged = httpx.get(f"{base}/log/entries", params={"start": 2, "end": 3}).json()
            entry = json.loads(base64.b64decode(forged["entries"][0]["entry"]))
            entry["certificate_number"] = "YYZZ3301002026999999"
            session.execute(
                update(LogLeaf)
                .where(LogLeaf.leaf_index == 2)
                .values(entry=json.dumps(entry, separators=(",", ":"), sort_keys=True).encode())
            )
        caught = subprocess.run(
            [ECONTRACT, "audit", "check", "--url", base, "--store", str(store)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert caught.returncode == 1, caught.stdout
    assert "2" in caught.stdout
    assert "rewritten" in caught.stdout.lower()


def test_a_refused_change_is_in_the_audit_trail(
    api_client: TestClient, initialised: Services
) -> None:
    with db.transaction(initialised.sessions) as session:
        client, secret = create_client(
            session,
            department_code=DEMO_DEPARTMENT_CODE,
            name="审计",
            scopes="issue,revoke,audit",
            actor=OPERATOR,
        )
    token = api_client.post(
        "/v1/token", data={"grant_type": "client_credentials"}, auth=(client.id, secret)
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "X-Request-ID": "req-409"}
    made = api_client.post(
        "/v1/certificates",
        headers=headers | {"Idempotency-Key": "audit-2"},
        json={
            "type": "business_licence",
            "fields": dict(TEMPLATES["business_licence"].schema["examples"][0]),
        },
    ).json()
    path = f"/v1/certificates/{made['id']}/reinstate"
    assert api_client.post(path, headers=headers, json={"reason": "x"}).status_code == 409
    events = api_client.get(
        "/v1/audit/events", headers=headers, params={"certificate": made["id"]}
    ).json()
    refused = [e for e in events if e["outcome"] == "refused:409"]
    assert len(refused) == 1
    assert refused[0]["action"] == "POST /v1/certificates/{certificate_id}/reinstate"
    assert refused[0]["request_id"] == "req-409"
    assert refused[0]["actor"] == f"client:{client.id}"


@pytest.fixture
def appendix_rows(initialised: Services) -> dict[str, str]:
    """The printable log section of a licence issued, published, then suspended."""
    certificate = issue_example(initialised)
    with db.transaction(initialised.sessions) as session:
        publish_sth(session, initialised.pki.log_key, force=True)
    change_status(
        initialised, certificate_id=certificate.id, action="suspend", reason="核查", actor=OPERATOR
    )
    return dict(log_appendix(log_proofs(initialised, certificate.id)).rows)


def test_the_printable_log_section_names_the_proven_entry(
    appendix_rows: dict[str, str],
) -> None:
    proven = [label for label in appendix_rows if label.startswith("条目 Entry")]
    assert len(proven) == 1
    assert appendix_rows[proven[0]].startswith("certificate.issue at ")


def test_the_printable_log_section_names_the_pending_entry(
    appendix_rows: dict[str, str],
) -> None:
    pending = [label for label in appendix_rows if label.startswith("待纳入 Pending entry")]
    assert len(pending) == 1
    assert appendix_rows[pending[0]].startswith("certificate.status at ")
    assert "status suspended" in appendix_rows[pending[0]]
    assert appendix_rows[pending[0]].endswith("the next tree head covers it")


def test_the_printable_log_section_checks_the_tree_heads_signature(
    appendix_rows: dict[str, str],
) -> None:
    assert "signature checked" in appendix_rows["树头 Signed tree head"]
