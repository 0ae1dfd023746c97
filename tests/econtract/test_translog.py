"""The transparency log: RFC 9162 proofs, signed tree heads, appends in transactions."""

from __future__ import annotations

import base64
import hashlib
import random
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from sqlalchemy import delete, select, update

from econtract import db
from econtract.clock import FixedClock
from econtract.models import Base, Certificate, Seal, SealedDocument
from econtract.services import Services
from econtract.translog import (
    EMPTY_ROOT,
    CompactRange,
    LogEntry,
    LogEntryKind,
    LogFormatError,
    LogIntegrityError,
    LogNotFoundError,
    LogRequestError,
    ProofVerificationError,
    SignedTreeHead,
    TreeHeadPublisher,
    append_entries,
    append_entry,
    b64decode,
    consistency_json,
    consistency_proof,
    entries_json,
    inclusion_json,
    inclusion_proof,
    inclusion_ranges,
    leaf_hash,
    log_key_json,
    publish_sth,
    root_of,
    sth_json,
    subject_proofs_json,
    verify_consistency,
    verify_inclusion,
    verify_sth,
)

# The log's own tests reach its private modules; the rest of the project uses __all__ only.
from econtract.translog._heads import latest_sth, publish_if_due
from econtract.translog._merkle import consistency_ranges, node_hash
from econtract.translog._store import append_encoded, entries, root_hash, tree_size
from econtract.translog._tables import LogLeaf, LogNode, LogState, LogTreeHead
from tests.data import load_vectors
from tests.factories import initialise_with_an_empty_log

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


# --- the reference: RFC 9162 section 2.1, written as the RFC writes it -----------------------


