"""The file key store: one encrypted PKCS#8 PEM file per key, ``<directory>/<label>.key.pem``."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from keys.config import KeyStoreConfig
from keys.errors import KeyNotFoundError, KeyStoreError
from keys.handles import KeyAlgorithm, SoftwareKeyHandle, generate_software_key
from keys.labels import check_label

PASSPHRASE_SETTING = "ECONTRACT_KEY_PASSPHRASE"  # noqa: S105 (a setting's name, not a secret)
"""The setting that carries the passphrase; error messages name it so operators know what
to set."""

_SUFFIX = ".key.pem"
_ENCRYPTED_HEADER = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"


class FileKeyStore:
    """Keys as PKCS#8 PEM files, encrypted with the configured passphrase.

    Files are created with mode 0600, written to a temporary file and then linked into
    place, so a reader never sees half a key and an existing key is never overwritten.
    Construct with :meth:`open`.
    """

    def __init__(
        self, *, directory: Path, passphrase: str | None, require_encryption: bool
    ) -> None:
        if require_encryption and passphrase is None:
            raise KeyStoreError(
                "Production mode refuses unencrypted keys; set "
                f"{PASSPHRASE_SETTING} to the passphrase of the key files.",
                code="key-passphrase-missing",
            )
        self._directory = directory
        self._passphrase = passphrase
        self._require_encryption = require_encryption
        self._handles: dict[str, SoftwareKeyHandle] = {}
        # Guards the cache so two threads loading one label parse it once.
        self._lock = threading.Lock()

    @classmethod
    def open(cls, config: KeyStoreConfig) -> FileKeyStore:
        """Open (and create if missing, mode 0700) the key directory of ``config``."""
        store = cls(
            directory=config.directory,
            passphrase=config.passphrase,
            require_encryption=config.require_encryption,
        )
        try:
            config.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise KeyStoreError(
                f"Cannot create the key directory {str(config.directory)!r}: {exc.strerror}."
            ) from exc
        return store

    @property
    def directory(self) -> Path:
        """The directory holding the key files."""
        return self._directory

    def path_of(self, label: str) -> Path:
        """The file that holds (or would hold) the key ``label``."""
        return self._directory / f"{check_label(label)}{_SUFFIX}"

    def exists(self, label: str) -> bool:
        """Whether a key file exists under ``label``."""
        return self.path_of(label).is_file()

    def generate(self, label: str, algorithm: KeyAlgorithm) -> SoftwareKeyHandle:
        """Create a key under ``label`` and write it; a label already taken is refused."""
        path = self.path_of(label)
        if path.exists():
            raise KeyStoreError(f"A key labelled {label!r} already exists.", code="key-exists")
        handle = generate_software_key(label, algorithm)
        encryption: serialization.KeySerializationEncryption
        if self._passphrase is None:
            encryption = serialization.NoEncryption()
        else:
            encryption = serialization.BestAvailableEncryption(self._passphrase.encode("utf-8"))
        pem = handle._key.private_bytes(  # the store is the key's owner inside keys/
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
        self._write_new(path, pem, label)
        with self._lock:
            self._handles[label] = handle
        return handle

    def load(self, label: str) -> SoftwareKeyHandle:
        """The key under ``label``, parsed once and then served from memory."""
        path = self.path_of(label)
        with self._lock:
            cached = self._handles.get(label)
            if cached is not None:
                return cached
            handle = SoftwareKeyHandle(label, self._read(path, label))
            self._handles[label] = handle
            return handle

    def check(self) -> None:
        """Raise ``KeyStoreError`` unless the key directory can be listed and written."""
        try:
            if not self._directory.is_dir():
                raise KeyStoreError(f"The key directory {str(self._directory)!r} is missing.")
            next(os.scandir(self._directory), None)
            # os.access is not enough: it answers yes for root even on a read-only mount.
            with tempfile.TemporaryFile(dir=self._directory, prefix=".check-"):
                pass
        except OSError as exc:
            raise KeyStoreError(
                f"The key directory {str(self._directory)!r} is not readable and writable: "
                f"{exc.strerror}."
            ) from exc

    def _write_new(self, path: Path, data: bytes, label: str) -> None:
        # mkstemp creates the file with mode 0600 before anything is written to it.
        fd, tmp_name = tempfile.mkstemp(dir=self._directory, prefix=f".{label}.", suffix=".tmp")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            # link() fails if the target exists, where rename() would silently replace it.
            os.link(tmp, path)
        except FileExistsError as exc:
            raise KeyStoreError(
                f"A key labelled {label!r} already exists.", code="key-exists"
            ) from exc
        except OSError as exc:
            raise KeyStoreError(f"Cannot write the key {label!r}: {exc.strerror}.") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        self._sync_directory()

    def _sync_directory(self) -> None:
        # The new directory entry must reach the disk too, or a crash could lose the key.
        fd = os.open(self._directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _read(self, path: Path, label: str) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise KeyNotFoundError(label) from None
        except OSError as exc:
            raise KeyStoreError(f"Cannot read the key {label!r}: {exc.strerror}.") from exc
        encrypted = _ENCRYPTED_HEADER in data
        if not encrypted and self._require_encryption:
            raise KeyStoreError(
                f"The key {label!r} is stored unencrypted, which production mode refuses; "
                "re-encrypt it with the passphrase.",
                code="key-unencrypted",
            )
        if encrypted and self._passphrase is None:
            raise KeyStoreError(
                f"The key {label!r} is encrypted and no passphrase is set; "
                f"set {PASSPHRASE_SETTING}.",
                code="key-passphrase-missing",
            )
        password = self._passphrase.encode("utf-8") if encrypted and self._passphrase else None
        try:
            key = serialization.load_pem_private_key(data, password=password)
        except (ValueError, TypeError) as exc:
            reason = "wrong passphrase or damaged file" if encrypted else "damaged file"
            raise KeyStoreError(
                f"Cannot load the key {label!r} ({reason}); check {PASSPHRASE_SETTING}.",
                code="key-unreadable",
            ) from exc
        if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            raise KeyStoreError(f"The key {label!r} is of an unsupported type.")
        # Refuse keys of sizes or curves the service does not use, as generate() would.
        KeyAlgorithm.of_public_key(key.public_key())
        return key
