"""The auditor's tool against the real API on a real uvicorn server, with the registry
tampered with directly; the auditor sees only HTTP. The command line is run as a user types it.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from econtract import db
from econtract.auditor import (
    EXIT_FINDINGS,
    EXIT_UNREACHABLE,
    AuditResult,
    AuditUsageError,
    Finding,
    check,
    compare_leaves,
    fetch,
)
from econtract.cli import EXIT_USAGE, run
from econtract.services import Services
from econtract.translog import (
    LogEntry,
    LogEntryKind,
    append_entries,
    leaf_hash,
    log_key_pem,
    publish_sth,
)
from econtract.translog._store import append_encoded
from econtract.translog._tables import LogLeaf, LogNode, LogState, LogTreeHead
from tests.factories import initialise_with_an_empty_log
from tests.live import serve

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def status_entry(i: int) -> LogEntry:
    return LogEntry(
        kind=LogEntryKind.CERTIFICATE_STATUS,
        time=T0 + timedelta(seconds=i),
        department="91330100MA2XXXXX0X",
        certificate_id=f"crt_{i}",
        status="suspended",
    )


@pytest.fixture
def log_services(services: Services) -> Services:
    return initialise_with_an_empty_log(services)


@pytest.fixture
def url(log_services: Services) -> Iterator[str]:
    """The real API; the tests publish tree heads themselves, so the background publisher
    is slowed out of their way."""
    settings = log_services.settings.model_copy(update={"log_sth_seconds": 3600.0})
    with serve(settings) as base:
        yield base


def grow(services: Services, start: int, count: int) -> None:
    """Append entries ``start..start+count`` and publish a head for them."""
    with db.transaction(services.sessions) as session:
        append_entries(session, [status_entry(i) for i in range(start, start + count)])
        publish_sth(session, services.pki.log_key)


def stored_entries(session: Session) -> list[bytes]:
    return list(session.scalars(select(LogLeaf.entry).order_by(LogLeaf.leaf_index)))


def rebuild(services: Services, blobs: list[bytes]) -> None:
    """What an insider holding the log key could do: rebuild the log and sign it anew."""
    with db.transaction(services.sessions) as session:
        for model in (LogLeaf, LogNode, LogTreeHead):
            session.execute(delete(model))
        session.execute(update(LogState).values(tree_size=0))
        append_encoded(session, blobs)
        publish_sth(session, services.pki.log_key)


def kinds(result: AuditResult) -> dict[str, list[int | None]]:
    out: dict[str, list[int | None]] = {}
    for finding in result.findings:
        out.setdefault(finding.kind, []).append(finding.leaf_index)
    return out


@pytest.fixture
def watched(log_services: Services, url: str, tmp_path: Path) -> Path:
    """Ten entries under a head, fetched by the auditor."""
    grow(log_services, 0, 10)
    store = tmp_path / "audit"
    result = fetch(url, store)
    assert result.ok, result.summary()
    assert result.leaves_added == 10
    return store


# --- an honest log ---------------------------------------------------------------------------


@pytest.fixture
def refetched(log_services: Services, url: str, watched: Path) -> Path:
    """The watched store after the log grew by five entries and the auditor fetched again."""
    grow(log_services, 10, 5)
    assert fetch(url, watched).leaves_added == 5
    return watched


def test_a_fetch_with_nothing_new_adds_nothing(url: str, refetched: Path) -> None:
    again = fetch(url, refetched)
    assert again.ok
    assert not again.new_head
    assert again.leaves_added == 0


def test_check_passes_while_the_log_only_grows(
    log_services: Services, url: str, refetched: Path
) -> None:
    grow(log_services, 15, 3)
    result = check(url, refetched)
    assert result.ok, result.summary()
    assert (result.tree_size, result.heads_checked, result.entries_checked) == (18, 2, 18)
    assert result.summary().startswith("OK: 2 stored tree heads checked")


def test_the_store_keeps_what_was_fetched_and_check_adds_nothing(
    log_services: Services, url: str, refetched: Path
) -> None:
    grow(log_services, 15, 3)
    check(url, refetched)
    assert len(list((refetched / "heads").glob("*.json"))) == 2
    assert (refetched / "leaves.bin").stat().st_size == 15 * 32


def test_fetch_pages_through_more_than_one_page(
    log_services: Services, url: str, tmp_path: Path
) -> None:
    with db.transaction(log_services.sessions) as session:
        append_entries(session, [status_entry(i) for i in range(2100)])
        publish_sth(session, log_services.pki.log_key)
    result = fetch(url, tmp_path / "audit")
    assert result.ok
    assert result.leaves_added == 2100
    assert check(url, tmp_path / "audit").ok


# --- tampering, named --------------------------------------------------------------------


def test_check_names_a_rewritten_entry(log_services: Services, url: str, watched: Path) -> None:
    forged = LogEntry(**{**status_entry(4).__dict__, "status": "valid"}).to_bytes()
    with db.transaction(log_services.sessions) as session:
        session.execute(update(LogLeaf).where(LogLeaf.leaf_index == 4).values(entry=forged))
    result = check(url, watched)
    assert not result.ok
    assert kinds(result)["rewritten"] == [4]
    assert "root-mismatch" in kinds(result)
    line = next(f.line() for f in result.findings if f.kind == "rewritten")
    assert line.startswith("rewritten: Entry 4 was rewritten")
    assert "certificate.status crt_4 valid" in line


def test_check_names_a_deleted_entry(log_services: Services, url: str, watched: Path) -> None:
    with db.transaction(log_services.sessions) as session:
        session.execute(delete(LogLeaf).where(LogLeaf.leaf_index == 6))
    result = check(url, watched)
    found = kinds(result)
    assert found["removed"] == [None, 6]
    assert found["missing-index"] == [6]
    assert "Entry 6 (leaf hash" in result.summary()


def test_check_names_reordered_entries(log_services: Services, url: str, watched: Path) -> None:
    with db.transaction(log_services.sessions) as session:
        blobs = stored_entries(session)
        session.execute(update(LogLeaf).where(LogLeaf.leaf_index == 2).values(entry=blobs[7]))
        session.execute(update(LogLeaf).where(LogLeaf.leaf_index == 7).values(entry=blobs[2]))
    result = check(url, watched)
    assert kinds(result)["reordered"] == [2, 7]
    assert "Entry 2 (leaf hash" in result.summary()
    assert "has moved to index 7" in result.summary()


def test_check_names_an_entry_removed_by_an_insider_who_resigned(
    log_services: Services, url: str, watched: Path
) -> None:
    with log_services.sessions() as session:
        blobs = stored_entries(session)
    rebuild(log_services, blobs[:3] + blobs[4:])
    result = check(url, watched)
    found = kinds(result)
    assert found["removed"] == [3]
    assert found["shrunk"] == [None]


def test_check_names_an_entry_rewritten_by_an_insider_who_resigned_and_grew(
    log_services: Services, url: str, watched: Path
) -> None:
    with log_services.sessions() as session:
        blobs = stored_entries(session)
    forged = LogEntry(**{**status_entry(5).__dict__, "status": "valid"}).to_bytes()
    extra = [status_entry(i).to_bytes() for i in (10, 11)]
    rebuild(log_services, [*blobs[:5], forged, *blobs[6:], *extra])
    result = check(url, watched)
    found = kinds(result)
    assert found["rewritten"] == [5]
    assert found["inconsistent"] == [None]
    assert "not proven consistent" in result.summary()
    # The re-signed log is self-consistent; the head stored before no longer matches it.
    mismatch = next(f for f in result.findings if f.kind == "root-mismatch")
    assert "signed head of size 10 " in mismatch.message


def test_check_locates_a_change_after_the_last_fetch_by_proofs(
    log_services: Services, url: str, watched: Path
) -> None:
    grow(log_services, 10, 10)
    with db.transaction(log_services.sessions) as session:
        session.execute(
            update(LogLeaf)
            .where(LogLeaf.leaf_index == 15)
            .values(entry=status_entry(99).to_bytes())
        )
    result = check(url, watched)
    assert kinds(result)["changed"] == [15]


def test_fetch_refuses_a_head_the_log_key_did_not_sign(
    log_services: Services, url: str, watched: Path
) -> None:
    grow(log_services, 10, 2)
    with db.transaction(log_services.sessions) as session:
        session.execute(
            update(LogTreeHead).where(LogTreeHead.tree_size == 12).values(root_hash=b"\0" * 32)
        )
    result = fetch(url, watched)
    assert not result.ok
    assert [f.kind for f in result.findings] == ["bad-signature"]
    assert len(list((watched / "heads").glob("*.json"))) == 1


def test_fetch_does_not_store_leaves_that_miss_the_root(
    log_services: Services, url: str, watched: Path
) -> None:
    grow(log_services, 10, 4)
    with db.transaction(log_services.sessions) as session:
        session.execute(
            update(LogLeaf)
            .where(LogLeaf.leaf_index == 12)
            .values(entry=status_entry(77).to_bytes())
        )
    result = fetch(url, watched)
    assert [f.kind for f in result.findings] == ["root-mismatch"]
    assert (watched / "leaves.bin").stat().st_size == 10 * 32
    assert kinds(check(url, watched))["changed"] == [12]


def test_a_changed_log_key_is_reported(url: str, watched: Path) -> None:
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    (watched / "log_key.pem").write_text(log_key_pem(other))
    result = check(url, watched)
    assert [f.kind for f in result.findings] == ["key-changed", "bad-signature"]


def test_an_unreachable_log_is_a_finding(tmp_path: Path) -> None:
    fetched = fetch("http://127.0.0.1:9", tmp_path / "audit")
    result = check("http://127.0.0.1:9", tmp_path / "audit")
    for outcome in (fetched, result):
        assert [f.kind for f in outcome.findings] == ["unavailable"]
        assert outcome.exit_code == EXIT_UNREACHABLE
    assert "unreachable: connection refused" in result.summary()


# --- the command line ------------------------------------------------------------------------


def audit(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    """Run ``econtract audit ARGS``: the exit status, the lines printed, what went to stderr."""
    capsys.readouterr()
    status = run(["audit", *args])
    out = capsys.readouterr()
    return status, out.out.splitlines(), out.err


def test_an_unreachable_url_has_its_own_exit_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "audit")
    status, lines, _ = audit(capsys, "fetch", "--url", "http://127.0.0.1:9", "--store", store)
    assert status == EXIT_UNREACHABLE == 3
    status, lines, _ = audit(capsys, "check", "--url", "http://127.0.0.1:9", "--store", store)
    assert status == EXIT_UNREACHABLE
    assert lines[0] == "NOT CHECKED: the log could not be read"
    assert EXIT_UNREACHABLE != EXIT_FINDINGS


def test_a_detected_rewrite_exits_1_not_3(
    log_services: Services, url: str, watched: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with db.transaction(log_services.sessions) as session:
        session.execute(
            update(LogLeaf).where(LogLeaf.leaf_index == 3).values(entry=status_entry(90).to_bytes())
        )
    status, lines, _ = audit(capsys, "check", "--url", url, "--store", str(watched))
    assert status == EXIT_FINDINGS == 1
    assert lines[0].startswith("FAILED")


def test_checking_a_store_that_does_not_exist_is_a_usage_error(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-store"
    with pytest.raises(AuditUsageError, match="does not exist"):
        check(url, missing)


def test_the_cli_names_a_missing_store_in_one_usage_line(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-store"
    status, lines, err = audit(capsys, "check", "--url", url, "--store", str(missing))
    assert status == EXIT_USAGE == 64
    assert lines == []
    assert err.splitlines() == [
        f"usage error: Invalid value for '--store': The store {missing} does not exist; "
        "run `econtract audit fetch` with it first."
    ]


def test_checking_a_missing_store_does_not_create_it(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-store"
    with pytest.raises(AuditUsageError, match="does not exist"):
        check(url, missing)
    audit(capsys, "check", "--url", url, "--store", str(missing))
    assert not missing.exists()


def test_a_directory_fetch_never_wrote_is_not_a_store(url: str, tmp_path: Path) -> None:
    with pytest.raises(AuditUsageError, match="is not a store written by"):
        check(url, tmp_path)


def test_each_finding_is_printed_once(
    log_services: Services, url: str, watched: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with db.transaction(log_services.sessions) as session:
        session.execute(delete(LogLeaf).where(LogLeaf.leaf_index == 6))
    result = check(url, watched)
    assert len(set(result.findings)) == len(result.findings) >= 3
    status, lines, _ = audit(capsys, "check", "--url", url, "--store", str(watched))
    assert status == EXIT_FINDINGS
    assert lines == result.summary().splitlines()
    assert lines[0].startswith(f"FAILED ({len(result.findings)} findings): ")
    assert len(lines) == 1 + len(result.findings)
    assert len(set(lines)) == len(lines)


def test_hashes_are_printed_in_base64_as_log_sth_gives_them(
    log_services: Services, url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grow(log_services, 0, 5)
    store = tmp_path / "audit"
    status, lines, _ = audit(capsys, "fetch", "--url", url, "--store", str(store))
    assert status == 0
    sth = requests.get(f"{url}/log/sth", timeout=10).json()
    assert f"root {sth['sha256_root_hash']} (new)" in lines[0]
    with log_services.sessions() as session:
        original = stored_entries(session)[2]
    forged = status_entry(77).to_bytes()
    with db.transaction(log_services.sessions) as session:
        session.execute(update(LogLeaf).where(LogLeaf.leaf_index == 2).values(entry=forged))
    _, lines, _ = audit(capsys, "check", "--url", url, "--store", str(store))
    rewritten = next(line for line in lines if line.startswith("rewritten:"))
    was, now = (base64.b64encode(leaf_hash(b)).decode() for b in (original, forged))
    assert f"its leaf hash was {was} and is now {now}" in rewritten


def write_key(path: Path, key: ec.EllipticCurvePublicKey) -> Path:
    path.write_text(log_key_pem(key))
    return path


def test_a_given_log_key_is_pinned_instead_of_the_first_fetch(
    log_services: Services, url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grow(log_services, 0, 3)
    genuine = log_services.pki.log_key.public_key()
    assert isinstance(genuine, ec.EllipticCurvePublicKey)
    key_file = write_key(tmp_path / "log.pem", genuine)
    store = tmp_path / "audit"
    status, _, _ = audit(
        capsys, "fetch", "--url", url, "--store", str(store), "--log-key", str(key_file)
    )
    assert status == 0
    assert (store / "log_key.pem").read_text() == log_key_pem(genuine)
    status, lines, _ = audit(
        capsys, "check", "--url", url, "--store", str(store), "--log-key", str(key_file)
    )
    assert status == 0
    assert lines[0].startswith("OK: 1 stored tree heads checked")


@dataclasses.dataclass(frozen=True)
class _KeyMismatch:
    """A first fetch given another key than the log's: the key file, the store, the run."""

    other: Path
    store: Path
    status: int
    lines: list[str]


