"""The file key store: one encrypted PKCS#8 PEM file per key, ``<directory>/<label>.key.pem``.

A key file is an ``EncryptedPrivateKeyInfo`` under PBES2: PBKDF2-HMAC-SHA256 with the
configured number of rounds (OWASP's current count by default) and AES-256-CBC. cryptography
offers no way to choose the rounds of a PKCS#8 file, so the envelope is built here with
asn1crypto; cryptography reads it back. :meth:`FileKeyStore.rewrap` brings files written with
weaker parameters (or another passphrase) up to the current ones.

SM2 keys (:mod:`keys.sm2`) live in the same files under the same envelope: cryptography
decrypts the envelope, and tongsuopy reads the PrivateKeyInfo inside, whose curve
cryptography does not know.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import algos, pem
from asn1crypto import keys as asn1_keys
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from keys.config import KDF_ROUNDS, KeyStoreConfig
from keys.errors import KeyNotFoundError, KeyStoreError
from keys.handles import KeyAlgorithm, SoftwareKeyHandle, generate_software_key
from keys.labels import check_label
from keys.sm2 import SM2KeyHandle, generate_sm2_key, is_sm2_private_key_info, load_sm2_private_key

PASSPHRASE_SETTING = "ECONTRACT_KEY_PASSPHRASE"  # noqa: S105 (a setting's name, not a secret)
"""The setting that carries the passphrase; error messages name it so operators know what
to set."""

_SUFFIX = ".key.pem"
_ENCRYPTED_HEADER = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"
_PEM_LABEL = "ENCRYPTED PRIVATE KEY"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class RewrapReport:
    """What :meth:`FileKeyStore.rewrap` did, by key label."""

    changed: list[str]
    """Keys whose files were re-encrypted."""
    current: list[str]
    """Keys whose files already had the current parameters and passphrase."""


class FileKeyStore:
    """Keys as PKCS#8 PEM files, encrypted with the configured passphrase.

    Files are created with mode 0600, written to a temporary file and then linked into
    place, so a reader never sees half a key and an existing key is never overwritten.
    Construct with :meth:`open`.
    """

    def __init__(
        self,
        *,
        directory: Path,
        passphrase: str | None,
        require_encryption: bool,
        kdf_rounds: int = KDF_ROUNDS,
    ) -> None:
        if kdf_rounds < 1:
            raise ValueError("kdf_rounds must be a positive number of PBKDF2 iterations.")
        if require_encryption and passphrase is None:
            raise KeyStoreError(
                "Production mode refuses unencrypted keys; set "
                f"{PASSPHRASE_SETTING} to the passphrase of the key files.",
                code="key-passphrase-missing",
            )
        self._directory = directory
        self._passphrase = passphrase
        self._require_encryption = require_encryption
        self._kdf_rounds = kdf_rounds
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
            kdf_rounds=config.kdf_rounds,
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
        if algorithm is KeyAlgorithm.SM2:
            raise KeyStoreError(
                "SM2 keys are generated with generate_sm2() and loaded with load_sm2(), "
                "which give the SM2 handle a seal signs with.",
                code="sm2-unsupported",
            )
        path = self._free_path(label)
        handle = generate_software_key(label, algorithm)
        # The store is the key's owner inside keys/.
        data = _key_file(_pkcs8_der(handle._key), self._passphrase, self._kdf_rounds)
        self._write_new(path, data, label)
        with self._lock:
            self._handles[label] = handle
        return handle

    def generate_sm2(self, label: str) -> SM2KeyHandle:
        """Create an SM2 key under ``label`` and write it, encrypted like every other key."""
        path = self._free_path(label)
        handle = generate_sm2_key(label)
        self._write_new(
            path, _key_file(handle.pkcs8_der(), self._passphrase, self._kdf_rounds), label
        )
        return handle

    def load_sm2(self, label: str) -> SM2KeyHandle:
        """The SM2 key under ``label``; a key of another algorithm is refused."""
        path = self.path_of(label)
        return load_sm2_private_key(
            label, self._decrypted_der(self._read_bytes(path, label), label)
        )

    def _free_path(self, label: str) -> Path:
        path = self.path_of(label)
        if path.exists():
            raise KeyStoreError(f"A key labelled {label!r} already exists.", code="key-exists")
        return path

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

    def rewrap(self, *, new_passphrase: str | None = None) -> RewrapReport:
        """Re-encrypt every key file whose parameters or passphrase are not the current ones.

        Each file is replaced atomically (written aside, fsynced, renamed over), so a crash
        leaves every file either old or new. With ``new_passphrase``, files are encrypted with
        it; a file that already opens with it and has the current parameters is left alone,
        so a run that stopped half-way can be repeated. Running twice changes nothing.
        """
        target = self._passphrase if new_passphrase is None else new_passphrase
        if target is None and self._require_encryption:
            raise KeyStoreError(
                "Production mode refuses unencrypted keys; give a passphrase.",
                code="key-passphrase-missing",
            )
        report = RewrapReport(changed=[], current=[])
        for path in sorted(self._directory.glob(f"*{_SUFFIX}")):
            label = path.name.removesuffix(_SUFFIX)
            data = self._read_bytes(path, label)
            if self._is_current(data, target):
                report.current.append(label)
                continue
            plain = self._decrypted_der(data, label)
            self._replace(path, _key_file(plain, target, self._kdf_rounds), label)
            report.changed.append(label)
            with self._lock:
                self._handles.pop(label, None)
        if new_passphrase is not None:
            self._passphrase = new_passphrase
        return report

    def _is_current(self, data: bytes, passphrase: str | None) -> bool:
        # Opening the file with the target passphrase is the proof that it needs none.
        if passphrase is None:
            return _ENCRYPTED_HEADER not in data
        parameters = pbes2_parameters(data)
        if parameters != KeyFileParameters.current(self._kdf_rounds):
            return False
        try:
            serialization.load_pem_private_key(data, password=passphrase.encode("utf-8"))
        except (ValueError, TypeError):
            return False
        return True

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
        self._write_atomically(path, data, label, replace=False)

    def _replace(self, path: Path, data: bytes, label: str) -> None:
        self._write_atomically(path, data, label, replace=True)

    def _write_atomically(self, path: Path, data: bytes, label: str, *, replace: bool) -> None:
        # mkstemp creates the file with mode 0600 before anything is written to it.
        fd, tmp_name = tempfile.mkstemp(dir=self._directory, prefix=f".{label}.", suffix=".tmp")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            if replace:
                # rename() replaces in one step: a reader sees the old file or the new one.
                tmp.replace(path)
            else:
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

    def _read(self, path: Path, label: str) -> PrivateKey:
        return self._parse(self._read_bytes(path, label), label)

    @staticmethod
    def _read_bytes(path: Path, label: str) -> bytes:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise KeyNotFoundError(label) from None
        except OSError as exc:
            raise KeyStoreError(f"Cannot read the key {label!r}: {exc.strerror}.") from exc

    def _parse(self, data: bytes, label: str) -> PrivateKey:
        key = self._load(data, label)
        if isinstance(key, bytes):
            raise KeyStoreError(
                f"The key {label!r} is an SM2 key: it is loaded with load_sm2().",
                code="sm2-unsupported",
            )
        return key

    def _decrypted_der(self, data: bytes, label: str) -> bytes:
        """The unencrypted PKCS#8 DER of a key file (any algorithm, SM2 included)."""
        key = self._load(data, label)
        return key if isinstance(key, bytes) else _pkcs8_der(key)

    def _load(self, data: bytes, label: str) -> PrivateKey | bytes:
        """The key of a file, or for an SM2 key its unencrypted PKCS#8 DER."""
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
        except UnsupportedAlgorithm as exc:
            # cryptography decrypted the file but does not know the curve: an SM2 key.
            plain = _decrypt(data, password)
            if plain is None or not is_sm2_private_key_info(plain):
                raise KeyStoreError(
                    f"The key {label!r} is of an unsupported type.", code="key-unreadable"
                ) from exc
            return plain
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


