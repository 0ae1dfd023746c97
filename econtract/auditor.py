"""The auditor's tool: watch the transparency log from outside, using only its public endpoints.

``fetch`` is run regularly (from cron, by anyone): it stores every signed tree head it sees,
after checking the log key's signature, and the leaf hashes of the entries those heads cover,
after checking that they hash to the signed root. ``check`` then holds the log to what it
signed: every stored head must be consistent with the current one, the entries the log serves
now must hash to every head, and any entry that differs from what an earlier fetch saw is
named: rewritten, removed, reordered or inserted.

The store is a plain directory::

    log_key.pem                       the log's public key, pinned on the first fetch
    heads/<size>-<timestamp>.json     every signed tree head seen, as served
    leaves.bin                        the leaf hash of every entry seen, 32 bytes each, in order

The log key is trusted on first use unless the auditor gives it (``log_key``, the command
line's ``--log-key FILE``, obtained out of band): then the given key is the only one heads are
checked with, and a log or a store holding another key is a finding.

Hashes are printed in base64, as ``GET /log/sth`` and the proofs carry them, so that a finding
can be matched with what the log serves. The command line's exit status is the result's
``exit_code``: 0 the log holds, 1 a finding, 3 the log could not be read (unreachable, or it
did not answer as the log does), 64 a usage error (``AuditUsageError``: a store that does not
exist, a URL that is not HTTP, a key file that is not a PEM public key).

Nothing here touches the registry: the tool talks HTTP (requests, the one HTTP client of the
installed package) to GET /log/key, /log/sth, /log/proof/consistency, /log/proof/inclusion and
/log/entries.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from econtract.errors import EContractError
from econtract.translog import (
    EMPTY_ROOT,
    CompactRange,
    LogEntry,
    LogError,
    SignedTreeHead,
    b64decode,
    inclusion_ranges,
    leaf_hash,
    log_key_pem,
    root_of,
    verify_consistency,
    verify_inclusion,
    verify_sth,
)

HASH_SIZE = 32

KEY_FILE = "log_key.pem"
HEADS_DIR = "heads"
LEAVES_FILE = "leaves.bin"

EXIT_OK = 0
"""Exit status: the log kept every promise its signed heads made."""
EXIT_FINDINGS = 1
"""Exit status: the auditor found the log broke a promise (rewritten, removed, forked...)."""
EXIT_UNREACHABLE = 3
"""Exit status: the log could not be read, so nothing was found and nothing proven."""
UNAVAILABLE = "unavailable"
"""The kind of finding for a log that could not be read."""

_TIMEOUT_SECONDS = 30.0


class AuditError(EContractError):
    """The log could not be audited: unreachable, or it answered with an error or garbage."""

    code = "audit"
    title = "The log could not be audited."


class AuditUsageError(EContractError):
    """The auditor was asked wrongly: a store that does not exist, a URL or key that is not one.

    ``parameter`` names the argument at fault (``store``, ``url`` or ``log-key``), which is
    also the command line's option.
    """

    code = "usage"
    title = "The auditor was asked for something it cannot check."

    def __init__(self, message: str, *, parameter: str) -> None:
        super().__init__(message)
        self.parameter = parameter


@dataclass(frozen=True)
class Finding:
    """One thing the auditor found wrong, in a sentence; ``leaf_index`` names the entry."""

    kind: str
    """``rewritten``, ``removed``, ``reordered``, ``inserted``, ``inconsistent``, ``fork``,
    ``shrunk``, ``root-mismatch``, ``bad-signature``, ``key-changed`` (the log serves another
    key than the one pinned on the first fetch), ``key-mismatch`` (the log or the store holds
    another key than the one given), ``malformed-entry``, ``missing-index``, ``changed``
    (located by proofs) or ``unavailable`` (the log could not be read)."""
    message: str
    """The finding for people, as one whole sentence."""
    leaf_index: int | None = None
    """The entry concerned, when it is one entry."""

    def line(self) -> str:
        """One printable line."""
        return f"{self.kind}: {self.message}"


def _exit_code(findings: Sequence[Finding]) -> int:
    if not findings:
        return EXIT_OK
    if all(f.kind == UNAVAILABLE for f in findings):
        return EXIT_UNREACHABLE
    return EXIT_FINDINGS


def _once(findings: Sequence[Finding]) -> tuple[Finding, ...]:
    """``findings`` in order, each once: two routes to the same fact make one finding."""
    return tuple(dict.fromkeys(findings))


def _b64(value: bytes) -> str:
    """A hash as ``/log/sth`` and the proofs carry it."""
    return base64.b64encode(value).decode("ascii")


@dataclass(frozen=True)
class FetchResult:
    """What one ``fetch`` saw and stored."""

    sth: SignedTreeHead | None
    """The current signed tree head, when it verified."""
    new_head: bool = False
    """Whether the head was not in the store before."""
    leaves_added: int = 0
    """Leaf hashes added to the store (all verified against the head)."""
    findings: tuple[Finding, ...] = ()
    """What went wrong, if anything."""

    @property
    def ok(self) -> bool:
        """Nothing went wrong."""
        return not self.findings

    @property
    def exit_code(self) -> int:
        """``EXIT_OK``, ``EXIT_FINDINGS``, or ``EXIT_UNREACHABLE`` when the log could not be
        read and nothing else was found."""
        return _exit_code(self.findings)

    def summary(self) -> str:
        """Lines for people: the head, then one line per finding."""
        lines = []
        if self.sth is not None:
            lines.append(
                f"tree head: size {self.sth.tree_size}, "
                f"{self.sth.time.isoformat(timespec='milliseconds')}, "
                f"root {_b64(self.sth.root_hash)} "
                f"({'new' if self.new_head else 'seen before'}); "
                f"{self.leaves_added} leaf hashes stored"
            )
        lines += [f.line() for f in self.findings]
        return "\n".join(lines)


@dataclass(frozen=True)
class AuditResult:
    """The verdict of ``check``: OK when there are no findings."""

    tree_size: int
    """The size of the log's current signed tree head (0 when there was none)."""
    heads_checked: int
    """Stored tree heads compared with the current one."""
    entries_checked: int
    """Entries downloaded and hashed."""
    findings: tuple[Finding, ...] = field(default=())
    """Everything found wrong, ordered by entry where there is one."""

    @property
    def ok(self) -> bool:
        """The log kept every promise its signed heads made."""
        return not self.findings

    @property
    def exit_code(self) -> int:
        """``EXIT_OK``, ``EXIT_FINDINGS``, or ``EXIT_UNREACHABLE`` when the log could not be
        read and nothing else was found."""
        return _exit_code(self.findings)

    def summary(self) -> str:
        """The bottom line, then one line per finding."""
        if self.exit_code == EXIT_UNREACHABLE:
            return "\n".join(
                ["NOT CHECKED: the log could not be read", *(f.line() for f in self.findings)]
            )
        verdict = "OK" if self.ok else f"FAILED ({len(self.findings)} findings)"
        head = (
            f"{verdict}: {self.heads_checked} stored tree heads checked against the current "
            f"head of size {self.tree_size}; {self.entries_checked} entries recomputed"
        )
        return "\n".join([head, *(f.line() for f in self.findings)])