@pytest.fixture
def key_mismatch(
    log_services: Services, url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> _KeyMismatch:
    grow(log_services, 0, 2)
    other = write_key(tmp_path / "other.pem", ec.generate_private_key(ec.SECP256R1()).public_key())
    store = tmp_path / "audit"
    status, lines, _ = audit(
        capsys, "fetch", "--url", url, "--store", str(store), "--log-key", str(other)
    )
    return _KeyMismatch(other, store, status, lines)


def test_a_log_serving_another_key_than_the_given_one_is_a_finding(
    key_mismatch: _KeyMismatch,
) -> None:
    assert key_mismatch.status == EXIT_FINDINGS
    assert key_mismatch.lines[0] == (
        "key-mismatch: The log serves a different public key from the one given (--log-key); "
        "heads are checked with the given key."
    )
    assert key_mismatch.lines[1].startswith("bad-signature:")


def test_a_first_fetch_pins_the_given_key_and_stores_no_head_it_fails(
    key_mismatch: _KeyMismatch,
) -> None:
    # The first fetch trusted the given key, not the one the log served.
    assert (key_mismatch.store / "log_key.pem").read_text() == key_mismatch.other.read_text()
    assert list((key_mismatch.store / "heads").glob("*.json")) == []


def test_a_given_key_that_differs_from_the_pinned_one_is_named(
    url: str, watched: Path, tmp_path: Path
) -> None:
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    result = check(url, watched, log_key=other)
    assert [f.kind for f in result.findings] == ["key-mismatch", "key-mismatch", "bad-signature"]
    assert f"The key pinned in {watched / 'log_key.pem'} differs" in result.summary()


def test_a_log_key_file_that_is_not_a_public_key_is_a_usage_error(
    url: str, watched: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = watched.parent / "not-a-key.pem"
    bad.write_text("-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n")
    status, lines, err = audit(
        capsys, "check", "--url", url, "--store", str(watched), "--log-key", str(bad)
    )
    assert status == EXIT_USAGE
    assert lines == []
    assert err == (
        "usage error: Invalid value for '--log-key': The log key given is not a PEM public key.\n"
    )


# --- naming by leaf hashes, without a server ----------------------------------------------


def h(i: int) -> bytes:
    return i.to_bytes(32, "big")


SEEN = [h(i) for i in range(10)]


def named(served: list[bytes]) -> list[tuple[str, int | None]]:
    return [(f.kind, f.leaf_index) for f in compare_leaves(SEEN, served)]


def test_growth_is_not_a_finding() -> None:
    assert named([*SEEN, h(10), h(11)]) == []
    assert named(SEEN) == []


def test_a_rewrite_is_named() -> None:
    assert named([*SEEN[:3], h(99), *SEEN[4:]]) == [("rewritten", 3)]


def test_a_removal_is_named_once_not_as_a_shift() -> None:
    assert named([*SEEN[:3], *SEEN[4:], h(10)]) == [("removed", 3)]
    assert named(SEEN[:8]) == [("removed", 8), ("removed", 9)]


def test_a_swap_and_a_move_are_reorders() -> None:
    swapped = list(SEEN)
    swapped[1], swapped[8] = swapped[8], swapped[1]
    assert named(swapped) == [("reordered", 1), ("reordered", 8)]
    assert named([*SEEN[:5], *SEEN[6:], SEEN[5]]) == [("reordered", 5)]


def test_an_insertion_into_the_past_is_named() -> None:
    assert named([*SEEN[:4], h(50), *SEEN[4:]]) == [("inserted", 4)]


def test_findings_read_as_sentences() -> None:
    finding = Finding("removed", "Entry 3 (leaf hash 00) is gone from the log.", leaf_index=3)
    assert finding.line() == "removed: Entry 3 (leaf hash 00) is gone from the log."