def ref_mth(leaves: Sequence[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((n - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:])).digest()


def ref_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if b else [ref_mth(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*ref_subproof(m, leaves[:k], b), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


def ref_proof(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    return ref_subproof(m, leaves, True)


def data(i: int) -> bytes:
    return f"entry {i}".encode()


DATA = [data(i) for i in range(70)]
HASHES = [leaf_hash(d) for d in DATA]


def proof_from_ranges(ranges: list[tuple[int, int]]) -> list[bytes]:
    return [root_of(HASHES[a:b]) for a, b in ranges]


def flip(value: bytes) -> bytes:
    return bytes([value[0] ^ 1]) + value[1:]


# --- pure: hashing, proof shapes, verification ----------------------------------------------


def test_hashes_follow_rfc_9162() -> None:
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert (
        node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    )
    assert root_of([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("n", range(1, 71))
def test_root_and_inclusion_proofs_match_reference(n: int) -> None:
    leaves = DATA[:n]
    root = ref_mth(leaves)
    assert root_of(HASHES[:n]) == root
    for m in range(n):
        proof = proof_from_ranges(inclusion_ranges(m, n))
        assert proof == ref_path(m, leaves)
        verify_inclusion(HASHES[m], m, n, proof, root)


@pytest.mark.parametrize("n", range(1, 71))
def test_consistency_proofs_match_reference(n: int) -> None:
    for m in range(1, n + 1):
        proof = proof_from_ranges(consistency_ranges(m, n))
        assert proof == ref_proof(m, DATA[:n])
        verify_consistency(m, n, ref_mth(DATA[:m]), ref_mth(DATA[:n]), proof)


def test_compact_range_completes_each_subtree_once() -> None:
    tree = CompactRange()
    completed = []
    for h in HASHES[:8]:
        completed += tree.append(h)
    assert [(level, index) for level, index, _ in completed] == [
        (1, 0),
        (1, 1),
        (2, 0),
        (1, 2),
        (1, 3),
        (2, 1),
        (3, 0),
    ]
    assert completed[-1][2] == tree.root() == ref_mth(DATA[:8])


def test_tampered_inclusion_proofs_are_rejected() -> None:
    rng = random.Random(1)
    for _ in range(200):
        n = rng.randint(2, 70)
        m = rng.randrange(n)
        root = ref_mth(DATA[:n])
        proof = ref_path(m, DATA[:n])
        for i in range(len(proof)):
            bad = list(proof)
            bad[i] = flip(bad[i])
            with pytest.raises(ProofVerificationError):
                verify_inclusion(HASHES[m], m, n, bad, root)
        with pytest.raises(ProofVerificationError):
            verify_inclusion(HASHES[m], m, n, proof[:-1], root)
        with pytest.raises(ProofVerificationError):
            verify_inclusion(HASHES[m], m, n, [*proof, HASHES[0]], root)
        with pytest.raises(ProofVerificationError):
            verify_inclusion(HASHES[(m + 1) % n], m, n, proof, root)
        with pytest.raises(ProofVerificationError):
            verify_inclusion(HASHES[m], m, n, proof, flip(root))
        other = (m + 1) % n
        if ref_path(other, DATA[:n]) != proof:
            with pytest.raises(ProofVerificationError):
                verify_inclusion(HASHES[m], other, n, proof, root)


def test_tampered_consistency_proofs_are_rejected() -> None:
    rng = random.Random(2)
    for _ in range(200):
        n = rng.randint(2, 70)
        m = rng.randint(1, n - 1)
        old, new = ref_mth(DATA[:m]), ref_mth(DATA[:n])
        proof = ref_proof(m, DATA[:n])
        for i in range(len(proof)):
            bad = list(proof)
            bad[i] = flip(bad[i])
            with pytest.raises(ProofVerificationError):
                verify_consistency(m, n, old, new, bad)
        with pytest.raises(ProofVerificationError):
            verify_consistency(m, n, flip(old), new, proof)
        with pytest.raises(ProofVerificationError):
            verify_consistency(m, n, old, flip(new), proof)
        with pytest.raises(ProofVerificationError):
            verify_consistency(m, n, old, new, [])
        with pytest.raises(ProofVerificationError):
            verify_consistency(m, n, old, new, [*proof, HASHES[0]])


def test_verification_refuses_impossible_sizes() -> None:
    with pytest.raises(ProofVerificationError, match="not inside a tree"):
        verify_inclusion(HASHES[0], 5, 5, [], HASHES[0])
    with pytest.raises(ProofVerificationError, match="not inside a tree"):
        verify_inclusion(HASHES[0], -1, 5, [], HASHES[0])
    with pytest.raises(ProofVerificationError, match="0 < first <= second"):
        verify_consistency(6, 5, HASHES[0], HASHES[1], [HASHES[2]])
    with pytest.raises(ProofVerificationError, match="0 < first <= second"):
        verify_consistency(0, 5, HASHES[0], HASHES[1], [HASHES[2]])
    with pytest.raises(ProofVerificationError, match="forked"):
        verify_consistency(5, 5, HASHES[0], HASHES[1], [])
    with pytest.raises(ProofVerificationError, match="32 bytes"):
        verify_inclusion(HASHES[0], 0, 2, [b"short"], HASHES[0])
    with pytest.raises(ProofVerificationError, match="too long"):
        verify_inclusion(HASHES[0], 0, 2, [HASHES[0]] * 65, HASHES[0])


# --- published vectors: RFC 6962/9162 test data, not a reference written here ---------------

VECTORS = load_vectors("merkle_vectors.json")
GOLDEN_LEAVES = [bytes.fromhex(leaf) for leaf in VECTORS["leaves"]]
GOLDEN_HASHES = [leaf_hash(leaf) for leaf in GOLDEN_LEAVES]
GOLDEN_ROOTS = [bytes.fromhex(root) for root in VECTORS["roots"]]


def golden_proof(vector: dict[str, Any]) -> list[bytes]:
    return [bytes.fromhex(h) for h in vector["proof"]]


def accepted_here(vector: dict[str, Any], *hashes: str) -> bool:
    """Whether our verifier must accept a published vector.

    Ours is stricter in one way: every hash is 32 bytes, even where the proof would not need
    to look at it (equal sizes with equal placeholder roots), since a hash of any other length
    is a malformed request, not a proof.
    """
    return bool(vector["valid"]) and all(len(bytes.fromhex(h)) == 32 for h in hashes)


def golden_ids(vector: dict[str, Any]) -> str:
    return str(vector["name"])


def over_the_published_leaves(vector: dict[str, Any]) -> bool:
    """A valid vector of the numbered directories: a proof in the tree of the eight leaves.

    The others (``single-entry``, ``additional``) use leaves and roots of their own.
    """
    return bool(vector["valid"]) and str(vector["name"]).split("/")[1].isdigit()


GOLDEN_INCLUSION = [v for v in VECTORS["inclusion"] if over_the_published_leaves(v)]
GOLDEN_CONSISTENCY = [v for v in VECTORS["consistency"] if over_the_published_leaves(v)]


@pytest.mark.parametrize("n", range(len(GOLDEN_ROOTS)))
def test_roots_of_the_published_leaves_are_the_published_roots(n: int) -> None:
    assert root_of(GOLDEN_HASHES[:n]) == GOLDEN_ROOTS[n]


@pytest.mark.parametrize("vector", GOLDEN_INCLUSION, ids=golden_ids)
def test_inclusion_proofs_are_the_published_ones(vector: dict[str, Any]) -> None:
    index, size = vector["leaf_index"], vector["tree_size"]
    assert bytes.fromhex(vector["leaf_hash"]) == GOLDEN_HASHES[index]
    assert bytes.fromhex(vector["root"]) == GOLDEN_ROOTS[size]
    ranges = inclusion_ranges(index, size)
    assert [root_of(GOLDEN_HASHES[a:b]) for a, b in ranges] == golden_proof(vector)


@pytest.mark.parametrize("vector", GOLDEN_CONSISTENCY, ids=golden_ids)
def test_consistency_proofs_are_the_published_ones(vector: dict[str, Any]) -> None:
    first, second = vector["first"], vector["second"]
    assert bytes.fromhex(vector["first_root"]) == GOLDEN_ROOTS[first]
    assert bytes.fromhex(vector["second_root"]) == GOLDEN_ROOTS[second]
    ranges = consistency_ranges(first, second)
    assert [root_of(GOLDEN_HASHES[a:b]) for a, b in ranges] == golden_proof(vector)


@pytest.mark.parametrize("vector", VECTORS["inclusion"], ids=golden_ids)
def test_inclusion_verification_agrees_with_the_published_verdict(
    vector: dict[str, Any],
) -> None:
    def verify() -> None:
        verify_inclusion(
            bytes.fromhex(vector["leaf_hash"]),
            vector["leaf_index"],
            vector["tree_size"],
            golden_proof(vector),
            bytes.fromhex(vector["root"]),
        )

    if accepted_here(vector, vector["leaf_hash"], vector["root"], *vector["proof"]):
        verify()
    else:
        with pytest.raises(ProofVerificationError):
            verify()


@pytest.mark.parametrize("vector", VECTORS["consistency"], ids=golden_ids)
def test_consistency_verification_agrees_with_the_published_verdict(
    vector: dict[str, Any],
) -> None:
    def verify() -> None:
        verify_consistency(
            vector["first"],
            vector["second"],
            bytes.fromhex(vector["first_root"]),
            bytes.fromhex(vector["second_root"]),
            golden_proof(vector),
        )

    if accepted_here(vector, vector["first_root"], vector["second_root"], *vector["proof"]):
        verify()
    else:
        with pytest.raises(ProofVerificationError):
            verify()


# --- entries ------------------------------------------------------------------------------


def status_entry(i: int) -> LogEntry:
    return LogEntry(
        kind=LogEntryKind.CERTIFICATE_STATUS,
        time=T0 + timedelta(seconds=i),
        department="91330100MA2XXXXX0X",
        certificate_id=f"crt_{i}",
        status="revoked",
        previous_status="valid",
        reason="吊销 test",
    )


def test_entry_bytes_are_canonical_and_versioned() -> None:
    entry = status_entry(1)
    raw = entry.to_bytes()
    assert raw.startswith(b'{"certificate_id":"crt_1",')
    assert b'"v":1' in raw
    assert b" " not in raw.replace("吊销 test".encode(), b"")
    assert b'"time":"2026-03-01T08:00:01.000000Z"' in raw
    assert LogEntry.from_bytes(raw) == entry
    # The same instant in another zone is the same entry, byte for byte.
    shifted = LogEntry(
        **{
            **entry.__dict__,
            "time": entry.time.astimezone(timezone(timedelta(hours=8))),
        }
    )
    assert shifted.to_bytes() == raw


def test_non_canonical_entry_bytes_are_refused() -> None:
    raw = status_entry(1).to_bytes()
    with pytest.raises(LogFormatError, match="canonical"):
        LogEntry.from_bytes(raw.replace(b",", b", ", 1))
    with pytest.raises(LogFormatError, match="version"):
        LogEntry.from_bytes(raw.replace(b'"v":1', b'"v":2'))
    with pytest.raises(LogFormatError, match="unknown fields"):
        LogEntry.from_bytes(raw[:-1] + b',"zz":"x"}')
    with pytest.raises(LogFormatError, match="UTF-8 JSON"):
        LogEntry.from_bytes(b"\xff")


def test_entry_needs_the_fields_of_its_kind() -> None:
    with pytest.raises(ValueError, match=r"certificate\.issue log entry needs"):
        LogEntry(kind=LogEntryKind.CERTIFICATE_ISSUE, time=T0, certificate_id="crt_1")
    with pytest.raises(ValueError, match="timezone-aware"):
        LogEntry(kind=LogEntryKind.SEAL_REVOKE, time=datetime(2026, 1, 1), seal_id="s")
    with pytest.raises(ValueError, match="lowercase hex digest"):
        LogEntry(
            kind=LogEntryKind.DOCUMENT_SEAL,
            time=T0,
            department="d",
            document_id="doc",
            pdf_sha256="AB" * 32,
            signed_digest="ab" * 32,
        )
    with pytest.raises(ValueError, match="kind is one of"):
        LogEntry(kind="certificate.burn", time=T0)  # type: ignore[arg-type]


# --- the log in the registry ----------------------------------------------------------------


@pytest.fixture
def log_services(services: Services) -> Services:
    """Services on a migrated registry with the PKI (and so the log key), no demo data, and
    an empty log."""
    return initialise_with_an_empty_log(services)


LOG_TABLES = {"log_state", "log_leaves", "log_nodes", "log_tree_heads"}


def test_the_log_tables_mapped_in_translog_are_the_tables_its_migration_made(
    services: Services,
) -> None:
    db.upgrade(services.engine)

    def in_the_log(item: Any, name: str | None, type_: str, *_: object) -> bool:
        table = item if type_ == "table" else getattr(item, "table", None)
        return getattr(table, "name", None) in LOG_TABLES

    with services.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": in_the_log}
        )
        differences = compare_metadata(context, Base.metadata)
    assert set(Base.metadata.tables) >= LOG_TABLES
    assert differences == []


def test_alembics_environment_sees_the_log_tables(services: Services) -> None:
    # A fresh interpreter: the tables in Base.metadata are those the environment imports,
    # and `alembic check` would report the log's tables as dropped if it missed them.
    db.upgrade(services.engine)
    probe = (
        "import sys\n"
        "from alembic import command\n"
        "from sqlalchemy import create_engine\n"
        "from econtract import db\n"
        "command.check(db.alembic_config(create_engine(sys.argv[1])))\n"
    )
    url = services.engine.url.render_as_string(hide_password=False)
    done = subprocess.run(
        [sys.executable, "-c", probe, url], check=False, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def append_and_publish(services: Services, count: int, *, start: int = 0) -> list[bytes]:
    """Append ``count`` entries one transaction each, publishing a head after each."""
    blobs = []
    for i in range(start, start + count):
        with db.transaction(services.sessions) as session:
            entry = status_entry(i)
            append_entry(session, entry)
            publish_sth(session, services.pki.log_key)
        blobs.append(entry.to_bytes())
    return blobs


def test_stored_proofs_match_reference_for_every_size(log_services: Services) -> None:
    blobs = append_and_publish(log_services, 70)
    rng = random.Random(3)
    with log_services.sessions() as session:
        assert tree_size(session) == 70
        for n in range(1, 71):
            assert root_hash(session, n) == ref_mth(blobs[:n])
            for m in {0, n - 1, *rng.sample(range(n), min(n, 4))}:
                assert inclusion_proof(session, m, n) == ref_path(m, blobs[:n])
        for _ in range(150):
            second = rng.randint(1, 70)
            first = rng.randint(1, second)
            assert consistency_proof(session, first, second) == ref_proof(first, blobs[:second])


def test_the_stored_log_of_the_published_leaves_gives_the_published_roots_and_proofs(
    log_services: Services,
) -> None:
    # One head per size: the log gives proofs only against a published size.
    for leaf in GOLDEN_LEAVES:
        with db.transaction(log_services.sessions) as session:
            append_encoded(session, [leaf])
            publish_sth(session, log_services.pki.log_key)
    with log_services.sessions() as session:
        for n in range(1, len(GOLDEN_LEAVES) + 1):
            assert root_hash(session, n) == GOLDEN_ROOTS[n]
        for vector in GOLDEN_INCLUSION:
            proof = inclusion_proof(session, vector["leaf_index"], vector["tree_size"])
            assert proof == golden_proof(vector), vector["name"]
        for vector in GOLDEN_CONSISTENCY:
            proof = consistency_proof(session, vector["first"], vector["second"])
            assert proof == golden_proof(vector), vector["name"]


def test_batch_append_stores_the_same_tree(log_services: Services) -> None:
    batch = [status_entry(i) for i in range(37)]
    with db.transaction(log_services.sessions) as session:
        assert append_entries(session, batch[:5]) == range(5)
        assert append_entries(session, batch[5:]) == range(5, 37)
        assert append_entries(session, []) == range(0)
    blobs = [e.to_bytes() for e in batch]
    with log_services.sessions() as session:
        nodes = {(n.level, n.node_index): n.hash for n in session.scalars(select(LogNode))}
        for n in range(1, 38):
            assert root_hash(session, n) == ref_mth(blobs[:n])
    # Every complete subtree is stored, and only those.
    expected = {
        (level, i): ref_mth(blobs[i << level : (i + 1) << level])
        for level in range(1, 6)
        for i in range(37 >> level)
    }
    assert nodes == expected


def test_rolled_back_append_leaves_nothing(log_services: Services) -> None:
    append_and_publish(log_services, 3)

    def failing_use_case() -> None:
        with db.transaction(log_services.sessions) as session:
            assert append_entries(session, [status_entry(i) for i in range(3, 9)]) == range(3, 9)
            raise RuntimeError("the use case failed after appending")

    with pytest.raises(RuntimeError, match="failed after appending"):
        failing_use_case()
    with log_services.sessions() as session:
        assert tree_size(session) == 3
        assert len(session.scalars(select(LogLeaf)).all()) == 3
        assert {n.level for n in session.scalars(select(LogNode))} == {1}
    # The next append takes the index the rolled-back one had.
    with db.transaction(log_services.sessions) as session:
        assert append_entry(session, status_entry(99)) == 3


def test_concurrent_appends_keep_one_consistent_tree(log_services: Services) -> None:
    threads, per_thread = 8, 15
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(per_thread):
                with db.transaction(log_services.sessions) as session:
                    append_entry(session, status_entry(t * 1000 + i))
                    if i % 5 == 0:
                        publish_sth(session, log_services.pki.log_key)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors
    total = threads * per_thread
    with db.transaction(log_services.sessions) as session:
        sth = publish_sth(session, log_services.pki.log_key)
        rows = session.execute(
            select(LogLeaf.leaf_index, LogLeaf.entry).order_by(LogLeaf.leaf_index)
        ).all()
        assert [i for i, _ in rows] == list(range(total))
        blobs = [e for _, e in rows]
        assert len(set(blobs)) == total
        assert sth.tree_size == total
        assert sth.root_hash == ref_mth(blobs)
        # Every head published on the way is a prefix of the final tree.
        for head in session.scalars(select(LogTreeHead)):
            assert head.root_hash == ref_mth(blobs[: head.tree_size])
            if head.tree_size:
                verify_consistency(
                    head.tree_size,
                    total,
                    head.root_hash,
                    sth.root_hash,
                    consistency_proof(session, head.tree_size, total),
                )


# --- signed tree heads ----------------------------------------------------------------------


def at(seconds: int) -> FixedClock:
    """A clock pinned ``seconds`` after ``T0``."""
    return FixedClock(T0 + timedelta(seconds=seconds))


def test_publish_signs_a_head_only_when_the_size_moved(log_services: Services) -> None:
    key = log_services.pki.log_key
    with db.transaction(log_services.sessions) as session:
        empty = publish_sth(session, key, clock=at(0))
        assert (empty.tree_size, empty.root_hash) == (0, EMPTY_ROOT)
        assert publish_sth(session, key, clock=at(5)) == empty
        append_entry(session, status_entry(0))
        one = publish_sth(session, key, clock=at(0))
        forced = publish_sth(session, key, force=True, clock=at(0))
    assert one.tree_size == 1
    assert one.timestamp == empty.timestamp + 1
    assert forced.tree_size == 1
    assert forced.timestamp == one.timestamp + 1
    for sth in (empty, one, forced):
        verify_sth(sth, key.public_key())


def test_publish_if_due_waits_for_entries_and_for_the_interval(log_services: Services) -> None:
    key = log_services.pki.log_key
    with db.transaction(log_services.sessions) as session:
        first = publish_if_due(session, key, 10, clock=at(0))
        assert first is not None
        assert first.tree_size == 0
        assert publish_if_due(session, key, 10, clock=at(60)) is None
        append_entry(session, status_entry(0))
        assert publish_if_due(session, key, 10, clock=at(9)) is None
        due = publish_if_due(session, key, 10, clock=at(10))
        assert due is not None
        assert due.tree_size == 1


def test_tree_head_signature_covers_size_time_and_root(log_services: Services) -> None:
    key = log_services.pki.log_key
    with db.transaction(log_services.sessions) as session:
        append_entry(session, status_entry(0))
        sth = publish_sth(session, key)
    assert len(sth.signed_bytes()) == 50
    assert SignedTreeHead.from_json(sth.to_json()) == sth
    for changed in (
        {"tree_size": 2},
        {"timestamp": sth.timestamp + 1},
        {"root_hash": flip(sth.root_hash)},
    ):
        forged = SignedTreeHead(**{**sth.__dict__, **changed})
        with pytest.raises(ProofVerificationError, match="does not verify"):
            verify_sth(forged, key.public_key())


def test_malformed_tree_head_json_is_refused() -> None:
    good = {
        "v": 1,
        "tree_size": 1,
        "timestamp": 1,
        "sha256_root_hash": base64.b64encode(HASHES[0]).decode(),
        "signature_algorithm": "ecdsa-p256-sha256",
        "signature": "AA==",
    }
    SignedTreeHead.from_json(good)
    bad: object
    for bad in (
        {**good, "tree_size": -1},
        {**good, "sha256_root_hash": "AA=="},
        {**good, "signature": "*"},
        {**good, "v": 2},
        [],
        {**good, "tree_size": "1"},
    ):
        with pytest.raises(LogFormatError):
            SignedTreeHead.from_json(bad)
    with pytest.raises(ValueError, match="base64"):
        b64decode("@@")


# --- bad input: typed errors, never a wrong proof ---------------------------------------------


@pytest.fixture
def small_log(log_services: Services) -> Services:
    """Ten entries; heads published at sizes 4 and 10 only."""
    with db.transaction(log_services.sessions) as session:
        append_entries(session, [status_entry(i) for i in range(4)])
        publish_sth(session, log_services.pki.log_key)
        append_entries(session, [status_entry(i) for i in range(4, 10)])
        publish_sth(session, log_services.pki.log_key)
    return log_services


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"leaf_index": "10", "tree_size": "10"}, "not in a tree of size 10"),
        ({"leaf_index": "-1", "tree_size": "10"}, "leaf_index must not be negative"),
        ({"leaf_index": "99999999999999999999999", "tree_size": "10"}, "whole number"),
        ({"leaf_index": "9223372036854775808", "tree_size": "10"}, "whole number"),
        ({"leaf_index": "1e3", "tree_size": "10"}, "whole number"),
        ({"leaf_index": "0", "tree_size": "0"}, "tree_size must be at least 1"),
        (
            {"leaf_index": "0", "tree_size": "5"},
            "No signed tree head was published for tree size 5",
        ),
        ({"leaf_index": "0", "tree_size": "11"}, "No signed tree head was published"),
        ({"tree_size": "10"}, "exactly one of leaf_index and entry_hash"),
        ({"leaf_index": "0", "entry_hash": "00" * 32}, "exactly one"),
        ({"entry_hash": "xyz"}, "64 hex digits"),
    ],
)
def test_bad_inclusion_requests_name_the_problem(
    small_log: Services, kwargs: dict[str, str], message: str
) -> None:
    with small_log.sessions() as session, pytest.raises(LogRequestError, match=message):
        inclusion_json(session, **kwargs)


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        ("10", "4", r"first \(10\) must not be greater than second \(4\)"),
        ("0", "4", "first must be at least 1"),
        ("-4", "10", "first must not be negative"),
        ("4", "9", "No signed tree head was published for tree size 9"),
        ("3", "10", "No signed tree head was published for tree size 3"),
        ("4", "18446744073709551616", "whole number"),
        (None, "10", "first is required"),
        ("four", "10", "whole number"),
    ],
)
def test_bad_consistency_requests_name_the_problem(
    small_log: Services, first: str | None, second: str, message: str
) -> None:
    with small_log.sessions() as session, pytest.raises(LogRequestError, match=message):
        consistency_json(session, first=first, second=second)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("5", "5", "must be less than end"),
        ("10", "20", "beyond the latest signed tree head, of size 10"),
        ("-1", "3", "must not be negative"),
        ("0", "x", "whole number"),
    ],
)
def test_bad_entries_requests_name_the_problem(
    small_log: Services, start: str, end: str, message: str
) -> None:
    with small_log.sessions() as session, pytest.raises(LogRequestError, match=message):
        entries_json(session, start=start, end=end)


