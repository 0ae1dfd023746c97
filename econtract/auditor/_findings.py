"""What the auditor finds and answers: findings, the results of fetch and check, the errors."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field

from econtract.errors import EContractError
from econtract.translog import SignedTreeHead

EXIT_OK = 0
"""Exit status: the log kept every promise its signed heads made."""
EXIT_FINDINGS = 1
"""Exit status: the auditor found the log broke a promise (rewritten, removed, forked...)."""
EXIT_UNREACHABLE = 3
"""Exit status: the log could not be read, so nothing was found and nothing proven."""
UNAVAILABLE = "unavailable"
"""The kind of finding for a log that could not be read."""


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


def once(findings: Sequence[Finding]) -> tuple[Finding, ...]:
    """``findings`` in order, each once: two routes to the same fact make one finding."""
    return tuple(dict.fromkeys(findings))


def b64(value: bytes) -> str:
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
                f"root {b64(self.sth.root_hash)} "
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
