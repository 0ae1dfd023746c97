"""Idempotency keys: a client's retry of an issuing request gets the licence the first made.

A key is bound to the hash of its request body (:func:`request_hash`). :func:`claim_key`
runs first in the issuing transaction: it answers a finished request with its certificate,
refuses the key with another body or while its first request is still running, and
otherwise records the key, so that a concurrent request with it fails on the primary key.
:func:`settle_key` ties the key to the certificate before the transaction commits.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from econtract.errors import ConflictError, InvalidInputError
from econtract.models import Certificate, IdempotencyRecord


@dataclass(frozen=True)
class IdempotencyKey:
    """A client's ``Idempotency-Key`` and the hash of the request that came with it."""

    client_id: str
    key: str
    request_hash: str

    @property
    def ident(self) -> tuple[str, str]:
        """The primary key of the key's :class:`IdempotencyRecord`."""
        return (self.client_id, self.key)


@dataclass(frozen=True)
class Issued:
    """An issued certificate; ``replayed`` when an earlier request with the same key made it."""

    certificate: Certificate
    replayed: bool = False


def request_hash(body: Any) -> str:
    """SHA-256 of a request body's canonical JSON (what an Idempotency-Key is bound to)."""
    canonical = json.dumps(
        body, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def replay(session: Session, idem: IdempotencyKey) -> Issued | None:
    """The certificate an earlier request with this key issued, or ``None`` for a new key."""
    record = session.get(IdempotencyRecord, idem.ident)
    if record is None:
        return None
    if record.request_hash != idem.request_hash:
        raise InvalidInputError(
            "This Idempotency-Key was used with another request body; use a new key.",
            errors=[("/", "Idempotency-Key reused with a different body")],
        )
    if record.certificate_id is None:
        raise ConflictError("A request with this Idempotency-Key is still being processed.")
    certificate = session.get(Certificate, record.certificate_id)
    assert certificate is not None
    return Issued(certificate, replayed=True)


def claim_key(session: Session, idem: IdempotencyKey) -> Issued | None:
    """Inside the issuing transaction: the earlier result for this key, or the key recorded
    as taken by this request (``None``)."""
    replayed = replay(session, idem)
    if replayed is not None:
        return replayed
    session.add(
        IdempotencyRecord(client_id=idem.client_id, key=idem.key, request_hash=idem.request_hash)
    )
    try:
        session.flush()
    except IntegrityError:
        raise ConflictError(
            "A request with this Idempotency-Key is being processed concurrently."
        ) from None
    return None


def settle_key(session: Session, idem: IdempotencyKey, certificate_id: str) -> None:
    """Tie the key claimed by :func:`claim_key` to the certificate its request issued."""
    # One UPDATE: loading the record first (it was claimed in another transaction) would
    # cost a SELECT more in the registering transaction.
    settled = session.execute(
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.client_id == idem.client_id,
            IdempotencyRecord.key == idem.key,
        )
        .values(certificate_id=certificate_id)
        .execution_options(synchronize_session=False)
    )
    assert cast(CursorResult[Any], settled).rowcount == 1, "the key was claimed"
