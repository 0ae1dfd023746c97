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

The modules: ``_findings`` (findings, results, errors), ``_store`` (the directory),
``_client`` (HTTP), ``_keys`` (which key heads are checked with), ``_fetch`` and ``_check``.
"""

from __future__ import annotations

from econtract.auditor._check import check, compare_leaves
from econtract.auditor._fetch import fetch
from econtract.auditor._findings import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_UNREACHABLE,
    UNAVAILABLE,
    AuditError,
    AuditResult,
    AuditUsageError,
    FetchResult,
    Finding,
)
from econtract.auditor._keys import load_log_key

__all__ = [
    "EXIT_FINDINGS",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "UNAVAILABLE",
    "AuditError",
    "AuditResult",
    "AuditUsageError",
    "FetchResult",
    "Finding",
    "check",
    "compare_leaves",
    "fetch",
    "load_log_key",
]
