"""The key store interface and the factory that opens a configured backend."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from keys.handles import KeyAlgorithm, KeyHandle


@dataclass(frozen=True, kw_only=True)
class KeyStoreConfig:
    """Where keys live and how they are unlocked."""

    backend: Literal["file", "pkcs11"] = "file"
    """``file``: encrypted PKCS#8 files in ``directory``; ``pkcs11``: a token via a PKCS#11
    module."""
    directory: Path = Path("var/keys")
    """The directory of the file backend."""
    passphrase: str | None = None
    """The passphrase that encrypts the file backend's keys; ``None`` stores them unencrypted."""
    require_encryption: bool = False
    """Refuse to create or load unencrypted keys (production mode)."""
    pkcs11_module: Path | None = None
    """Path of the PKCS#11 module (for SoftHSM2: ``/usr/lib/softhsm/libsofthsm2.so``)."""
    pkcs11_token_label: str | None = None
    """The label of the token that holds the keys."""
    pkcs11_user_pin: str | None = None
    """The user PIN of the token."""


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
    # The backends import this module for KeyStoreConfig, and only the chosen one needs
    # loading (python-pkcs11 is a native extension), hence the imports inside.
    if config.backend == "pkcs11":
        from keys.pkcs11store import PKCS11KeyStore  # noqa: PLC0415

        return PKCS11KeyStore.open(config)
    from keys.filestore import FileKeyStore  # noqa: PLC0415

    return FileKeyStore.open(config)
