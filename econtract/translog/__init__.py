"""The transparency log: every change to the registry, provable after the fact.

An append-only Merkle log with RFC 9162 hashing, in the registry database. Use cases append
an entry in their own transaction (``append_entry``); the service signs tree heads with the
log key (``publish_sth``, ``publish_if_due``, ``TreeHeadPublisher``); the public endpoints
serve heads, proofs and entries (``sth_json``, ``inclusion_json``, ``consistency_json``,
``entries_json``, ``log_key_pem``); anyone verifies with the pure functions
(``verify_inclusion``, ``verify_consistency``, ``verify_sth``).
"""

from __future__ import annotations

from econtract.translog._entry import ENTRY_VERSION, LogEntry, LogEntryKind, canonical_json
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
    latest_sth,
    publish_if_due,
    publish_sth,
    sth_of_size,
    tree_head_signature_input,
    verify_sth,
)
from econtract.translog._merkle import (
    EMPTY_ROOT,
    MAX_TREE_SIZE,
    CompactRange,
    consistency_ranges,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from econtract.translog._store import (
    MAX_PAGE,
    append_entries,
    append_entry,
    consistency_proof,
    entries,
    inclusion_proof,
    leaf_index_of,
    root_hash,
    subject_entries,
    tree_size,
)
from econtract.translog._wire import (
    WIRE_VERSION,
    consistency_json,
    entries_json,
    inclusion_json,
    log_id,
    log_key_json,
    log_key_pem,
    sth_json,
    subject_proofs_json,
)

__all__ = [
    "EMPTY_ROOT",
    "ENTRY_VERSION",
    "MAX_PAGE",
    "MAX_TREE_SIZE",
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
    "consistency_ranges",
    "entries",
    "entries_json",
    "inclusion_json",
    "inclusion_proof",
    "inclusion_ranges",
    "latest_sth",
    "leaf_hash",
    "leaf_index_of",
    "log_id",
    "log_key_json",
    "log_key_pem",
    "node_hash",
    "publish_if_due",
    "publish_sth",
    "root_hash",
    "root_of",
    "sth_json",
    "sth_of_size",
    "subject_entries",
    "subject_proofs_json",
    "tree_head_signature_input",
    "tree_size",
    "verify_consistency",
    "verify_inclusion",
    "verify_sth",
]
