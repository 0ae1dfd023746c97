"""The log in the registry database: appending, roots, proofs and entries.

Every function takes the caller's session and never commits: an entry is appended in the
same transaction as the change it records, and disappears with it on rollback.

Storage: ``log_leaves`` holds each entry and its leaf hash; ``log_nodes`` holds the hash of
every complete (perfect) subtree, written once when its last leaf arrives. Any root, inclusion
proof or consistency proof is then a fold of O(log n) stored hashes, read in two queries.
``log_state`` keeps, beside the size, the right edge of the tree (the hashes an append starts
from), so that an append, which every other writer waits for, reads one row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

from sqlalchemy import Table, and_, func, insert, or_, select, update
from sqlalchemy.orm import Session

from econtract.translog._entry import LogEntry
from econtract.translog._errors import (
    LogIntegrityError,
    LogNotFoundError,
    LogRequestError,
    ProofVerificationError,
)
from econtract.translog._merkle import (
    MAX_TREE_SIZE,
    CompactRange,
    Subtree,
    consistency_ranges,
    fold_subtrees,
    inclusion_ranges,
    leaf_hash,
    perfect_subtrees,
    verify_consistency,
    verify_inclusion,
)
from econtract.translog._tables import LogLeaf, LogNode, LogState, LogTreeHead

#: The most entries one call to ``entries`` returns; a client pages with ``start``.
MAX_PAGE = 1000
#: Rows per INSERT statement in a batch append (SQLite allows 32766 bound parameters).
_INSERT_CHUNK = 5000
_STATE_ID = 1
_LEAVES = cast(Table, LogLeaf.__table__)
_NODES = cast(Table, LogNode.__table__)
_STATE = cast(Table, LogState.__table__)


def check_number(name: str, value: object, *, minimum: int = 0) -> int:
    """``value`` as an int in ``[minimum, MAX_TREE_SIZE]``, or ``LogRequestError``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise LogRequestError(f"{name} must be an integer.", parameter=name)
    if value < minimum:
        raise LogRequestError(f"{name} must be at least {minimum}; it is {value}.", parameter=name)
    if value > MAX_TREE_SIZE:
        raise LogRequestError(
            f"{name} must be at most {MAX_TREE_SIZE}; it is {value}.", parameter=name
        )
    return value


def lock_tree_size(session: Session) -> int:
    """The tree size, with the log's state row locked until the transaction ends.

    On PostgreSQL this is ``SELECT ... FOR UPDATE``; SQLite has no row locks, and the
    transaction's write lock (``BEGIN IMMEDIATE`` in ``db.transaction``) serializes instead.
    """
    return _lock_state(session)[0]


def _lock_state(session: Session) -> tuple[int, list[bytes] | None]:
    """The tree size and, when the state row keeps it for that size, its right edge (the
    perfect subtrees' hashes), with the row locked as by :func:`lock_tree_size`."""
    row = session.execute(
        select(LogState.tree_size, LogState.edge_size, LogState.edge)
        .where(LogState.id == _STATE_ID)
        .with_for_update()
    ).one_or_none()
    if row is None:
        # The migration creates the row; this covers a schema made with ``create_all``.
        session.execute(insert(LogState).values(id=_STATE_ID, tree_size=0))
        return 0, None
    size, edge_size, edge = row
    if edge_size != size or edge is None:
        # No edge, or one left behind by a writer that changed the size alone.
        return size, None
    hashes = [edge[at : at + 32] for at in range(0, len(edge), 32)]
    if len(edge) % 32 or len(hashes) != size.bit_count():
        return size, None
    return size, hashes


def tree_size(session: Session) -> int:
    """The number of entries appended (committed or in this transaction), without locking."""
    size = session.scalar(select(LogState.tree_size).where(LogState.id == _STATE_ID))
    return size or 0


def append_entry(session: Session, entry: LogEntry) -> int:
    """Append ``entry`` to the log in the caller's transaction; return its leaf index."""
    return append_entries(session, [entry]).start


def append_entries(session: Session, entries: Iterable[LogEntry]) -> range:
    """Append entries in order in the caller's transaction; return their leaf indexes.

    The new leaves and the subtrees they complete are computed in memory from the tree's
    right edge (O(log n) stored hashes) and inserted in bulk.
    """
    batch = list(entries)
    return append_encoded(session, [e.to_bytes() for e in batch], [e.subject for e in batch])


