"""Backup and restore (容灾备份) on the real registry (SQLite, or PostgreSQL when the tests run
there): a snapshot taken while certificates are issued, restored into an empty data directory
and database, answers as the service did; a snapshot that does not match its manifest, and a
target that is not empty, are refused, naming what is at fault. The commands run as an
operator types them.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from api import create_app
from econtract import db
from econtract.auditor import fetch
from econtract.backup import MANIFEST, SnapshotRejectedError, restore
from econtract.cli import run
from econtract.config import Settings, get_settings
from econtract.models import Certificate
from econtract.services import Services
from econtract.translog import publish_sth
from econtract.verification import verify_upload
from tests.conftest import PG_URL
from tests.licences import issue_example, qr_token
from tests.live import serve


def publish_head(services: Services) -> None:
    with db.transaction(services.sessions) as session:
        publish_sth(session, services.pki.log_key, force=True)


def certificates(services: Services) -> list[Certificate]:
    with services.sessions() as session:
        return list(session.scalars(select(Certificate).order_by(Certificate.id)))


def verdicts(services: Services) -> dict[str, str]:
    """Each certificate's verdict on its stored PDF, as an upload is verified."""
    out = {}
    for certificate in certificates(services):
        with services.blobs.open(certificate.blob_key) as f:
            out[certificate.id] = verify_upload(services, f.read()).verdict.value
    return out


def qr_answers(services: Services) -> dict[str, Any]:
    """What each certificate's QR page answers (as JSON)."""
    tokens = {c.id: qr_token(services, c) for c in certificates(services)}
    with TestClient(create_app(services.settings)) as client:
        return {
            cid: client.get(f"/v/{token}", headers={"Accept": "application/json"}).json()
            for cid, token in tokens.items()
        }


def run_cli(monkeypatch: pytest.MonkeyPatch, settings: Settings, *args: str) -> int:
    """``econtract ARGS`` with the environment pointing at ``settings``' service."""
    monkeypatch.setenv("ECONTRACT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ECONTRACT_DATABASE_URL", settings.effective_database_url)
    monkeypatch.setenv("ECONTRACT_KEY_PASSPHRASE", "test-passphrase-0123")
    get_settings.cache_clear()
    try:
        return run(list(args))
    finally:
        get_settings.cache_clear()


