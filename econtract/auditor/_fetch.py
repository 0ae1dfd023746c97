"""``fetch``: store the log's current signed head and the leaf hashes it covers."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from econtract.auditor._client import LogClient, open_log
from econtract.auditor._findings import UNAVAILABLE, AuditError, FetchResult, Finding, once
from econtract.auditor._keys import trusted_key
from econtract.auditor._store import AuditStore
from econtract.translog import LogError, SignedTreeHead, leaf_hash, root_of, verify_sth


def download(
    log: LogClient, start: int, end: int, findings: list[Finding]
) -> tuple[list[bytes], list[bytes]]:
    """Entries ``[start, end)`` in the order served, and their leaf hashes.

    The list is positional: a skipped index is a finding, and the entries after it move up,
    which is how a removal shows when the leaf hashes are compared.
    """
    blobs: list[bytes] = []
    expected = start
    for index, blob in log.entries(start, end):
        if index != expected:
            findings.append(
                Finding(
                    "missing-index",
                    f"The log's listing jumps from index {expected - 1} to {index}.",
                    leaf_index=expected,
                )
            )
        expected = index + 1
        blobs.append(blob)
    return blobs, [leaf_hash(b) for b in blobs]


def fetch(
    base_url: str, store_dir: Path | str, *, log_key: PublicKeyTypes | None = None
) -> FetchResult:
    """Store the log's current signed tree head and the leaf hashes it covers.

    The head is stored only if the log key signed it (``log_key`` when given, else the key
    pinned on the first fetch); new leaf hashes only if, with the ones stored before, they hash
    to the head's root. Run it often: ``check`` can name a changed entry exactly when an
    earlier fetch stored its leaf hash. The store is created when it does not exist.

    Raises :class:`AuditUsageError` for a URL that is not HTTP or a store path that is a file.
    """
    store = AuditStore(Path(store_dir))
    with open_log(base_url) as log:
        store.create()
        findings: list[Finding] = []
        try:
            key = trusted_key(log, store, findings, pin=True, given=log_key)
            sth = log.sth()
        except AuditError as exc:
            return FetchResult(None, findings=once([*findings, Finding(UNAVAILABLE, exc.message)]))
        try:
            verify_sth(sth, key)
        except LogError as exc:
            return FetchResult(
                None, findings=once([*findings, Finding("bad-signature", exc.message)])
            )
        new_head = store.save_head(sth)
        known = store.leaves()
        added = 0
        if sth.tree_size < len(known):
            findings.append(shrunk(len(known), sth))
        elif sth.tree_size > len(known):
            try:
                _, fresh = download(log, len(known), sth.tree_size, findings)
            except AuditError as exc:
                findings.append(Finding(UNAVAILABLE, exc.message))
                fresh = []
            if fresh and root_of([*known, *fresh]) == sth.root_hash:
                store.append_leaves(len(known), fresh)
                added = len(fresh)
            elif fresh:
                findings.append(
                    Finding(
                        "root-mismatch",
                        f"The entries the log serves do not hash to its signed head of size "
                        f"{sth.tree_size} together with the {len(known)} leaf hashes stored "
                        "before; none stored. Run check to name the entries.",
                    )
                )
        elif root_of(known) != sth.root_hash:
            findings.append(
                Finding(
                    "fork",
                    f"The signed head of size {sth.tree_size} does not match the leaf hashes "
                    "stored for that size before.",
                )
            )
    return FetchResult(sth, new_head=new_head, leaves_added=added, findings=once(findings))


def shrunk(known: int, sth: SignedTreeHead) -> Finding:
    return Finding(
        "shrunk",
        f"The log once covered {known} entries; its current signed head covers {sth.tree_size}.",
    )