def append_encoded(
    session: Session, blobs: Sequence[bytes], subjects: Sequence[str | None] | None = None
) -> range:
    """Append entries given as canonical bytes (callers normally use ``append_entries``)."""
    if subjects is None:
        subjects = [None] * len(blobs)
    if len(subjects) != len(blobs):
        raise ValueError("One subject (or None) per entry.")
    if not blobs:
        return range(0)
    size, edge = _lock_state(session)
    if size + len(blobs) > MAX_TREE_SIZE:
        raise LogRequestError("The log is full.")
    if edge is None:
        subtrees = perfect_subtrees(0, size)
        stored = _subtree_hashes(session, subtrees)
        edge = [stored[s] for s in subtrees]
    tree = CompactRange(size, edge)
    leaves: list[dict[str, object]] = []
    nodes: list[dict[str, object]] = []
    for index, (blob, subject) in enumerate(zip(blobs, subjects, strict=True), start=size):
        value = leaf_hash(blob)
        leaves.append({"leaf_index": index, "leaf_hash": value, "entry": blob, "subject": subject})
        for level, node_index, node in tree.append(value):
            nodes.append({"level": level, "node_index": node_index, "hash": node})
    connection = session.connection()
    # Core inserts: the ORM's unit of work would cost more than the hashing.
    for rows, table in ((leaves, _LEAVES), (nodes, _NODES)):
        for at in range(0, len(rows), _INSERT_CHUNK):
            connection.execute(insert(table), rows[at : at + _INSERT_CHUNK])
    connection.execute(
        update(_STATE)
        .where(_STATE.c.id == _STATE_ID)
        .values(tree_size=tree.size, edge_size=tree.size, edge=b"".join(tree.hashes))
    )
    return range(size, size + len(blobs))


def _subtree_hashes(session: Session, subtrees: Iterable[Subtree]) -> dict[Subtree, bytes]:
    """The stored hashes of perfect subtrees, in two queries (leaves, nodes)."""
    wanted = set(subtrees)
    leaves = sorted(index for level, index in wanted if level == 0)
    nodes = sorted((level, index) for level, index in wanted if level > 0)
    found: dict[Subtree, bytes] = {}
    if leaves:
        rows = session.execute(
            select(LogLeaf.leaf_index, LogLeaf.leaf_hash).where(LogLeaf.leaf_index.in_(leaves))
        )
        found.update(((0, index), value) for index, value in rows)
    if nodes:
        by_level: dict[int, list[int]] = {}
        for level, index in nodes:
            by_level.setdefault(level, []).append(index)
        # One ``level = ? AND node_index IN (...)`` term per level: SQLite answers a row-value
        # ``IN (VALUES ...)`` with a full scan, but each of these with the primary key.
        node_rows = session.execute(
            select(LogNode.level, LogNode.node_index, LogNode.hash).where(
                or_(
                    *(
                        and_(LogNode.level == level, LogNode.node_index.in_(indexes))
                        for level, indexes in by_level.items()
                    )
                )
            )
        )
        found.update(((level, index), value) for level, index, value in node_rows)
    missing = wanted - found.keys()
    if missing:
        level, index = min(missing)
        where = f"leaf {index}" if level == 0 else f"the subtree of level {level} at {index}"
        raise LogIntegrityError(f"The stored log is missing {where}.")
    return found