def test_nothing_is_served_before_the_first_head(log_services: Services) -> None:
    with log_services.sessions() as session:
        with pytest.raises(LogNotFoundError, match="not published a signed tree head"):
            sth_json(session)
        with pytest.raises(LogNotFoundError):
            entries_json(session, start=0, end=1)


def test_json_bodies_verify(small_log: Services) -> None:
    public_key = small_log.pki.log_key.public_key()
    with small_log.sessions() as session:
        sth = SignedTreeHead.from_json(sth_json(session))
        verify_sth(sth, public_key)
        page = entries_json(session, start=0, end=1000)
        assert (page["start"], page["end"]) == (0, 10)
        blobs = [b64decode(e["entry"]) for e in page["entries"]]
        assert root_of([leaf_hash(b) for b in blobs]) == sth.root_hash
        by_hash = inclusion_json(session, entry_hash=leaf_hash(blobs[7]).hex())
        by_b64 = inclusion_json(
            session, entry_hash=base64.b64encode(leaf_hash(blobs[7])).decode(), tree_size="10"
        )
        assert by_hash == by_b64
        assert by_hash["leaf_index"] == 7
        path = [b64decode(h) for h in by_hash["audit_path"]]
        verify_inclusion(leaf_hash(blobs[7]), 7, 10, path, sth.root_hash)
        old = inclusion_json(session, leaf_index=2, tree_size=4)
        assert old["sth"]["tree_size"] == 4
        proof = consistency_json(session, first="4", second="10")
        old_root = b64decode(old["sth"]["sha256_root_hash"])
        verify_consistency(
            4, 10, old_root, sth.root_hash, [b64decode(h) for h in proof["consistency"]]
        )
        assert consistency_json(session, first=10, second=10)["consistency"] == []
        assert entries_json(session, start=3, end=5)["end"] == 5
        assert [i for i, _ in entries(session, 8, 100)] == [8, 9]
        with pytest.raises(LogNotFoundError, match="No entry with hash"):
            inclusion_json(session, entry_hash=leaf_hash(blobs[7]).hex(), tree_size="4")
        key = log_key_json(public_key)
        assert key["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")


