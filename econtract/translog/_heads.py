"""Signed tree heads: the log key's signature over a tree size, a time and a root hash.

The signed bytes are RFC 6962's ``TreeHeadSignature`` structure (section 3.5), 50 bytes::

    version         1 byte    0 (v1)
    signature_type  1 byte    1 (tree_hash)
    timestamp       8 bytes   milliseconds since the Unix epoch, big-endian
    tree_size       8 bytes   big-endian
    root_hash       32 bytes  the RFC 9162 MTH of the first tree_size entries

signed by the log key (ECDSA P-256 with SHA-256, a DER signature). The log key signs
nothing else, so the structure needs no further domain separation.
"""

from __future__ import annotations

import base64
import binascii
import logging
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from econtract.clock import SYSTEM_CLOCK, Clock
from econtract.db import transaction
from econtract.periodic import PeriodicThread
from econtract.translog._errors import LogFormatError, LogNotFoundError, ProofVerificationError
from econtract.translog._merkle import HASH_SIZE, MAX_TREE_SIZE
from econtract.translog._store import lock_tree_size, root_hash, tree_size
from econtract.translog._tables import LogTreeHead
from keys.handles import KeyHandle

log = logging.getLogger("econtract.translog")

STH_VERSION = 1
SIGNATURE_ALGORITHM = "ecdsa-p256-sha256"
_V1, _TREE_HASH = 0, 1
_MAX_TIMESTAMP = 2**63 - 1


def tree_head_signature_input(tree_size: int, timestamp: int, root: bytes) -> bytes:
    """The 50 bytes the log key signs for a tree head (see the module's docstring)."""
    return struct.pack(">BBQQ", _V1, _TREE_HASH, timestamp, tree_size) + root


