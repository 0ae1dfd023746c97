"""Batches on a queue: submitted at once, every row issued exactly once, whatever fails.

The API tests run the embedded runner (the service's own threads); the worker-kill test runs
real ``econtract worker`` processes on the machine's Redis and kills one with SIGKILL while
it issues.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from econtract import db
from econtract.batches import ParsedRow, batch_progress, cancel_batch, process_row, submit_batch
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.clients import create_client
from econtract.config import Settings
from econtract.csvsafe import csv_text
from econtract.departments import add_department, get_department
from econtract.issuance import IdempotencyKey, IssueRequest, issue_certificate, request_hash
from econtract.models import BatchRow, Certificate, IdempotencyRecord
from econtract.services import Services
from tests.factories import OPERATOR, token_for
from tests.licences import holder_fields

ECONTRACT = str(Path(sys.executable).with_name("econtract"))
OTHER_CODE = "9133100015J1YG617W"
REDIS_URL = "redis://127.0.0.1:6379/3"


def csv_body(rows: list[dict[str, Any]]) -> bytes:
    header = list(holder_fields())
    return csv_text(header, ([r.get(c, "") for c in header] for r in rows)).encode()


def post_batch(
    client: TestClient, token: str, body: bytes, key: str, media: str = "text/csv"
) -> Any:
    return client.post(
        "/v1/batches?type=business_licence",
        content=body,
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key, "Content-Type": media},
    )


def wait_done(client: TestClient, token: str, batch_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        batch = client.get(f"/v1/batches/{batch_id}", headers={"Authorization": f"Bearer {token}"})
        assert batch.status_code == 200, batch.text
        if batch.json()["done"]:
            return dict(batch.json())
        assert time.monotonic() < deadline, batch.json()
        time.sleep(0.2)


def certificates(services: Services) -> int:
    with services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Certificate)) or 0)


def test_a_batch_is_answered_at_once_and_each_row_issued_or_failed_by_pointer(
    api_client: TestClient, initialised: Services
) -> None:
    token = token_for(api_client, initialised, scopes="issue")
    bad = holder_fields() | {"credit_code": "not a code"}
    rows = [holder_fields(), bad, holder_fields()]
    response = post_batch(api_client, token, csv_body(rows), "batch-1")
    assert response.status_code == 202, response.text
    batch_id = response.json()["id"]
    assert response.headers["location"] == f"/v1/batches/{batch_id}"
    done = wait_done(api_client, token, batch_id)
    assert done["counts"] == {"queued": 0, "issued": 2, "failed": 1, "cancelled": 0}
    assert done["rows_per_second"] > 0
    results = api_client.get(
        f"/v1/batches/{batch_id}/results", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert [r["row"] for r in results] == [2, 3, 4]  # row 1 is the header
    assert [r["state"] for r in results] == ["issued", "failed", "issued"]
    assert results[1]["errors"][0]["pointer"] == "/credit_code"
    assert all(r["number"] for r in results if r["state"] == "issued")
    assert certificates(initialised) == 2


def test_the_same_key_gives_the_same_batch_and_another_body_is_refused(
    api_client: TestClient, initialised: Services
) -> None:
    token = token_for(api_client, initialised, scopes="issue")
    body = csv_body([holder_fields()])
    first = post_batch(api_client, token, body, "batch-2")
    again = post_batch(api_client, token, body, "batch-2")
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    other = post_batch(api_client, token, csv_body([holder_fields()]), "batch-2")
    assert other.status_code == 422
    wait_done(api_client, token, first.json()["id"])
    assert certificates(initialised) == 1


def test_a_batch_without_an_idempotency_key_is_refused(
    api_client: TestClient, initialised: Services
) -> None:
    token = token_for(api_client, initialised, scopes="issue")
    response = api_client.post(
        "/v1/batches?type=business_licence",
        content=csv_body([holder_fields()]),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
    )
    assert response.status_code == 428
    assert response.json()["type"].endswith("idempotency-key-required")


def test_json_lines_in_a_multipart_upload_and_lines_that_are_no_object_fail(
    api_client: TestClient, initialised: Services
) -> None:
    token = token_for(api_client, initialised, scopes="issue")
    lines = [json.dumps(holder_fields(), ensure_ascii=False), "[1, 2]", "{not json"]
    response = api_client.post(
        "/v1/batches",
        files={"file": ("rows.jsonl", "\n".join(lines).encode(), "application/octet-stream")},
        data={"type": "business_licence"},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "batch-3"},
    )
    assert response.status_code == 202, response.text
    done = wait_done(api_client, token, response.json()["id"])
    assert done["counts"]["issued"] == 1
    assert done["counts"]["failed"] == 2


def test_another_department_does_not_see_the_batch(
    api_client: TestClient, initialised: Services
) -> None:
    token = token_for(api_client, initialised, scopes="issue")
    batch_id = post_batch(api_client, token, csv_body([holder_fields()]), "batch-4").json()["id"]
    with db.transaction(initialised.sessions) as session:
        add_department(session, code=OTHER_CODE, name="台州市建设局", region=None, actor=OPERATOR)
    other = token_for(api_client, initialised, OTHER_CODE, "issue,read")
    for path in (f"/v1/batches/{batch_id}", f"/v1/batches/{batch_id}/results"):
        response = api_client.get(path, headers={"Authorization": f"Bearer {other}"})
        assert response.status_code == 404
    cancel = api_client.post(
        f"/v1/batches/{batch_id}/cancel", headers={"Authorization": f"Bearer {other}"}
    )
    assert cancel.status_code == 404
    wait_done(api_client, token, batch_id)


def test_results_as_csv_never_start_a_cell_with_a_formula(
    api_client: TestClient, initialised: Services
) -> None:
    token = token_for(api_client, initialised, scopes="issue")
    formula = holder_fields() | {"name": "", "credit_code": "=HYPERLINK(1)"}
    batch_id = post_batch(api_client, token, csv_body([formula]), "batch-5").json()["id"]
    wait_done(api_client, token, batch_id)
    response = api_client.get(
        f"/v1/batches/{batch_id}/results?format=csv",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0] == '"row","state","certificate_id","number","errors"'
    assert lines[1].startswith('"2","failed","","","')
    cells = next(csv.reader(io.StringIO(lines[1])))
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)


# --- the registry side: cancel, and a row delivered twice ---------------------------------------


def submit(services: Services, rows: int) -> str:
    return submit_batch(
        services,
        department_code=DEMO_DEPARTMENT_CODE,
        client_id="test-client",
        idempotency_key=str(uuid.uuid4()),
        type_code="business_licence",
        rows=[ParsedRow(row=n, fields=holder_fields()) for n in range(1, rows + 1)],
        body_digest=uuid.uuid4().hex,
    ).batch_id


def department_id(services: Services) -> int:
    with services.sessions() as session:
        return get_department(session, DEMO_DEPARTMENT_CODE).id


def test_cancel_stops_the_rows_not_yet_issued(initialised: Services) -> None:
    batch_id = submit(initialised, 3)
    assert process_row(initialised, batch_id=batch_id, row=1) == "issued"
    assert (
        cancel_batch(initialised, batch_id=batch_id, department_id=department_id(initialised)) == 2
    )
    assert process_row(initialised, batch_id=batch_id, row=2) == "cancelled"
    progress = batch_progress(
        initialised, batch_id=batch_id, department_id=department_id(initialised)
    )
    assert progress.counts == {"queued": 0, "issued": 1, "failed": 0, "cancelled": 2}
    assert certificates(initialised) == 1


def test_a_row_issued_before_a_crash_is_marked_with_that_certificate_on_redelivery(
    initialised: Services,
) -> None:
    """The worker died after the issuance committed and before the row was marked."""
    batch_id = submit(initialised, 1)
    with initialised.sessions() as session:
        fields = session.get(BatchRow, (batch_id, 1)).fields  # type: ignore[union-attr]
    first = issue_certificate(
        initialised,
        department_code=DEMO_DEPARTMENT_CODE,
        request=IssueRequest(type_code="business_licence", fields=fields),
        actor=OPERATOR,
        idempotency=IdempotencyKey(
            f"batch:{batch_id}", "1", request_hash({"type": "business_licence", "fields": fields})
        ),
    ).certificate
    assert process_row(initialised, batch_id=batch_id, row=1) == "issued"
    assert process_row(initialised, batch_id=batch_id, row=1) == "issued"
    with initialised.sessions() as session:
        row = session.get(BatchRow, (batch_id, 1))
        assert row is not None
        assert row.certificate_id == first.id
    assert certificates(initialised) == 1


# --- kill -9 of a worker on the real broker ------------------------------------------------------


@contextmanager
def workers(
    settings: Settings, count: int, queue: str, **extra: str
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` ``econtract worker`` processes on ``queue``; ``extra`` adds to their
    environment (``ECONTRACT_BATCH_RESEND_SECONDS="2"``)."""
    env = {
        **os.environ,
        "ECONTRACT_DATA_DIR": str(settings.data_dir),
        "ECONTRACT_DATABASE_URL": settings.effective_database_url,
        "ECONTRACT_KEY_PASSPHRASE": "test-passphrase-0123",
        "ECONTRACT_BROKER_URL": REDIS_URL,
        "ECONTRACT_BATCH_QUEUE": queue,
        "ECONTRACT_BATCH_THREADS": "1",
        # A dead worker's rows go to the others after 2 s without its heartbeat.
        "ECONTRACT_BROKER_HEARTBEAT_SECONDS": "2",
        **extra,
    }
    processes = [
        subprocess.Popen(
            [ECONTRACT, "worker"],
            env=env,
            cwd=settings.data_dir.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(count)
    ]
    try:
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)


