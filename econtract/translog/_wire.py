"""The JSON bodies of the log's public endpoints, and strict parsing of their parameters.

``api.py`` passes query parameters through as the strings it received (or ``None``), so that
every malformed number gets the log's own 400 with a clear message, never a 500.

Every body carries ``"v": 1``; hashes and signatures are standard base64.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy.orm import Session

from econtract.translog._entry import LogEntry
from econtract.translog._errors import LogRequestError
from econtract.translog._heads import (
    SIGNATURE_ALGORITHM,
    b64encode,
    latest_sth,
    require_latest_sth,
    sth_of_size,
    verify_sth,
)
from econtract.translog._merkle import HASH_SIZE, MAX_TREE_SIZE, leaf_hash
from econtract.translog._store import (
    check_number,
    consistency_proof,
    entries,
    inclusion_proof,
    inclusion_proofs,
    leaf_index_of,
    page_end,
    subject_entries,
)

WIRE_VERSION = 1
_DIGITS = re.compile(r"[0-9]{1,19}")
_HEX_HASH = re.compile(r"[0-9a-fA-F]{64}")

Number = int | str | None


def parse_number(name: str, value: Number, *, minimum: int = 0) -> int:
    """A query parameter as a bounded integer; ``LogRequestError`` naming it otherwise."""
    if value is None or value == "":
        raise LogRequestError(f"The query parameter {name} is required.", parameter=name)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("-") and text[1:].isdigit():
            raise LogRequestError(f"{name} must not be negative; it is {text}.", parameter=name)
        if not _DIGITS.fullmatch(text) or int(text) > MAX_TREE_SIZE:
            raise LogRequestError(
                f"{name} must be a whole number from {minimum} to {MAX_TREE_SIZE}; "
                f"{value[:40]!r} is not.",
                parameter=name,
            )
        value = int(text)
    return check_number(name, value, minimum=minimum)


def parse_entry_hash(value: str) -> bytes:
    """An entry (leaf) hash given as 64 hex digits or as base64 of its 32 bytes."""
    text = value.strip()
    if _HEX_HASH.fullmatch(text):
        return bytes.fromhex(text)
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raw = b""
    if len(raw) != HASH_SIZE:
        raise LogRequestError(
            "entry_hash is the entry's RFC 9162 leaf hash: 64 hex digits or 44 base64 characters.",
            parameter="entry_hash",
        )
    return raw


def sth_json(session: Session) -> dict[str, Any]:
    """Body of GET /log/sth: the latest signed tree head (404 before the first)."""
    return require_latest_sth(session).to_json()


def inclusion_json(
    session: Session,
    *,
    leaf_index: Number = None,
    entry_hash: str | None = None,
    tree_size: Number = None,
) -> dict[str, Any]:
    """Body of GET /log/proof/inclusion: by ``leaf_index`` or ``entry_hash`` (exactly one).

    ``tree_size`` defaults to the latest signed tree head's; any other must be a published
    size. The body carries the head the proof is against.
    """
    if (leaf_index is None) == (entry_hash is None or entry_hash == ""):
        raise LogRequestError(
            "Give exactly one of leaf_index and entry_hash.", parameter="leaf_index"
        )
    if tree_size is None or tree_size == "":
        sth = require_latest_sth(session)
        size = sth.tree_size
    else:
        size = parse_number("tree_size", tree_size, minimum=1)
        sth = None
    if entry_hash:
        index = leaf_index_of(session, parse_entry_hash(entry_hash), size)
    else:
        index = parse_number("leaf_index", leaf_index)
    proof = inclusion_proof(session, index, size)
    if sth is None:
        sth = sth_of_size(session, size)
    return {
        "v": WIRE_VERSION,
        "leaf_index": index,
        "tree_size": size,
        "audit_path": [b64encode(h) for h in proof],
        "sth": sth.to_json(),
    }


def consistency_json(session: Session, *, first: Number, second: Number) -> dict[str, Any]:
    """Body of GET /log/proof/consistency between two published sizes."""
    low = parse_number("first", first, minimum=1)
    high = parse_number("second", second, minimum=1)
    proof = consistency_proof(session, low, high)
    return {
        "v": WIRE_VERSION,
        "first": low,
        "second": high,
        "consistency": [b64encode(h) for h in proof],
    }


def entries_json(session: Session, *, start: Number, end: Number) -> dict[str, Any]:
    """Body of GET /log/entries: entries ``[start, end)``, at most 1000, within the STH.

    ``end`` is exclusive and may be cut short; ask again from the last ``leaf_index`` + 1.
    """
    first = parse_number("start", start)
    stop = parse_number("end", end)
    stop = page_end(session, first, stop)
    rows = entries(session, first, stop)
    return {
        "v": WIRE_VERSION,
        "start": first,
        "end": stop,
        "entries": [{"leaf_index": index, "entry": b64encode(entry)} for index, entry in rows],
    }


def log_key_pem(public_key: PublicKeyTypes) -> str:
    """The log's public key in PEM (SubjectPublicKeyInfo): body of GET /log/key."""
    return public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def log_id(public_key: PublicKeyTypes) -> bytes:
    """The log's id: SHA-256 of its public key's DER SubjectPublicKeyInfo (as in RFC 6962)."""
    der = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).digest()


def log_key_json(public_key: PublicKeyTypes) -> dict[str, Any]:
    """The log's public key as JSON (GET /log/key with ``Accept: application/json``)."""
    return {
        "v": WIRE_VERSION,
        "log_id": b64encode(log_id(public_key)),
        "signature_algorithm": SIGNATURE_ALGORITHM,
        "public_key_pem": log_key_pem(public_key),
    }


def subject_proofs_json(
    session: Session, subject: str, *, public_key: PublicKeyTypes
) -> dict[str, Any]:
    """What the QR page and the verification report show of a certificate's log entries.

    Every entry about ``subject`` (a certificate's issuance and status changes; a
    document's sealing) with its inclusion proof against the latest signed tree head, each
    proof and the head's signature checked here with ``public_key`` before they are shown
    (``ProofVerificationError`` or ``LogIntegrityError`` otherwise). Entries appended after
    that head are listed under ``pending``: the next head covers them.
    """
    sth = latest_sth(session)
    if sth is not None:
        verify_sth(sth, public_key)
    proven: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    covered: list[tuple[int, bytes]] = []
    for index, blob in subject_entries(session, subject):
        item = {"leaf_index": index, "entry": LogEntry.from_bytes(blob).to_json()}
        if sth is None or index >= sth.tree_size:
            pending.append(item)
            continue
        covered.append((index, blob))
        proven.append(item)
    if sth is not None and covered:
        # Every proof against the head's signed root in one batch (checked there).
        proofs = inclusion_proofs(session, covered, sth.tree_size, sth.root_hash)
        for item, (_, blob), proof in zip(proven, covered, proofs, strict=True):
            item["leaf_hash"] = b64encode(leaf_hash(blob))
            item["audit_path"] = [b64encode(h) for h in proof]
    return {
        "v": WIRE_VERSION,
        "subject": subject,
        "sth": None if sth is None else sth.to_json(),
        "checked": True,
        "entries": proven,
        "pending": pending,
    }
