"""The transparency log: every change to the registry, provable after the fact.

An append-only Merkle log with RFC 9162 hashing, in the registry database. Use cases append
an entry in their own transaction (``append_entry``, ``append_entries``); the service signs
tree heads with the log key (``publish_sth``, and ``TreeHeadPublisher`` on a timer); the
public endpoints serve heads, proofs and entries (``sth_json``, ``inclusion_json``,
``consistency_json``, ``entries_json``, ``log_key_json``, ``log_key_pem``,
``subject_proofs_json``); anyone verifies with the pure functions (``verify_inclusion``,
``verify_consistency``, ``verify_sth``), and the auditor rebuilds the tree with ``leaf_hash``,
``root_of``, ``CompactRange`` and ``inclusion_ranges``.

``__all__`` is what the rest of the project uses; everything else stays in the private
modules, so that it can change without touching a caller.
"""

from __future__ import annotations

from econtract.translog._entry import LogEntry, LogEntryKind, canonical_json
from econtract.translog._errors import (
    LogError,
    LogFormatError,
    LogIntegrityError,
    LogNotFoundError,
    LogRequestError,
    ProofVerificationError,
)
from econtract.translog._heads import (
    SignedTreeHead,
    TreeHeadPublisher,
    b64decode,
    publish_sth,
    verify_sth,
)
from econtract.translog._merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    CompactRange,
    inclusion_ranges,
    leaf_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from econtract.translog._store import (
    append_entries,
    append_entry,
    consistency_proof,
    inclusion_proof,
    subject_entries,
)
from econtract.translog._wire import (
    WIRE_VERSION,
    consistency_json,
    entries_json,
    inclusion_json,
    log_key_json,
    log_key_pem,
    sth_json,
    subject_proofs_json,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "WIRE_VERSION",
    "CompactRange",
    "LogEntry",
    "LogEntryKind",
    "LogError",
    "LogFormatError",
    "LogIntegrityError",
    "LogNotFoundError",
    "LogRequestError",
    "ProofVerificationError",
    "SignedTreeHead",
    "TreeHeadPublisher",
    "append_entries",
    "append_entry",
    "b64decode",
    "canonical_json",
    "consistency_json",
    "consistency_proof",
    "entries_json",
    "inclusion_json",
    "inclusion_proof",
    "inclusion_ranges",
    "leaf_hash",
    "log_key_json",
    "log_key_pem",
    "publish_sth",
    "root_of",
    "sth_json",
    "subject_entries",
    "subject_proofs_json",
    "verify_consistency",
    "verify_inclusion",
    "verify_sth",
]
