"""The auditor's tool against a real HTTP server, with the registry tampered with directly.

Until ``api.py`` serves the log, a small FastAPI app here serves the same ``*_json`` bodies
over a real uvicorn server; the auditor sees only HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from econtract import db
from econtract.auditor import AuditResult, Finding, check, compare_leaves, fetch
from econtract.bootstrap import initialise
from econtract.models import LogLeaf, LogNode, LogState, LogTreeHead
from econtract.services import Services
from econtract.translog import (
    LogEntry,
    LogEntryKind,
    append_entries,
    log_key_pem,
    publish_sth,
)
from econtract.translog._store import append_encoded
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
    initialise(services, demo=False)
    return services


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


def test_check_passes_while_the_log_only_grows(
    log_services: Services, url: str, watched: Path
) -> None:
    grow(log_services, 10, 5)
    assert fetch(url, watched).leaves_added == 5
    again = fetch(url, watched)
    assert again.ok
    assert not again.new_head
    assert again.leaves_added == 0
    grow(log_services, 15, 3)
    result = check(url, watched)
    assert result.ok, result.summary()
    assert (result.tree_size, result.heads_checked, result.entries_checked) == (18, 2, 18)
    assert result.summary().startswith("OK: 2 stored tree heads checked")
    assert len(list((watched / "heads").glob("*.json"))) == 2
    assert (watched / "leaves.bin").stat().st_size == 15 * 32


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
    result = check("http://127.0.0.1:9", tmp_path / "audit")
    assert [f.kind for f in result.findings] == ["unavailable"]
    assert "unreachable" in result.summary()


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