# --- the store ------------------------------------------------------------------------------


class _Store:
    """The auditor's directory (see the module's docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.heads_dir = directory / HEADS_DIR
        self.leaves_path = directory / LEAVES_FILE
        self.key_path = directory / KEY_FILE

    def create(self) -> None:
        if self.directory.exists() and not self.directory.is_dir():
            raise AuditUsageError(f"{self.directory} is not a directory.", parameter="store")
        self.heads_dir.mkdir(parents=True, exist_ok=True)

    def require(self) -> None:
        """Refuse a path that is not a store ``fetch`` wrote: checking against nothing would
        prove nothing, and a mistyped path must not pass for an empty store."""
        if not self.directory.exists():
            raise AuditUsageError(
                f"The store {self.directory} does not exist; "
                "run `econtract audit fetch` with it first.",
                parameter="store",
            )
        if not self.heads_dir.is_dir():
            raise AuditUsageError(
                f"{self.directory} is not a store written by `econtract audit fetch` "
                f"(it has no {HEADS_DIR}/ directory).",
                parameter="store",
            )

    def key_pem(self) -> str | None:
        return self.key_path.read_text() if self.key_path.exists() else None

    def save_key(self, pem: str) -> None:
        self.key_path.write_text(pem)

    def heads(self) -> list[tuple[str, dict[str, Any] | None]]:
        """Every stored head file's name and JSON (``None`` when it does not parse)."""
        if not self.heads_dir.exists():
            return []
        out: list[tuple[str, dict[str, Any] | None]] = []
        for path in sorted(self.heads_dir.glob("*.json")):
            try:
                out.append((path.name, json.loads(path.read_text())))
            except ValueError:
                out.append((path.name, None))
        return out

    def save_head(self, sth: SignedTreeHead) -> bool:
        """Store ``sth``; ``False`` if it was already stored."""
        path = self.heads_dir / f"{sth.tree_size:020d}-{sth.timestamp:015d}.json"
        if path.exists():
            return False
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(sth.to_json(), sort_keys=True, indent=1))
        os.replace(tmp, path)
        return True

    def leaves(self) -> list[bytes]:
        if not self.leaves_path.exists():
            return []
        raw = self.leaves_path.read_bytes()
        # A fetch cut short mid-write leaves a partial record; it was never verified.
        usable = len(raw) - len(raw) % HASH_SIZE
        return [raw[i : i + HASH_SIZE] for i in range(0, usable, HASH_SIZE)]

    def append_leaves(self, known: int, leaves: Sequence[bytes]) -> None:
        with self.leaves_path.open("ab") as out:
            out.truncate(known * HASH_SIZE)
            out.write(b"".join(leaves))
            out.flush()
            os.fsync(out.fileno())


