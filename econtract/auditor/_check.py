"""``check``: hold the log to every stored head and name any entry changed since."""

from __future__ import annotations

from collections.abc import Sequence
from difflib import SequenceMatcher
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from econtract.auditor._client import LogClient, open_log
from econtract.auditor._fetch import download, shrunk
from econtract.auditor._findings import UNAVAILABLE, AuditError, AuditResult, Finding, b64, once
from econtract.auditor._keys import trusted_key
from econtract.auditor._store import AuditStore
from econtract.translog import (
    EMPTY_ROOT,
    CompactRange,
    LogEntry,
    LogError,
    SignedTreeHead,
    inclusion_ranges,
    root_of,
    verify_consistency,
    verify_inclusion,
    verify_sth,
)


def _describe(blob: bytes | None) -> str:
    if blob is None:
        return ""
    try:
        entry = LogEntry.from_bytes(blob)
    except LogError:
        return " (not a valid log entry)"
    subject = entry.certificate_id or entry.document_id or entry.seal_id or ""
    extra = f" {entry.status}" if entry.status else ""
    return f" ({entry.kind.value} {subject}{extra})".replace("  ", " ")


def compare_leaves(
    seen: Sequence[bytes], served: Sequence[bytes], blobs: Sequence[bytes] | None = None
) -> list[Finding]:
    """Name every entry that differs between leaf hashes seen before and those served now.

    ``seen`` is what earlier fetches stored (verified against signed heads); ``served`` what
    the log serves now, in its order; ``blobs`` the served entries, to say what an entry now
    reads. Entries appended after ``seen`` are expected and not reported.
    """
    p = 0
    limit = min(len(seen), len(served))
    while p < limit and seen[p] == served[p]:
        p += 1
    if p == len(seen):
        return []
    old, new = list(seen[p:]), list(served[p:])
    old_only: dict[bytes, int] = {}
    new_only: dict[bytes, int] = {}
    appended: dict[bytes, int] = {}
    replaced: list[tuple[int, int]] = []
    matcher = SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if tag == "insert" and i1 == len(old):
            # Entries after everything seen before: growth, unless one of them moved there.
            appended.update((new[j], p + j) for j in range(j1, j2))
            continue
        old_only.update((old[i], p + i) for i in range(i1, i2))
        for j in range(j1, j2):
            new_only.setdefault(new[j], p + j)
        if tag == "replace":
            replaced += [(p + i1 + k, p + j1 + k) for k in range(min(i2 - i1, j2 - j1))]
    now_at = {**appended, **new_only}
    moved = {h for h in old_only if h in now_at}
    findings: list[Finding] = []

    def reads(j: int) -> str:
        return _describe(blobs[j] if blobs is not None and j < len(blobs) else None)

    for h in moved:
        i, j = old_only[h], now_at[h]
        findings.append(
            Finding(
                "reordered",
                f"Entry {i} (leaf hash {b64(h)}) has moved to index {j}{reads(j)}.",
                leaf_index=i,
            )
        )
    paired_old: set[int] = set()
    paired_new: set[int] = set()
    for i, j in replaced:
        if seen[i] in moved or served[j] in moved:
            continue
        paired_old.add(i)
        paired_new.add(j)
        where = "" if i == j else f", now at index {j}"
        findings.append(
            Finding(
                "rewritten",
                f"Entry {i} was rewritten: its leaf hash was {b64(seen[i])} and is now "
                f"{b64(served[j])}{where}{reads(j)}.",
                leaf_index=i,
            )
        )
    for h, i in old_only.items():
        if h not in moved and i not in paired_old:
            findings.append(
                Finding(
                    "removed",
                    f"Entry {i} (leaf hash {b64(h)}) is gone from the log.",
                    leaf_index=i,
                )
            )
    for h, j in new_only.items():
        if h not in moved and j not in paired_new:
            findings.append(
                Finding(
                    "inserted",
                    f"An entry not seen before (leaf hash {b64(h)}) is at index {j}{reads(j)}.",
                    leaf_index=j,
                )
            )
    findings.sort(key=lambda f: (f.leaf_index if f.leaf_index is not None else -1, f.kind))
    return findings


def _roots_at(leaves: Sequence[bytes], sizes: set[int]) -> dict[int, bytes]:
    """MTH of every prefix of ``leaves`` whose length is in ``sizes``, in one pass."""
    roots = {0: EMPTY_ROOT} if 0 in sizes else {}
    tree = CompactRange()
    for value in leaves:
        tree.append(value)
        if tree.size in sizes:
            roots[tree.size] = tree.root()
    return roots


def _locate_by_proofs(
    log: LogClient, served: Sequence[bytes], sth: SignedTreeHead
) -> Finding | None:
    """Find the first entry that differs from what ``sth`` committed to, by bisection.

    Leaf ``m`` and everything before it are as committed when the log's inclusion proof for
    ``m`` verifies with the served leaf and each left sibling in it equals the root of the
    served leaves it covers; that holds up to the first difference and fails after it. Used
    when no earlier fetch stored the leaf hashes to compare with.
    """

    def intact_through(m: int) -> bool:
        if m >= len(served):
            return False
        try:
            proof = log.inclusion(m, sth.tree_size)
            verify_inclusion(served[m], m, sth.tree_size, proof, sth.root_hash)
        except (AuditError, LogError):
            return False
        ranges = inclusion_ranges(m, sth.tree_size)
        return all(
            root_of(served[a:b]) == value
            for (a, b), value in zip(ranges, proof, strict=True)
            if b <= m
        )

    lo, hi = 0, sth.tree_size
    while lo < hi:
        mid = (lo + hi) // 2
        if intact_through(mid):
            lo = mid + 1
        else:
            hi = mid
    if lo >= sth.tree_size:
        return None
    return Finding(
        "changed",
        f"Entry {lo} is not the entry the signed head of size {sth.tree_size} committed to "
        f"(located with inclusion proofs; no earlier fetch stored its leaf hash).",
        leaf_index=lo,
    )