@dataclass(frozen=True)
class KeyFileParameters:
    """How a key file is encrypted: PBES2's key derivation and cipher, as OIDs' names."""

    kdf: str
    """The key derivation function, ``pbkdf2`` or ``scrypt``."""
    prf: str | None
    """PBKDF2's pseudo-random function, e.g. ``sha256`` (HMAC-SHA256)."""
    rounds: int | None
    """PBKDF2's iteration count."""
    cipher: str
    """The encryption scheme, e.g. ``aes256_cbc``."""

    @classmethod
    def current(cls, rounds: int) -> KeyFileParameters:
        """The parameters this store writes."""
        return cls(kdf="pbkdf2", prf="sha256", rounds=rounds, cipher="aes256_cbc")


def pbes2_parameters(data: bytes) -> KeyFileParameters | None:
    """The PBES2 parameters of an encrypted PKCS#8 PEM file; ``None`` for anything else."""
    try:
        _, _, der = pem.unarmor(data)
        info = asn1_keys.EncryptedPrivateKeyInfo.load(der)
        algorithm = info["encryption_algorithm"]
        if algorithm["algorithm"].native != "pbes2":
            return None
        kdf = algorithm["parameters"]["key_derivation_func"]
        cipher = algorithm["parameters"]["encryption_scheme"]["algorithm"].native
        if kdf["algorithm"].native != "pbkdf2":
            return KeyFileParameters(
                kdf=kdf["algorithm"].native, prf=None, rounds=None, cipher=cipher
            )
        params = kdf["parameters"]
        return KeyFileParameters(
            kdf="pbkdf2",
            prf=params["prf"]["algorithm"].native,
            rounds=params["iteration_count"].native,
            cipher=cipher,
        )
    except (ValueError, TypeError, KeyError):
        return None