def _range_hashes(session: Session, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    """MTH of each leaf range (each aligned as the RFC's recursion makes them)."""
    plans = [perfect_subtrees(start, end) for start, end in ranges]
    stored = _subtree_hashes(session, (s for plan in plans for s in plan))
    return [fold_subtrees([stored[s] for s in plan]) for plan in plans]


def root_hash(session: Session, size: int) -> bytes:
    """MTH of the first ``size`` entries (any size up to the current one)."""
    check_number("tree_size", size)
    current = tree_size(session)
    if size > current:
        raise LogRequestError(
            f"tree_size {size} is beyond the log's {current} entries.", parameter="tree_size"
        )
    return _range_hashes(session, [(0, size)])[0]


def published_root(session: Session, size: int, *, parameter: str = "tree_size") -> bytes:
    """The root hash of the latest signed tree head of ``size``; refuses unpublished sizes."""
    row = session.execute(
        select(LogTreeHead.root_hash)
        .where(LogTreeHead.tree_size == size)
        .order_by(LogTreeHead.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if row is None:
        raise LogRequestError(
            f"No signed tree head was published for tree size {size}; proofs are given only "
            "against a published size (GET /log/sth gives the latest).",
            parameter=parameter,
        )
    return row


def latest_published_size(session: Session) -> int | None:
    """The tree size of the latest signed tree head, or ``None`` before the first."""
    return session.scalar(select(LogTreeHead.tree_size).order_by(LogTreeHead.id.desc()).limit(1))


def _stored_entry(session: Session, index: int) -> bytes:
    entry = session.scalar(select(LogLeaf.entry).where(LogLeaf.leaf_index == index))
    if entry is None:
        raise LogIntegrityError(f"The stored log is missing entry {index}.")
    return entry


def inclusion_proof(session: Session, leaf_index: int, tree_size: int) -> list[bytes]:
    """PATH(leaf_index, D[tree_size]) (RFC 9162 2.1.3.1) against a published tree size.

    The proof is checked against the signed root before it is returned: a damaged log
    raises ``LogIntegrityError`` rather than hand out a proof that does not verify.
    """
    check_number("leaf_index", leaf_index)
    check_number("tree_size", tree_size, minimum=1)
    if leaf_index >= tree_size:
        raise LogRequestError(
            f"leaf_index {leaf_index} is not in a tree of size {tree_size} "
            f"(indexes run from 0 to {tree_size - 1}).",
            parameter="leaf_index",
        )
    root = published_root(session, tree_size)
    proof = _range_hashes(session, inclusion_ranges(leaf_index, tree_size))
    leaf = leaf_hash(_stored_entry(session, leaf_index))
    try:
        verify_inclusion(leaf, leaf_index, tree_size, proof, root)
    except ProofVerificationError:
        raise LogIntegrityError(
            f"The stored log disagrees with its signed tree head of size {tree_size} at "
            f"entry {leaf_index}; no proof is given."
        ) from None
    return proof


def inclusion_proofs(
    session: Session, leaves: Sequence[tuple[int, bytes]], tree_size: int, root: bytes
) -> list[list[bytes]]:
    """PATH(leaf_index, D[tree_size]) for several entries at once, against ``root`` (a signed
    head's, checked by the caller): two queries for the hashes of every proof, where
    :func:`inclusion_proof` takes four per proof. ``leaves`` are ``(leaf index, entry bytes)``, each
    index below ``tree_size``.

    Each proof is checked against ``root`` before it is returned, like ``inclusion_proof``:
    a damaged log raises ``LogIntegrityError``.
    """
    check_number("tree_size", tree_size, minimum=1)
    plans = [
        [perfect_subtrees(start, end) for start, end in inclusion_ranges(index, tree_size)]
        for index, _ in leaves
    ]
    stored = _subtree_hashes(session, (s for plan in plans for subtrees in plan for s in subtrees))
    proofs: list[list[bytes]] = []
    for (index, entry), plan in zip(leaves, plans, strict=True):
        proof = [fold_subtrees([stored[s] for s in subtrees]) for subtrees in plan]
        try:
            verify_inclusion(leaf_hash(entry), index, tree_size, proof, root)
        except ProofVerificationError:
            raise LogIntegrityError(
                f"The stored log disagrees with its signed tree head of size {tree_size} at "
                f"entry {index}; no proof is given."
            ) from None
        proofs.append(proof)
    return proofs


def consistency_proof(session: Session, first: int, second: int) -> list[bytes]:
    """PROOF(first, D[second]) (RFC 9162 2.1.4.1) between two published sizes.

    Checked against both signed roots before it is returned, like ``inclusion_proof``.
    """
    check_number("first", first, minimum=1)
    check_number("second", second, minimum=1)
    if first > second:
        raise LogRequestError(
            f"first ({first}) must not be greater than second ({second}).", parameter="first"
        )
    first_root = published_root(session, first, parameter="first")
    second_root = published_root(session, second, parameter="second")
    proof = _range_hashes(session, consistency_ranges(first, second))
    try:
        verify_consistency(first, second, first_root, second_root, proof)
    except ProofVerificationError:
        raise LogIntegrityError(
            f"The stored log cannot prove its tree heads of sizes {first} and {second} "
            "consistent; no proof is given."
        ) from None
    return proof


def leaf_index_of(session: Session, entry_hash: bytes, tree_size: int) -> int:
    """The first leaf index whose leaf hash is ``entry_hash``, within ``tree_size``."""
    index = session.scalar(
        select(func.min(LogLeaf.leaf_index)).where(
            LogLeaf.leaf_hash == entry_hash, LogLeaf.leaf_index < tree_size
        )
    )
    if index is None:
        raise LogNotFoundError(
            f"No entry with hash {entry_hash.hex()} is in the tree of size {tree_size}."
        )
    return index


def page_end(session: Session, start: int, end: int) -> int:
    """Where a page of entries from ``start`` stops: ``end``, the latest STH or ``MAX_PAGE``.

    Raises ``LogRequestError`` for a bad range and ``LogNotFoundError`` before the first STH.
    """
    check_number("start", start)
    check_number("end", end)
    if start >= end:
        raise LogRequestError(
            f"start ({start}) must be less than end ({end}); end is exclusive.", parameter="end"
        )
    published = latest_published_size(session)
    if published is None:
        raise LogNotFoundError("The log has not published a signed tree head yet.")
    if start >= published:
        raise LogRequestError(
            f"start ({start}) is beyond the latest signed tree head, of size {published}.",
            parameter="start",
        )
    return min(end, published, start + MAX_PAGE)


def entries(session: Session, start: int, end: int) -> list[tuple[int, bytes]]:
    """Entries ``[start, end)`` as ``(leaf index, canonical bytes)``, within the latest STH.

    At most ``MAX_PAGE`` are returned, and none past the latest signed tree head
    (``page_end`` says where the page stops); a client asks again from there.
    """
    end = page_end(session, start, end)
    rows = session.execute(
        select(LogLeaf.leaf_index, LogLeaf.entry)
        .where(LogLeaf.leaf_index >= start, LogLeaf.leaf_index < end)
        .order_by(LogLeaf.leaf_index)
    )
    return [(index, entry) for index, entry in rows]


def subject_entries(session: Session, subject: str, *, limit: int = 100) -> list[tuple[int, bytes]]:
    """The entries about ``subject`` (a certificate, document or seal id), oldest first."""
    rows = session.execute(
        select(LogLeaf.leaf_index, LogLeaf.entry)
        .where(LogLeaf.subject == subject)
        .order_by(LogLeaf.leaf_index)
        .limit(limit)
    )
    return [(index, entry) for index, entry in rows]