def check(
    base_url: str, store_dir: Path | str, *, log_key: PublicKeyTypes | None = None
) -> AuditResult:
    """Hold the log to every head stored by ``fetch``; name any entry changed since.

    Verifies the current head's signature (with ``log_key`` when given, else the key pinned
    by the first fetch) and its consistency with every stored head, downloads every entry,
    recomputes the root at every stored size, and compares the leaf hashes with those stored.
    The store is read, not written; each finding is reported once.

    Raises :class:`AuditUsageError` for a URL that is not HTTP or a store that ``fetch`` did
    not write.
    """
    store = AuditStore(Path(store_dir))
    findings: list[Finding] = []
    heads: list[SignedTreeHead] = []
    with open_log(base_url) as log:
        store.require()
        try:
            key = trusted_key(log, store, findings, pin=False, given=log_key)
            current = log.sth()
        except AuditError as exc:
            return AuditResult(0, 0, 0, once([*findings, Finding(UNAVAILABLE, exc.message)]))
        try:
            verify_sth(current, key)
        except LogError as exc:
            return AuditResult(0, 0, 0, once([*findings, Finding("bad-signature", exc.message)]))
        for name, body in store.heads():
            try:
                head = SignedTreeHead.from_json(body)
                verify_sth(head, key)
            except LogError as exc:
                findings.append(
                    Finding("bad-signature", f"The stored head {name} does not verify: {exc}")
                )
                continue
            heads.append(head)
        findings += _check_heads(log, heads, current)
        try:
            blobs, served = download(log, 0, current.tree_size, findings)
        except AuditError as exc:
            findings.append(Finding(UNAVAILABLE, exc.message))
            return AuditResult(current.tree_size, len(heads), 0, once(findings))
        for index, blob in enumerate(blobs):
            try:
                LogEntry.from_bytes(blob)
            except LogError as exc:
                findings.append(
                    Finding(
                        "malformed-entry",
                        f"Entry {index} is not a valid log entry: {exc}",
                        leaf_index=index,
                    )
                )
        if len(served) != current.tree_size:
            findings.append(
                Finding(
                    "removed",
                    f"The log serves {len(served)} entries under a signed head of size "
                    f"{current.tree_size}.",
                )
            )
        roots = _roots_at(served, {h.tree_size for h in heads} | {current.tree_size})
        mismatched = [
            h for h in (*heads, current) if roots.get(h.tree_size, h.root_hash) != h.root_hash
        ]
        for head in sorted(set(mismatched), key=lambda h: (h.tree_size, h.timestamp)):
            findings.append(
                Finding(
                    "root-mismatch",
                    f"The entries served do not hash to the signed head of size "
                    f"{head.tree_size} ({head.time.isoformat(timespec='milliseconds')}).",
                )
            )
        named = compare_leaves(store.leaves(), served, blobs)
        findings += named
        if (mismatched or len(served) < current.tree_size) and not named:
            located = _locate_by_proofs(log, served, current)
            if located is not None:
                findings.append(located)
    return AuditResult(current.tree_size, len(heads), len(served), once(findings))


def _check_heads(
    log: LogClient, heads: Sequence[SignedTreeHead], current: SignedTreeHead
) -> list[Finding]:
    """Each stored head against the current one: same size, same root; smaller, a proof."""
    findings: list[Finding] = []
    checked: set[tuple[int, bytes]] = set()
    for head in sorted(heads, key=lambda h: (h.tree_size, h.timestamp)):
        if (head.tree_size, head.root_hash) in checked:
            continue
        checked.add((head.tree_size, head.root_hash))
        if head.tree_size > current.tree_size:
            findings.append(shrunk(head.tree_size, current))
        elif head.tree_size == current.tree_size:
            if head.root_hash != current.root_hash:
                findings.append(
                    Finding(
                        "fork",
                        f"The log signed two different roots for size {head.tree_size} "
                        f"(stored head of {head.time.isoformat(timespec='milliseconds')} "
                        "and the current one).",
                    )
                )
        elif head.tree_size == 0:
            if head.root_hash != EMPTY_ROOT:
                findings.append(Finding("inconsistent", "A stored empty head has a root."))
        else:
            try:
                proof = log.consistency(head.tree_size, current.tree_size)
                verify_consistency(
                    head.tree_size, current.tree_size, head.root_hash, current.root_hash, proof
                )
            except (AuditError, LogError) as exc:
                findings.append(
                    Finding(
                        "inconsistent",
                        f"The stored head of size {head.tree_size} is not proven consistent "
                        f"with the current head of size {current.tree_size}: {exc}",
                    )
                )
    return findings