def _pkcs8_der(key: PrivateKey) -> bytes:
    """The unencrypted PKCS#8 PrivateKeyInfo of a cryptography key."""
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _decrypt(data: bytes, password: bytes | None) -> bytes | None:
    """The PrivateKeyInfo DER of a key file that cryptography cannot load (an SM2 key).

    cryptography reads the envelope but refuses the curve, so the envelope this store writes
    (PBES2, PBKDF2-HMAC-SHA2, AES-CBC) is opened here; anything else answers ``None``.
    """
    try:
        _, _, der = pem.unarmor(data)
        if password is None:
            return bytes(der)
        info = asn1_keys.EncryptedPrivateKeyInfo.load(der)
        algorithm = info["encryption_algorithm"]
        if algorithm.kdf != "pbkdf2" or algorithm.encryption_cipher != "aes":
            return None
        kek = hashlib.pbkdf2_hmac(
            algorithm.kdf_hmac,
            password,
            algorithm.kdf_salt,
            algorithm.kdf_iterations,
            dklen=algorithm.key_length,
        )
        decryptor = Cipher(algorithms.AES(kek), modes.CBC(algorithm.encryption_iv)).decryptor()
        padded = decryptor.update(info["encrypted_data"].native) + decryptor.finalize()
        unpadder = padding.PKCS7(algorithms.AES.block_size).unpadder()
        return unpadder.update(padded) + unpadder.finalize()
    except (ValueError, TypeError, KeyError):
        return None


def _key_file(plain: bytes, passphrase: str | None, rounds: int) -> bytes:
    """A PKCS#8 PrivateKeyInfo (DER) as a PEM file: PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC)
    or in clear."""
    if passphrase is None:
        armored_plain: bytes = pem.armor("PRIVATE KEY", plain)
        return armored_plain
    salt = secrets.token_bytes(16)
    iv = secrets.token_bytes(16)
    kek = hashlib.pbkdf2_hmac("sha256", passphrase.encode("utf-8"), salt, rounds, dklen=32)
    padder = padding.PKCS7(algorithms.AES.block_size).padder()
    encryptor = Cipher(algorithms.AES(kek), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padder.update(plain) + padder.finalize()) + encryptor.finalize()
    scheme = algos.EncryptionAlgorithm(
        {
            "algorithm": "pbes2",
            "parameters": {
                "key_derivation_func": {
                    "algorithm": "pbkdf2",
                    "parameters": {
                        "salt": algos.Pbkdf2Salt(name="specified", value=salt),
                        "iteration_count": rounds,
                        "key_length": 32,
                        "prf": {"algorithm": "sha256"},
                    },
                },
                "encryption_scheme": {"algorithm": "aes256_cbc", "parameters": iv},
            },
        }
    )
    info = asn1_keys.EncryptedPrivateKeyInfo(
        {"encryption_algorithm": scheme, "encrypted_data": ciphertext}
    )
    armored: bytes = pem.armor(_PEM_LABEL, info.dump())
    return armored