def row_states(services: Services, batch_id: str) -> dict[str, int]:
    with services.sessions() as session:
        return dict(
            session.execute(
                select(BatchRow.state, func.count())
                .where(BatchRow.batch_id == batch_id)
                .group_by(BatchRow.state)
            ).all()
        )


@pytest.mark.slow
def test_kill_9_of_a_worker_mid_batch_still_issues_every_row_once(initialised: Services) -> None:
    from api import create_app  # noqa: PLC0415 - the app only for this test's submission

    queue = f"econtract-test-{uuid.uuid4().hex[:12]}"
    settings = initialised.settings.model_copy(
        update={"broker_url": REDIS_URL, "batch_queue": queue}
    )
    rows = 24
    with TestClient(create_app(settings)) as client, workers(settings, 2, queue) as procs:
        token = token_for(client, initialised, scopes="issue")
        body = csv_body([holder_fields() for _ in range(rows)])
        response = post_batch(client, token, body, "kill-9")
        assert response.status_code == 202, response.text
        batch_id = response.json()["id"]
        deadline = time.monotonic() + 120
        while row_states(initialised, batch_id).get("issued", 0) < 4:
            assert time.monotonic() < deadline, "no row was issued"
            time.sleep(0.1)
        # Killed while it holds rows: one being issued, more fetched ahead.
        os.killpg(procs[0].pid, signal.SIGKILL)
        procs[0].wait(timeout=30)
        assert row_states(initialised, batch_id).get("queued", 0) > 0, "killed too late"
        done = wait_done(client, token, batch_id)
    assert done["counts"] == {"queued": 0, "issued": rows, "failed": 0, "cancelled": 0}
    one_certificate_per_row(initialised, batch_id, rows)


