"""Where keys live and how they are unlocked: the configuration every key store backend reads.

A module of its own, so that the backends and the factory that picks one (``keys.store``)
both import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

#: PBKDF2-HMAC-SHA256 iterations that encrypt a key file: OWASP's Password Storage Cheat
#: Sheet recommends 600,000 for PBKDF2-HMAC-SHA256 (the figure since 2023). cryptography's
#: ``BestAvailableEncryption`` writes 2,048, which files made before this setting carry.
KDF_ROUNDS = 600_000


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
    kdf_rounds: int = KDF_ROUNDS
    """PBKDF2-HMAC-SHA256 iterations of the file backend's key encryption (PBES2)."""
    pkcs11_module: Path | None = None
    """Path of the PKCS#11 module (for SoftHSM2: ``/usr/lib/softhsm/libsofthsm2.so``)."""
    pkcs11_token_label: str | None = None
    """The label of the token that holds the keys."""
    pkcs11_user_pin: str | None = None
    """The user PIN of the token."""