# --- the log, over HTTP ---------------------------------------------------------------------


class _LogClient:
    """The log's public endpoints."""

    def __init__(self, base_url: str, session: requests.Session) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session

    def _get(self, path: str, **params: int | str) -> requests.Response:
        try:
            response = self.session.get(
                self.base_url + path, params=params, timeout=_TIMEOUT_SECONDS
            )
        except requests.RequestException as exc:
            raise AuditError(
                f"The log at {self.base_url} is unreachable: {_reason(exc)}."
            ) from None
        if response.status_code != 200:
            try:
                detail = response.json().get("detail", response.text)
            except (ValueError, AttributeError):
                detail = response.text[:200]
            raise AuditError(f"GET {path} answered {response.status_code}: {detail}")
        return response

    def _json(self, path: str, **params: int | str) -> dict[str, Any]:
        try:
            body = self._get(path, **params).json()
        except ValueError:
            raise AuditError(f"GET {path} did not answer JSON.") from None
        if not isinstance(body, dict):
            raise AuditError(f"GET {path} did not answer a JSON object.")
        return body

    def key_pem(self) -> str:
        response = self._get("/log/key")
        if "json" in response.headers.get("content-type", ""):
            try:
                pem = response.json().get("public_key_pem")
            except (ValueError, AttributeError):
                pem = None
            if not isinstance(pem, str):
                raise AuditError("GET /log/key answered JSON without public_key_pem.")
            return pem
        return response.text

    def sth(self) -> SignedTreeHead:
        try:
            return SignedTreeHead.from_json(self._json("/log/sth"))
        except LogError as exc:
            raise AuditError(f"GET /log/sth answered a malformed tree head: {exc}") from None

    def consistency(self, first: int, second: int) -> list[bytes]:
        body = self._json("/log/proof/consistency", first=first, second=second)
        return self._hashes(body, "consistency")

    def inclusion(self, leaf_index: int, tree_size: int) -> list[bytes]:
        body = self._json("/log/proof/inclusion", leaf_index=leaf_index, tree_size=tree_size)
        return self._hashes(body, "audit_path")

    @staticmethod
    def _hashes(body: dict[str, Any], name: str) -> list[bytes]:
        try:
            return [b64decode(h) for h in body[name]]
        except (KeyError, TypeError, ValueError):
            raise AuditError(f"A proof's {name} is not a list of base64 hashes.") from None

    def entries(self, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        """Entries ``[start, end)`` as served, page by page, with the index each claims."""
        at = start
        while at < end:
            body = self._json("/log/entries", start=at, end=end)
            try:
                page_end = int(body["end"])
                rows = [(int(e["leaf_index"]), b64decode(e["entry"])) for e in body["entries"]]
            except (KeyError, TypeError, ValueError):
                raise AuditError("GET /log/entries answered a malformed page.") from None
            if page_end <= at:
                raise AuditError(f"GET /log/entries made no progress at {at}.")
            yield from rows
            at = page_end


def _reason(exc: BaseException) -> str:
    """Why a request failed, in the words of the operating system where it said something
    (requests wraps the socket's error in two layers of its own and urllib3's)."""
    if isinstance(exc, requests.Timeout):
        return f"no answer within {_TIMEOUT_SECONDS:.0f} s"
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    reason = type(exc).__name__
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            reason = current.strerror[:1].lower() + current.strerror[1:]
        todo += [
            e
            for e in (
                current.__cause__,
                current.__context__,
                getattr(current, "reason", None),
                *current.args,
            )
            if isinstance(e, BaseException)
        ]
    return reason


@contextmanager
def _open_log(base_url: str) -> Iterator[_LogClient]:
    scheme = urlsplit(base_url).scheme
    if scheme not in ("http", "https") or not urlsplit(base_url).netloc:
        raise AuditUsageError(
            f"{base_url!r} is not an http:// or https:// URL of a service.", parameter="url"
        )
    with requests.Session() as session:
        yield _LogClient(base_url, session)


def load_log_key(pem: bytes) -> PublicKeyTypes:
    """The log's public key from PEM (SubjectPublicKeyInfo), as ``GET /log/key`` serves it.

    Raises :class:`AuditUsageError` (``log-key``) when ``pem`` is not a PEM public key.
    """
    try:
        return load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise AuditUsageError(
            "The log key given is not a PEM public key.", parameter="log-key"
        ) from None


def _served_key(log: _LogClient) -> PublicKeyTypes:
    try:
        return load_pem_public_key(log.key_pem().encode())
    except (ValueError, TypeError):
        raise AuditError("GET /log/key did not answer a PEM public key.") from None


def _stored_key(store: _Store) -> PublicKeyTypes | None:
    pem = store.key_pem()
    if pem is None:
        return None
    try:
        return load_pem_public_key(pem.encode())
    except (ValueError, TypeError):
        raise AuditUsageError(
            f"{store.key_path} is not a PEM public key; the store is damaged.",
            parameter="store",
        ) from None


def _trusted_key(
    log: _LogClient,
    store: _Store,
    findings: list[Finding],
    *,
    pin: bool,
    given: PublicKeyTypes | None,
) -> PublicKeyTypes:
    """The key heads are checked with: the one given, else the one pinned, else the one served
    (pinned then, when ``pin``). A key that differs from it is a finding, never trusted."""
    served = _served_key(log)
    stored = _stored_key(store)
    if given is not None:
        expected = log_key_pem(given)
        if log_key_pem(served) != expected:
            findings.append(
                Finding(
                    "key-mismatch",
                    "The log serves a different public key from the one given (--log-key); "
                    "heads are checked with the given key.",
                )
            )
        if stored is None:
            if pin:
                store.save_key(expected)
        elif log_key_pem(stored) != expected:
            findings.append(
                Finding(
                    "key-mismatch",
                    f"The key pinned in {store.key_path} differs from the one given "
                    "(--log-key); heads are checked with the given key.",
                )
            )
        return given
    if stored is None:
        if pin:
            store.save_key(log_key_pem(served))
        return served
    if log_key_pem(stored) != log_key_pem(served):
        findings.append(
            Finding(
                "key-changed",
                "The log now serves a different public key from the one pinned in "
                f"{store.key_path}; heads are checked with the pinned key.",
            )
        )
    return stored


# --- fetch --------------------------------------------------------------------------------


def _download(
    log: _LogClient, start: int, end: int, findings: list[Finding]
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
    store = _Store(Path(store_dir))
    with _open_log(base_url) as log:
        store.create()
        findings: list[Finding] = []
        try:
            key = _trusted_key(log, store, findings, pin=True, given=log_key)
            sth = log.sth()
        except AuditError as exc:
            return FetchResult(None, findings=_once([*findings, Finding(UNAVAILABLE, exc.message)]))
        try:
            verify_sth(sth, key)
        except LogError as exc:
            return FetchResult(
                None, findings=_once([*findings, Finding("bad-signature", exc.message)])
            )
        new_head = store.save_head(sth)
        known = store.leaves()
        added = 0
        if sth.tree_size < len(known):
            findings.append(_shrunk(len(known), sth))
        elif sth.tree_size > len(known):
            try:
                _, fresh = _download(log, len(known), sth.tree_size, findings)
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
    return FetchResult(sth, new_head=new_head, leaves_added=added, findings=_once(findings))


def _shrunk(known: int, sth: SignedTreeHead) -> Finding:
    return Finding(
        "shrunk",
        f"The log once covered {known} entries; its current signed head covers {sth.tree_size}.",
    )


# --- check --------------------------------------------------------------------------------


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
                f"Entry {i} (leaf hash {_b64(h)}) has moved to index {j}{reads(j)}.",
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
                f"Entry {i} was rewritten: its leaf hash was {_b64(seen[i])} and is now "
                f"{_b64(served[j])}{where}{reads(j)}.",
                leaf_index=i,
            )
        )
    for h, i in old_only.items():
        if h not in moved and i not in paired_old:
            findings.append(
                Finding(
                    "removed",
                    f"Entry {i} (leaf hash {_b64(h)}) is gone from the log.",
                    leaf_index=i,
                )
            )
    for h, j in new_only.items():
        if h not in moved and j not in paired_new:
            findings.append(
                Finding(
                    "inserted",
                    f"An entry not seen before (leaf hash {_b64(h)}) is at index {j}{reads(j)}.",
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
    log: _LogClient, served: Sequence[bytes], sth: SignedTreeHead
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
    store = _Store(Path(store_dir))
    findings: list[Finding] = []
    heads: list[SignedTreeHead] = []
    with _open_log(base_url) as log:
        store.require()
        try:
            key = _trusted_key(log, store, findings, pin=False, given=log_key)
            current = log.sth()
        except AuditError as exc:
            return AuditResult(0, 0, 0, _once([*findings, Finding(UNAVAILABLE, exc.message)]))
        try:
            verify_sth(current, key)
        except LogError as exc:
            return AuditResult(0, 0, 0, _once([*findings, Finding("bad-signature", exc.message)]))
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
            blobs, served = _download(log, 0, current.tree_size, findings)
        except AuditError as exc:
            findings.append(Finding(UNAVAILABLE, exc.message))
            return AuditResult(current.tree_size, len(heads), 0, _once(findings))
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
    return AuditResult(current.tree_size, len(heads), len(served), _once(findings))


def _check_heads(
    log: _LogClient, heads: Sequence[SignedTreeHead], current: SignedTreeHead
) -> list[Finding]:
    """Each stored head against the current one: same size, same root; smaller, a proof."""
    findings: list[Finding] = []
    checked: set[tuple[int, bytes]] = set()
    for head in sorted(heads, key=lambda h: (h.tree_size, h.timestamp)):
        if (head.tree_size, head.root_hash) in checked:
            continue
        checked.add((head.tree_size, head.root_hash))
        if head.tree_size > current.tree_size:
            findings.append(_shrunk(head.tree_size, current))
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