def one_certificate_per_row(services: Services, batch_id: str, rows: int) -> None:
    """Every row names a certificate of its own, and there is no certificate the rows do
    not name, nor an idempotency record beyond one per row."""
    with services.sessions() as session:
        issued = session.scalars(
            select(BatchRow.certificate_id).where(BatchRow.batch_id == batch_id)
        ).all()
        keys = session.scalar(
            select(func.count())
            .select_from(IdempotencyRecord)
            .where(IdempotencyRecord.client_id == f"batch:{batch_id}")
        )
    assert None not in issued
    assert len(set(issued)) == rows
    assert certificates(services) == rows
    assert keys == rows


# --- econtract batch issue --server ---------------------------------------------------------------


def test_batch_issue_on_a_server_follows_the_batch_and_writes_results(
    initialised: Services, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from econtract.cli import run  # noqa: PLC0415
    from tests.live import serve  # noqa: PLC0415

    with db.transaction(initialised.sessions) as session:
        client, secret = create_client(
            session,
            department_code=DEMO_DEPARTMENT_CODE,
            name="cli",
            scopes="issue",
            actor=OPERATOR,
        )
    bad = holder_fields() | {"credit_code": "=1+1"}
    csv_file = tmp_path / "rows.csv"
    csv_file.write_bytes(csv_body([holder_fields(), bad]))
    out = tmp_path / "out"
    args = ["batch", "issue", "--type", "business_licence", "--csv", str(csv_file)]
    args += ["--out-dir", str(out), "--client-id", client.id, "--client-secret", secret, "--json"]
    with serve(initialised.settings) as base:
        assert run([*args, "--server", base]) == 1  # one row failed
        summary = json.loads(capsys.readouterr().out)
        # Run again over the same file: the same batch is followed, nothing issued twice.
        assert run([*args, "--server", base]) == 1
        assert json.loads(capsys.readouterr().out)["batch"] == summary["batch"]
    assert summary["issued"] == 1
    assert summary["failed"] == 1
    lines = (out / "results.csv").read_text().splitlines()
    assert lines[1].startswith('"2","issued","')
    assert lines[2].startswith('"3","failed","","","","/credit_code')
    assert certificates(initialised) == 1