def test_a_damaged_log_refuses_proofs_instead_of_giving_wrong_ones(small_log: Services) -> None:
    with db.transaction(small_log.sessions) as session:
        session.execute(update(LogLeaf).where(LogLeaf.leaf_index == 6).values(entry=b"{}"))
        session.execute(delete(LogNode).where(LogNode.level == 1, LogNode.node_index == 3))
    with small_log.sessions() as session:
        with pytest.raises(LogIntegrityError, match="disagrees with its signed tree head"):
            inclusion_proof(session, 6, 10)
        with pytest.raises(LogIntegrityError, match="missing the subtree of level 1 at 3"):
            inclusion_proof(session, 5, 10)
        assert inclusion_proof(session, 9, 10)


def test_state_row_is_made_when_missing(log_services: Services) -> None:
    with db.transaction(log_services.sessions) as session:
        session.execute(delete(LogState))
    with db.transaction(log_services.sessions) as session:
        assert append_entry(session, status_entry(0)) == 0
    with log_services.sessions() as session:
        assert tree_size(session) == 1


# --- the factories the use cases call -------------------------------------------------------


def self_signed_der() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "seal")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(T0)
        .not_valid_after(T0 + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(Encoding.DER)


def test_factories_record_what_the_rows_say() -> None:
    certificate = Certificate(
        id="crt_1",
        number="N-1",
        type_code="business_licence",
        seal_id="seal_1",
        pdf_sha256="a" * 64,
        signed_digest="b" * 64,
        status="valid",
        issued_at=T0,
    )
    issued = LogEntry.certificate_issued(certificate, department_code="D")
    assert (issued.kind, issued.certificate_number, issued.time) == (
        LogEntryKind.CERTIFICATE_ISSUE,
        "N-1",
        T0,
    )
    certificate.status = "revoked"
    changed = LogEntry.certificate_status_changed(
        certificate, department_code="D", previous_status="valid", reason="吊销", time=T0
    )
    assert (changed.status, changed.previous_status) == ("revoked", "valid")
    assert changed.reason == "privilegeWithdrawn"
    seal = Seal(id="seal_2", serial_number="07", certificate_der=self_signed_der(), created_at=T0)
    assert LogEntry.seal_created(seal, department_code="D").kind == LogEntryKind.SEAL_CREATE
    seal.replaces_id = "seal_1"
    rotated = LogEntry.seal_created(seal, department_code="D")
    assert rotated.kind == LogEntryKind.KEY_ROTATE
    assert rotated.key_sha256 is not None
    assert len(rotated.key_sha256) == 64
    seal.revocation_reason = "keyCompromise"
    revoked = LogEntry.seal_revoked(seal, department_code="D", time=T0)
    assert revoked.reason == "keyCompromise"
    document = SealedDocument(
        id="doc_1", seal_id="seal_2", pdf_sha256="c" * 64, signed_digest="d" * 64, created_at=T0
    )
    assert LogEntry.document_sealed(document, department_code="D").document_id == "doc_1"
    for entry in (issued, changed, rotated, revoked):
        assert LogEntry.from_bytes(entry.to_bytes()) == entry


def test_factories_refuse_an_unflushed_row() -> None:
    document = SealedDocument(id="doc_1", seal_id="s", pdf_sha256="c" * 64, signed_digest="d" * 64)
    with pytest.raises(ValueError, match="not flushed yet"):
        LogEntry.document_sealed(document, department_code="D")


def test_publisher_thread_signs_heads_while_entries_arrive(log_services: Services) -> None:
    publisher = TreeHeadPublisher(
        sessions=log_services.sessions,
        log_key=log_services.pki.log_key,
        every_seconds=0.2,
        tick_seconds=0.05,
    )
    publisher.start()
    try:
        for i in range(3):
            with db.transaction(log_services.sessions) as session:
                append_entry(session, status_entry(i))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with log_services.sessions() as session:
                    latest = latest_sth(session)
                if latest is not None and latest.tree_size == i + 1:
                    break
                time.sleep(0.05)
            assert latest is not None
            assert latest.tree_size == i + 1
    finally:
        publisher.stop()


def test_publisher_dates_its_heads_by_the_clock_it_is_given(log_services: Services) -> None:
    publisher = TreeHeadPublisher(
        sessions=log_services.sessions,
        log_key=log_services.pki.log_key,
        every_seconds=0.2,
        tick_seconds=0.05,
        clock=at(0),
    )
    publisher.start()
    try:
        deadline = time.monotonic() + 10
        latest = None
        while latest is None and time.monotonic() < deadline:
            time.sleep(0.05)
            with log_services.sessions() as session:
                latest = latest_sth(session)
    finally:
        publisher.stop()
    assert latest is not None
    assert latest.time == T0


def test_a_certificates_entries_come_with_checked_proofs(log_services: Services) -> None:
    key = log_services.pki.log_key
    with db.transaction(log_services.sessions) as session:
        append_entries(session, [status_entry(i) for i in range(5)])
        append_entry(session, status_entry(3))
        publish_sth(session, key)
        append_entry(session, status_entry(3))
    with log_services.sessions() as session:
        body = subject_proofs_json(session, "crt_3", public_key=key.public_key())
        assert [e["leaf_index"] for e in body["entries"]] == [3, 5]
        assert [e["leaf_index"] for e in body["pending"]] == [6]
        assert body["entries"][0]["entry"]["certificate_id"] == "crt_3"
        sth = SignedTreeHead.from_json(body["sth"])
        verify_inclusion(
            b64decode(body["entries"][1]["leaf_hash"]),
            5,
            sth.tree_size,
            [b64decode(h) for h in body["entries"][1]["audit_path"]],
            sth.root_hash,
        )
        assert subject_proofs_json(session, "crt_9", public_key=key.public_key())["entries"] == []
        other = ec.generate_private_key(ec.SECP256R1()).public_key()
        with pytest.raises(ProofVerificationError, match="does not verify"):
            subject_proofs_json(session, "crt_3", public_key=other)


def test_a_status_change_enters_the_log_with_its_reasons_kind_not_its_text() -> None:
    certificate = Certificate(id="crt_1", number="N-1", type_code="business_licence")
    certificate.status = "suspended"
    entry = LogEntry.certificate_status_changed(
        certificate,
        department_code="D",
        previous_status="valid",
        reason="核查 张三 的投诉 13800000000",
        time=T0,
    )
    assert entry.reason == "other"
    assert "张三" not in entry.to_bytes().decode()
