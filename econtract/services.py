"""The service container: settings, database, key store and PKI, opened once per process."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from econtract import db
from econtract.config import Settings
from econtract.pki import PKI
from keys.store import KeyStore, open_key_store


@dataclass(eq=False)
class Services:
    """What every use case needs, built from the settings.

    The database engine and the key store open lazily, so that a forked or spawned worker
    process opens its own (a PKCS#11 session or a connection pool must not cross a fork).
    """

    settings: Settings
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

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
    def pki(self) -> PKI:
        """The PKI loaded from the registry and the key store."""
        return PKI.load(self.sessions, self.key_store, self.settings)

    def dispose(self) -> None:
        """Close the database pool."""
        if "reads" in self.__dict__:
            self.reads.close()
        if "engine" in self.__dict__:
            self.engine.dispose()