@pytest.fixture
def target(tmp_path: Path, settings: Settings) -> Iterator[Settings]:
    """Settings of an empty data directory and database to restore into: a SQLite file in
    it, or on PostgreSQL a new database whose search_path is the source's schema."""
    data_dir = tmp_path / "restored"
    if not PG_URL:
        yield settings.model_copy(
            update={"data_dir": data_dir, "database_url": f"sqlite:///{data_dir}/registry.db"}
        )
        return
    name = f"r_{secrets.token_hex(6)}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    source = make_url(settings.effective_database_url)
    url = source.set(database=name).render_as_string(hide_password=False)
    try:
        yield settings.model_copy(update={"data_dir": data_dir, "database_url": url})
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def snapshot(
    initialised: Services,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Path:
    """A snapshot of a service with two certificates (taken while nothing is issued)."""
    issue_example(initialised)
    issue_example(initialised)
    publish_head(initialised)
    directory = tmp_path / "snapshot"
    assert run_cli(monkeypatch, initialised.settings, "backup", "--to", str(directory)) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert out.startswith(f"backup written to {directory}: ")
    assert "2 certificates" in out
    return directory


@dataclass
class Before:
    """What the service answered before the backup, and what was issued during it."""

    verdicts: dict[str, str]
    qr: dict[str, Any]
    audit_store: Path
    issued_during: int
    snapshot: Path


@pytest.fixture
def backed_up_under_load(
    initialised: Services, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Before:
    """Three certificates, an auditor's kept head, then a backup while a thread issues."""
    services = initialised
    for _ in range(3):
        issue_example(services)
    publish_head(services)
    audit_store = tmp_path / "audit"
    with serve(services.settings.model_copy(update={"log_sth_seconds": 3600.0})) as url:
        assert fetch(url, audit_store).ok
    before_verdicts, before_qr = verdicts(services), qr_answers(services)

    stop, issued, first = threading.Event(), [], threading.Event()

    def issue() -> None:
        while not stop.is_set():
            issued.append(issue_example(services).id)
            # Heads move on while the backup runs, as the service's publisher makes them.
            publish_head(services)
            first.set()

    worker = threading.Thread(target=issue, daemon=True)
    worker.start()
    assert first.wait(60)
    directory = tmp_path / "snapshot"
    try:
        assert run_cli(monkeypatch, services.settings, "backup", "--to", str(directory)) == 0
    finally:
        stop.set()
        worker.join(60)
    return Before(before_verdicts, before_qr, audit_store, len(issued), directory)


def restored(target: Settings, snapshot: Path) -> Services:
    restore(target, snapshot)
    return Services(settings=target)


# --- a snapshot under load, restored -----------------------------------------------------------


def test_every_certificate_verifies_with_the_same_verdict_after_a_restore(
    backed_up_under_load: Before, target: Settings
) -> None:
    services = restored(target, backed_up_under_load.snapshot)
    try:
        after = verdicts(services)
    finally:
        services.dispose()
    assert set(after) >= set(backed_up_under_load.verdicts)
    assert {cid: after[cid] for cid in backed_up_under_load.verdicts} == (
        backed_up_under_load.verdicts
    )
    assert set(after.values()) == {"VALID"}


def test_the_qr_pages_answer_the_same_after_a_restore(
    backed_up_under_load: Before, target: Settings
) -> None:
    services = restored(target, backed_up_under_load.snapshot)
    try:
        after = qr_answers(services)
    finally:
        services.dispose()
    for cid, answer in backed_up_under_load.qr.items():
        # The proof of the certificate's log entry is given against the latest head, which
        # the certificates issued during the backup moved on; the rest is the same.
        proof_before, proof_after = answer.pop("transparency"), after[cid].pop("transparency")
        assert after[cid] == answer
        assert answer["verdict"] == "VALID"
        assert proof_after["checked"]
        assert proof_after["subject"] == proof_before["subject"]
        assert proof_after["sth"]["tree_size"] >= proof_before["sth"]["tree_size"]


def test_heads_an_auditor_kept_before_the_backup_verify_against_the_restored_log(
    backed_up_under_load: Before, target: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    restored(target, backed_up_under_load.snapshot).dispose()
    store = str(backed_up_under_load.audit_store)
    with serve(target) as url:
        code = run(["audit", "check", "--url", url, "--store", store])
    assert code == 0
    assert capsys.readouterr().out.startswith("OK: ")


def test_the_snapshot_holds_every_blob_its_registry_references_and_the_head_of_its_time(
    backed_up_under_load: Before, initialised: Services, target: Settings
) -> None:
    manifest = json.loads((backed_up_under_load.snapshot / MANIFEST).read_text())
    listed = {f["path"] for f in manifest["files"]}
    report = restore(target, backed_up_under_load.snapshot)
    assert {f"blobs/{key}" for key, _sha in report.facts.blobs} <= listed
    # Certificates issued while the backup ran: the snapshot holds those registered before
    # its instant (at least the three issued before), never a row without its blob.
    assert backed_up_under_load.issued_during >= 1
    assert 3 <= report.facts.certificates <= 3 + backed_up_under_load.issued_during
    assert manifest["counts"]["certificates"] == report.facts.certificates
    assert manifest["tree_head"] == report.facts.tree_head
    assert any(path.startswith("keys/") for path in listed)


def test_the_holder_name_index_is_remade_with_the_targets_pg_trgm(
    snapshot: Path, target: Settings
) -> None:
    # The source's index names the operator class with the schema its pg_trgm lives in; a
    # target database whose pg_trgm lives elsewhere gets the index on its own.
    if not PG_URL:
        pytest.skip("the trigram index is PostgreSQL's")
    engine = create_engine(target.effective_database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE SCHEMA trgm"))
            conn.execute(text("CREATE EXTENSION pg_trgm SCHEMA trgm"))
        restore(target, snapshot)
        with engine.connect() as conn:
            definition = conn.scalar(
                text(
                    "SELECT indexdef FROM pg_indexes "
                    "WHERE indexname = 'ix_certificates_holder_name_trgm'"
                )
            )
            conn.execute(text("SET LOCAL enable_seqscan = off"))
            plan_rows = conn.execute(
                text("EXPLAIN SELECT id FROM certificates WHERE holder_name LIKE '%远航%'")
            )
            plan = "\n".join(str(row[0]) for row in plan_rows)
    finally:
        engine.dispose()
    assert definition is not None
    assert "trgm.gin_trgm_ops" in definition
    assert "ix_certificates_holder_name_trgm" in plan


# --- the manifest is checked first ------------------------------------------------------------


def refused(capsys: pytest.CaptureFixture[str], code: int) -> str:
    assert code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    return err


def test_a_changed_blob_is_refused_naming_it(
    snapshot: Path,
    target: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    blob = next((snapshot / "blobs").rglob("*.pdf"))
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    name = blob.relative_to(snapshot).as_posix()
    err = refused(capsys, run_cli(monkeypatch, target, "restore", "--from", str(snapshot)))
    assert f"file {name} changed since the backup" in err
    assert not target.data_dir.exists()


def test_an_edited_manifest_is_refused(
    snapshot: Path, target: Settings, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    manifest = json.loads((snapshot / MANIFEST).read_text())
    manifest["counts"]["certificates"] += 1
    (snapshot / MANIFEST).write_text(json.dumps(manifest))
    err = refused(capsys, run_cli(monkeypatch, target, "restore", "--from", str(snapshot)))
    assert "manifest.json was edited after the backup" in err


def test_a_missing_file_is_refused_naming_it(snapshot: Path, target: Settings) -> None:
    key = next((snapshot / "keys").iterdir())
    key.unlink()
    with pytest.raises(SnapshotRejectedError, match="is missing") as caught:
        restore(target, snapshot)
    assert caught.value.path == f"keys/{key.name}"


def test_a_file_the_manifest_does_not_list_is_refused(snapshot: Path, target: Settings) -> None:
    (snapshot / "blobs" / "extra.pdf").write_bytes(b"%PDF-1.7")
    with pytest.raises(SnapshotRejectedError, match="does not list") as caught:
        restore(target, snapshot)
    assert caught.value.path == "blobs/extra.pdf"


def test_a_snapshot_without_a_manifest_is_refused(snapshot: Path, target: Settings) -> None:
    (snapshot / MANIFEST).unlink()
    with pytest.raises(SnapshotRejectedError, match="not a complete snapshot"):
        restore(target, snapshot)


# --- the target must be empty -------------------------------------------------------------------


def test_restore_into_a_data_directory_with_files_is_refused(
    snapshot: Path, target: Settings, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    target.data_dir.mkdir(parents=True)
    (target.data_dir / "left-over").write_text("x")
    err = refused(capsys, run_cli(monkeypatch, target, "restore", "--from", str(snapshot)))
    assert "is not empty" in err


def test_restore_into_a_registry_that_holds_certificates_is_refused(
    snapshot: Path,
    initialised: Services,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
) -> None:
    # The live registry itself, with an empty data directory beside it.
    into = initialised.settings.model_copy(update={"data_dir": tmp_path / "empty"})
    err = refused(capsys, run_cli(monkeypatch, into, "restore", "--from", str(snapshot)))
    assert ("exists" in err) if not PG_URL else ("holds" in err and "tables" in err)
    assert len(certificates(initialised)) == 2


def test_backup_into_a_directory_that_is_not_empty_is_refused(
    initialised: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    directory = tmp_path / "busy"
    directory.mkdir()
    (directory / "old").write_text("x")
    code = run_cli(monkeypatch, initialised.settings, "backup", "--to", str(directory))
    err = refused(capsys, code)
    assert "not an empty directory" in err
    assert sorted(p.name for p in directory.iterdir()) == ["old"]
