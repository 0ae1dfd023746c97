"""The service container: settings, database, blob store, key store and PKI, opened once per
process, and the caches that must not outlive them."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from econtract import db
from econtract.blobs import BlobStore, open_blob_store
from econtract.clock import SYSTEM_CLOCK, Clock
from econtract.config import Settings
from econtract.models import Seal
from econtract.pki import PKI
from keys.store import KeyStore, open_key_store

if TYPE_CHECKING:
    from signing.sealer import SealIdentity


@dataclass
class SealFingerprints:
    """The SHA-256 of every seal certificate in the registry, read once and then only the
    seals created since (a seal row is never deleted, so a fingerprint once known stays)."""

    known: set[str] = field(default_factory=set)
    """Fingerprints read so far."""
    loaded_ids: set[str] = field(default_factory=set)
    """Seals already read."""
    since: datetime | None = None
    """When the newest seal read was created."""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def contains(self, sessions: sessionmaker[Session], fingerprint: str) -> bool:
        """Whether a seal of the registry has this certificate SHA-256 (hex)."""
        with self.lock:
            if fingerprint in self.known:
                return True
            query = select(Seal.id, Seal.certificate_der, Seal.created_at)
            if self.since is not None:
                # ">=": seals created in the same instant as the last one read.
                query = query.where(Seal.created_at >= self.since)
            with sessions() as session:
                for seal_id, der, created_at in session.execute(query):
                    if seal_id not in self.loaded_ids:
                        self.loaded_ids.add(seal_id)
                        self.known.add(hashlib.sha256(der).hexdigest())
                    if self.since is None or created_at > self.since:
                        self.since = created_at
            return fingerprint in self.known


@dataclass(eq=False)
class Services:
    """What every use case needs, built from the settings.

    The database engine and the key store open lazily, so that a forked or spawned worker
    process opens its own (a PKCS#11 session or a connection pool must not cross a fork).
    """

    settings: Settings
    _: KW_ONLY
    clock: Clock = SYSTEM_CLOCK
    """Where use cases take the time from (a test pins it with a ``FixedClock``)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # The caches below belong to this instance, so that they die with it: keyed by id() in a
    # module, a later Services given a dead one's id would inherit another PKI's seals.
    seal_identities: dict[str, SealIdentity] = field(default_factory=dict, repr=False)
    """Signing identities by seal id, each built once (its key is loaded once)."""
    seal_fingerprints: SealFingerprints = field(default_factory=SealFingerprints, repr=False)
    """The registry's seal certificates, as verification looks them up."""

    @cached_property
    def engine(self) -> Engine:
        """The registry's engine."""
        return db.make_engine(self.settings.effective_database_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        """The session factory."""
        return db.session_factory(self.engine)

    @cached_property
    def reads(self) -> db.ReadConnections:
        """Per-thread autocommit connections for the busiest single-row reads."""
        return db.ReadConnections(self.engine)

    @cached_property
    def key_store(self) -> KeyStore:
        """The configured key store."""
        with self._lock:
            return open_key_store(self.settings.key_store_config())

    @cached_property
    def blobs(self) -> BlobStore:
        """The configured blob store, where sealed PDFs are kept."""
        return open_blob_store(self.settings, self.sessions)

    @cached_property
    def pki(self) -> PKI:
        """The PKI loaded from the registry and the key store."""
        return PKI.load(self.sessions, self.key_store, self.settings)

    def dispose(self) -> None:
        """Close the database pool."""
        if "reads" in self.__dict__:
            self.reads.close()
        if "engine" in self.__dict__:
            self.engine.dispose()