@dataclass(frozen=True, kw_only=True)
class SignedTreeHead:
    """A tree head the log signed: the log's size and root at a moment."""

    tree_size: int
    """The number of entries the head covers."""
    timestamp: int
    """When it was signed, in milliseconds since the Unix epoch."""
    root_hash: bytes
    """MTH of the first ``tree_size`` entries."""
    signature: bytes
    """The log key's DER ECDSA signature over ``signed_bytes()``."""

    def __post_init__(self) -> None:
        for name, value, top in (
            ("tree_size", self.tree_size, MAX_TREE_SIZE),
            ("timestamp", self.timestamp, _MAX_TIMESTAMP),
        ):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"A tree head's {name} is an integer.")
            if not 0 <= value <= top:
                raise ValueError(f"A tree head's {name} is between 0 and {top}; not {value}.")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise ValueError("A tree head's root hash is 32 bytes.")
        if not isinstance(self.signature, bytes) or not self.signature:
            raise ValueError("A tree head has a signature.")

    @property
    def time(self) -> datetime:
        """``timestamp`` as a timezone-aware datetime."""
        return datetime.fromtimestamp(self.timestamp / 1000, UTC)

    def signed_bytes(self) -> bytes:
        """The bytes the signature covers."""
        return tree_head_signature_input(self.tree_size, self.timestamp, self.root_hash)

    def to_json(self) -> dict[str, Any]:
        """The JSON form served at GET /log/sth (hashes and signature in base64)."""
        return {
            "v": STH_VERSION,
            "tree_size": self.tree_size,
            "timestamp": self.timestamp,
            "sha256_root_hash": b64encode(self.root_hash),
            "signature_algorithm": SIGNATURE_ALGORITHM,
            "signature": b64encode(self.signature),
        }

    @classmethod
    def from_json(cls, body: object) -> SignedTreeHead:
        """Read the JSON form; ``LogFormatError`` when it is not one."""
        if not isinstance(body, dict):
            raise LogFormatError("A signed tree head is a JSON object.")
        if body.get("v") != STH_VERSION or body.get("signature_algorithm") != SIGNATURE_ALGORITHM:
            raise LogFormatError("This signed tree head's version or algorithm is not known.")
        try:
            return cls(
                tree_size=body["tree_size"],
                timestamp=body["timestamp"],
                root_hash=b64decode(body["sha256_root_hash"]),
                signature=b64decode(body["signature"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LogFormatError(f"A signed tree head is not valid: {exc}") from None

    @classmethod
    def from_row(cls, row: LogTreeHead) -> SignedTreeHead:
        """The head stored in ``row``."""
        return cls(
            tree_size=row.tree_size,
            timestamp=row.timestamp_ms,
            root_hash=row.root_hash,
            signature=row.signature,
        )


def b64encode(data: bytes) -> str:
    """Standard base64 with padding, as the log's JSON carries hashes and signatures."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: object) -> bytes:
    """Strict standard base64 (``ValueError`` for anything else)."""
    if not isinstance(text, str):
        raise TypeError("expected a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError("not valid base64") from None


def sign_tree_head(
    log_key: KeyHandle, tree_size: int, timestamp: int, root: bytes
) -> SignedTreeHead:
    """Sign a tree head with the log key."""
    signature = log_key.sign(tree_head_signature_input(tree_size, timestamp, root), "sha256")
    return SignedTreeHead(
        tree_size=tree_size, timestamp=timestamp, root_hash=root, signature=signature
    )


def verify_sth(sth: SignedTreeHead, public_key: PublicKeyTypes) -> None:
    """Raise ``ProofVerificationError`` unless the log key signed ``sth``."""
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise ProofVerificationError("The log key is an ECDSA key; this public key is not.")
    try:
        public_key.verify(sth.signature, sth.signed_bytes(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise ProofVerificationError(
            f"The signature of the tree head of size {sth.tree_size} "
            f"(timestamp {sth.timestamp}) does not verify with the log key."
        ) from None


def latest_sth(session: Session) -> SignedTreeHead | None:
    """The latest published tree head, or ``None`` before the first."""
    # Plain columns, not the entity: every verification's report reads this head.
    row = session.execute(
        select(
            LogTreeHead.tree_size,
            LogTreeHead.timestamp_ms,
            LogTreeHead.root_hash,
            LogTreeHead.signature,
        )
        .order_by(LogTreeHead.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return SignedTreeHead(
        tree_size=row.tree_size,
        timestamp=row.timestamp_ms,
        root_hash=row.root_hash,
        signature=row.signature,
    )


def require_latest_sth(session: Session) -> SignedTreeHead:
    """The latest published tree head; ``LogNotFoundError`` before the first."""
    sth = latest_sth(session)
    if sth is None:
        raise LogNotFoundError("The log has not published a signed tree head yet.")
    return sth


def sth_of_size(session: Session, tree_size: int) -> SignedTreeHead:
    """The latest published tree head of ``tree_size``; ``LogNotFoundError`` if none."""
    row = session.scalar(
        select(LogTreeHead)
        .where(LogTreeHead.tree_size == tree_size)
        .order_by(LogTreeHead.id.desc())
        .limit(1)
    )
    if row is None:
        raise LogNotFoundError(f"No signed tree head was published for tree size {tree_size}.")
    return SignedTreeHead.from_row(row)


def _now_ms(clock: Clock) -> int:
    return int(clock.now().timestamp() * 1000)


def publish_sth(
    session: Session, log_key: KeyHandle, *, force: bool = False, clock: Clock = SYSTEM_CLOCK
) -> SignedTreeHead:
    """Sign and store a head for the log's current size, in the caller's transaction.

    Returns the latest head unchanged when the size has not moved since it, unless
    ``force``. Holds the log's lock, so no entry slips in between size and root, and
    two publishers never sign the same size twice. The head is dated by ``clock`` (the
    service's, ``services.clock``).
    """
    size = lock_tree_size(session)
    latest = latest_sth(session)
    if latest is not None and latest.tree_size == size and not force:
        return latest
    timestamp = _now_ms(clock)
    if latest is not None and timestamp <= latest.timestamp:
        # Heads are ordered by time; a clock that stepped back must not reorder them.
        timestamp = latest.timestamp + 1
    sth = sign_tree_head(log_key, size, timestamp, root_hash(session, size))
    session.add(
        LogTreeHead(
            tree_size=sth.tree_size,
            timestamp_ms=sth.timestamp,
            root_hash=sth.root_hash,
            signature=sth.signature,
        )
    )
    session.flush()
    return sth


def publish_if_due(
    session: Session, log_key: KeyHandle, every_seconds: float, *, clock: Clock = SYSTEM_CLOCK
) -> SignedTreeHead | None:
    """Publish a head if entries arrived and the latest head is ``every_seconds`` old.

    Also publishes the first head (even of an empty log) so that GET /log/sth always has
    one. Returns the new head, or ``None`` when none was due. Call it every second or so
    (``TreeHeadPublisher``): entries then wait at most ``every_seconds`` (plus a tick) for a
    head that covers them.
    """
    latest = latest_sth(session)
    if not _due(session, latest, every_seconds, clock):
        return None
    sth = publish_sth(session, log_key, clock=clock)
    return None if latest is not None and sth == latest else sth


def _due(
    session: Session, latest: SignedTreeHead | None, every_seconds: float, clock: Clock
) -> bool:
    """Whether ``publish_if_due`` would publish after ``latest``."""
    if latest is None:
        return True
    age_ms = _now_ms(clock) - latest.timestamp
    return tree_size(session) > latest.tree_size and age_ms >= every_seconds * 1000


class TreeHeadPublisher(PeriodicThread):
    """A daemon thread that calls ``publish_if_due`` in its own transaction every tick.

    Every worker of the service may run one: the log's lock makes them publish each size
    once.
    """

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        log_key: KeyHandle,
        every_seconds: float,
        tick_seconds: float = 1.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """Publish with ``log_key`` at least every ``every_seconds`` while entries arrive,
        dating the heads by ``clock`` (the service's)."""
        if every_seconds <= 0 or tick_seconds <= 0:
            raise ValueError("The publishing interval and tick are positive.")
        super().__init__(
            name="sth-publisher", tick_seconds=min(tick_seconds, every_seconds), log=log
        )
        self._sessions = sessions
        self._log_key = log_key
        self._every = every_seconds
        self._clock = clock

    def step(self) -> None:
        """Publish a head if one is due."""
        # Most ticks find nothing due: asked in a read session first, they leave the write
        # lock (SQLite's, the process's write queue) to the issuances. The write transaction
        # asks again.
        with self._sessions() as session:
            if not _due(session, latest_sth(session), self._every, self._clock):
                return
        with transaction(self._sessions) as session:
            sth = publish_if_due(session, self._log_key, self._every, clock=self._clock)
        if sth is not None:
            log.info("tree head published", extra={"tree_size": sth.tree_size})
