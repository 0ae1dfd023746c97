"""The key store interface and the factory that opens a configured backend."""

from __future__ import annotations

from typing import Protocol

from keys.config import KeyStoreConfig
from keys.handles import KeyAlgorithm, KeyHandle

# KeyStoreConfig lives in keys.config, which the backends import; it stays importable from
# here, where callers open a store with it.
__all__ = ["KeyStore", "KeyStoreConfig", "open_key_store"]


class KeyStore(Protocol):
    """Creates and loads private keys by label; hands out :class:`KeyHandle` objects only.

    Loading the same label twice returns the same handle: a key is parsed or looked up
    once per process.
    """

    def generate(self, label: str, algorithm: KeyAlgorithm) -> KeyHandle:
        """Create a new key under ``label``; a label already taken is a ``KeyStoreError``."""
        ...

    def load(self, label: str) -> KeyHandle:
        """The key under ``label``; ``KeyNotFoundError`` when there is none."""
        ...

    def exists(self, label: str) -> bool:
        """Whether a key is stored under ``label``."""
        ...

    def check(self) -> None:
        """Raise ``KeyStoreError`` unless the store is reachable and unlocked (readiness)."""
        ...


def open_key_store(config: KeyStoreConfig) -> KeyStore:
    """Open the backend named by ``config``."""
    # Only the chosen backend needs loading (python-pkcs11 is a native extension), hence
    # the imports inside.
    if config.backend == "pkcs11":
        from keys.pkcs11store import PKCS11KeyStore  # noqa: PLC0415

        return PKCS11KeyStore.open(config)
    from keys.filestore import FileKeyStore  # noqa: PLC0415

    return FileKeyStore.open(config)
