"""The PKCS#11 key store: keys generated and kept on a token (an HSM, or SoftHSM2 in tests).

Private keys are created sensitive and non-extractable; this module only ever asks the token
to sign. PKCS#11 login state belongs to the whole process, not to a session, and sessions are
not safe to share between threads or processes. So each process keeps one logged-in session
per (module, token), used under a lock, and a process that finds itself forked starts the
module afresh before use.
"""

from __future__ import annotations

import hmac
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pkcs11
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import load_der_public_key
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

from keys.config import KeyStoreConfig
from keys.errors import KeyNotFoundError, KeyStoreError
from keys.handles import KeyAlgorithm, hash_algorithm
from keys.labels import check_label

_T = TypeVar("_T")

_RSA_MECHANISMS = {
    "sha256": Mechanism.SHA256_RSA_PKCS,
    "sha384": Mechanism.SHA384_RSA_PKCS,
    "sha512": Mechanism.SHA512_RSA_PKCS,
}

_CURVE_NAMES = {KeyAlgorithm.EC_P256: "secp256r1", KeyAlgorithm.EC_P384: "secp384r1"}

# Errors after which the session is gone (token reset, removed, module restarted): reopen once.
_SESSION_LOST = (
    pkcs11.exceptions.SessionHandleInvalid,
    pkcs11.exceptions.SessionClosed,
    pkcs11.exceptions.DeviceRemoved,
    pkcs11.exceptions.TokenNotPresent,
    pkcs11.exceptions.UserNotLoggedIn,
    pkcs11.exceptions.KeyHandleInvalid,
    pkcs11.exceptions.ObjectHandleInvalid,
)

_MODULE_LOCK = threading.RLock()
_MODULE_PIDS: dict[str, int] = {}


def load_module(path: Path) -> Any:
    """The python-pkcs11 library object for the module at ``path``, initialised in this process.

    python-pkcs11 caches one library object per path and initialises the module once; a
    forked child inherits that state, which PKCS#11 says the child may not use, so the first
    call in a new process re-initialises it. Module settings read at initialisation (such as
    ``SOFTHSM2_CONF``) are therefore fixed per process unless :func:`restart_module` is called.
    """
    if not path.is_file():
        raise KeyStoreError(f"PKCS#11 module not found: {str(path)!r}.", code="pkcs11-module")
    name = str(path)
    with _MODULE_LOCK:
        try:
            lib = pkcs11.lib(name)
            seen = _MODULE_PIDS.get(name)
            if seen is not None and seen != os.getpid():
                lib.reinitialize()
        except Exception as exc:  # the native loader raises plain RuntimeErrors
            raise KeyStoreError(
                f"Cannot load the PKCS#11 module {name!r}: {exc}.", code="pkcs11-module"
            ) from exc
        _MODULE_PIDS[name] = os.getpid()
        return lib


def restart_module(path: Path) -> None:
    """Finalise and re-initialise the module at ``path`` in this process.

    Every open session on it dies. Meant for tests that point ``SOFTHSM2_CONF`` at a new
    token directory after the module was first loaded.
    """
    lib = load_module(path)
    with _MODULE_LOCK:
        _SESSIONS.clear()
        lib.reinitialize()


@dataclass(eq=False)
class _TokenSession:
    """The logged-in session of one process on one token, and what was looked up through it."""

    module: Path
    token_label: str
    pin: str
    pid: int = field(default_factory=os.getpid)
    lock: threading.RLock = field(default_factory=threading.RLock)
    session: Any = None
    private_keys: dict[str, Any] = field(default_factory=dict)

    def open_session(self) -> Any:
        """The session, opened and logged in on first use."""
        if self.session is None:
            self.private_keys.clear()
            self.session = _open_logged_in(self.module, self.token_label, self.pin)
        return self.session

    def drop(self) -> None:
        """Forget the session (after the token lost it) so the next use opens a new one."""
        self.session = None
        self.private_keys.clear()

    def run(self, operation: Callable[[Any], _T]) -> _T:
        """Run ``operation(session)`` under the lock, reopening the session once if it was lost."""
        with self.lock:
            try:
                return operation(self.open_session())
            except _SESSION_LOST:
                self.drop()
                return operation(self.open_session())


_SESSIONS: dict[tuple[str, str], _TokenSession] = {}


def _shared_session(module: Path, token_label: str, pin: str) -> _TokenSession:
    """This process's session on the token, checking ``pin`` against the one it logged in with."""
    key = (str(module), token_label)
    # Held across the login so that a wrong PIN is never registered for others to match.
    with _MODULE_LOCK:
        existing = _SESSIONS.get(key)
        if existing is not None and existing.pid != os.getpid():
            # Inherited from the parent across fork(): never use the parent's sessions.
            _SESSIONS.clear()
            existing = None
        if existing is not None:
            # The token is logged in already, so C_Login would not look at the PIN: compare it.
            if not hmac.compare_digest(existing.pin.encode(), pin.encode()):
                raise KeyStoreError(
                    f"Wrong user PIN for the PKCS#11 token {token_label!r}.", code="pkcs11-pin"
                )
            return existing
        created = _TokenSession(module=module, token_label=token_label, pin=pin)
        created.run(lambda session: None)
        _SESSIONS[key] = created
        return created


def _open_logged_in(module: Path, token_label: str, pin: str) -> Any:
    lib = load_module(module)
    try:
        token = lib.get_token(token_label=token_label)
    except pkcs11.exceptions.NoSuchToken:
        raise KeyStoreError(
            f"No PKCS#11 token labelled {token_label!r} in {str(module)!r}.", code="pkcs11-token"
        ) from None
    except pkcs11.exceptions.MultipleTokensReturned:
        raise KeyStoreError(
            f"More than one PKCS#11 token is labelled {token_label!r}.", code="pkcs11-token"
        ) from None
    try:
        return token.open(rw=True, user_pin=pin)
    except (
        pkcs11.exceptions.PinIncorrect,
        pkcs11.exceptions.PinInvalid,
        pkcs11.exceptions.PinLenRange,
    ):
        raise KeyStoreError(
            f"Wrong user PIN for the PKCS#11 token {token_label!r}.", code="pkcs11-pin"
        ) from None
    except pkcs11.exceptions.PinLocked:
        raise KeyStoreError(
            f"The user PIN of the PKCS#11 token {token_label!r} is locked.", code="pkcs11-pin"
        ) from None
    except pkcs11.exceptions.PKCS11Error as exc:
        raise KeyStoreError(
            f"Cannot log in to the PKCS#11 token {token_label!r}: {type(exc).__name__}.",
            code="pkcs11-token",
        ) from exc


def _public_key_of(obj: Any) -> PublicKeyTypes:
    """The cryptography public key of a PKCS#11 public-key object."""
    if obj.key_type == KeyType.RSA:
        numbers = rsa.RSAPublicNumbers(
            int.from_bytes(obj[Attribute.PUBLIC_EXPONENT], "big"),
            int.from_bytes(obj[Attribute.MODULUS], "big"),
        )
        return numbers.public_key()
    if obj.key_type == KeyType.EC:
        return load_der_public_key(encode_ec_public_key(obj))
    raise KeyStoreError(f"Unsupported PKCS#11 key type {obj.key_type!r}.")


class PKCS11KeyHandle:
    """A private key on a PKCS#11 token; signing is done by the token."""

    def __init__(self, *, store: PKCS11KeyStore, label: str, public_key: PublicKeyTypes) -> None:
        self._store = store
        self._label = label
        self._public_key = public_key
        self._algorithm = KeyAlgorithm.of_public_key(public_key)

    @property
    def label(self) -> str:
        """The key's CKA_LABEL."""
        return self._label

    @property
    def algorithm(self) -> KeyAlgorithm:
        """The key's algorithm."""
        return self._algorithm

    def public_key(self) -> PublicKeyTypes:
        """The public half, read from the token when the key was loaded."""
        return self._public_key

    def sign(self, data: bytes, digest: str = "sha256") -> bytes:
        """PKCS#1 v1.5 (RSA) or DER-encoded ECDSA signature over ``data`` hashed with ``digest``."""
        algo = hash_algorithm(digest)
        if self._algorithm.is_rsa:
            return self._store._sign(self._label, _RSA_MECHANISMS[digest], data)
        # The token signs a digest computed here: CKM_ECDSA_SHA384 and friends are optional.
        hasher = hashes.Hash(algo)
        hasher.update(data)
        raw = self._store._sign(self._label, Mechanism.ECDSA, hasher.finalize())
        half = len(raw) // 2
        return encode_dss_signature(
            int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
        )

    def __repr__(self) -> str:
        return f"PKCS11KeyHandle(label={self._label!r}, algorithm={self._algorithm.value!r})"


class PKCS11KeyStore:
    """Keys generated on a PKCS#11 token, found by CKA_LABEL. Construct with :meth:`open`.

    The store holds only its configuration and handles; the session is looked up per process
    on use, so a store opened before fork() works in the child, and pickling it (for spawn)
    carries no session.
    """

    def __init__(self, *, module: Path, token_label: str, pin: str) -> None:
        self._module = module
        self._token_label = token_label
        self._pin = pin
        self._handles: dict[str, PKCS11KeyHandle] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, config: KeyStoreConfig) -> PKCS11KeyStore:
        """Load the module, find the token and log in, raising ``KeyStoreError`` on failure."""
        if config.pkcs11_module is None:
            raise KeyStoreError("The PKCS#11 key store needs a module path.", code="pkcs11-module")
        if not config.pkcs11_token_label:
            raise KeyStoreError("The PKCS#11 key store needs a token label.", code="pkcs11-token")
        if config.pkcs11_user_pin is None:
            raise KeyStoreError(
                f"The PKCS#11 token {config.pkcs11_token_label!r} needs a user PIN.",
                code="pkcs11-pin",
            )
        store = cls(
            module=config.pkcs11_module,
            token_label=config.pkcs11_token_label,
            pin=config.pkcs11_user_pin,
        )
        store._token()
        return store

    @property
    def token_label(self) -> str:
        """The label of the token holding the keys."""
        return self._token_label

    def __getstate__(self) -> dict[str, Any]:
        # Handles and locks stay behind; the new process logs in on first use.
        return {"module": self._module, "token_label": self._token_label, "pin": self._pin}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def generate(self, label: str, algorithm: KeyAlgorithm) -> PKCS11KeyHandle:
        """Generate a key pair on the token under ``label``; a label already used is refused.

        SM2 is refused: PKCS#11 defines no SM2 mechanism, and SM2-capable HSMs offer it under
        vendor-defined numbers (``CKM_SM2_SM3`` and the like) that this store does not drive.
        """
        check_label(label)
        if algorithm is KeyAlgorithm.SM2:
            raise KeyStoreError(
                f"The PKCS#11 token {self._token_label!r} has no SM2 mechanism this service "
                "can use (CKM_SM2_SM3 or a vendor-defined one); keep SM2 keys in the file store.",
                code="sm2-unsupported",
            )

        def generate(session: Any) -> PublicKeyTypes:
            if next(session.get_objects({Attribute.LABEL: label}), None) is not None:
                raise KeyStoreError(
                    f"A key labelled {label!r} already exists on the token {self._token_label!r}.",
                    code="key-exists",
                )
            key_id = secrets.token_bytes(16)
            private_template = {
                Attribute.TOKEN: True,
                Attribute.PRIVATE: True,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
            }
            capabilities = pkcs11.MechanismFlag.SIGN | pkcs11.MechanismFlag.VERIFY
            if algorithm.is_rsa:
                public, _ = session.generate_keypair(
                    KeyType.RSA,
                    algorithm.rsa_bits,
                    id=key_id,
                    label=label,
                    store=True,
                    capabilities=capabilities,
                    private_template=private_template,
                )
            else:
                params = encode_named_curve_parameters(_CURVE_NAMES[algorithm])
                public, _ = session.generate_keypair(
                    KeyType.EC,
                    id=key_id,
                    label=label,
                    store=True,
                    capabilities=capabilities,
                    public_template={Attribute.EC_PARAMS: params},
                    private_template=private_template,
                )
            return _public_key_of(public)

        try:
            public_key = self._token().run(generate)
        except pkcs11.exceptions.PKCS11Error as exc:
            raise KeyStoreError(
                f"Cannot generate the key {label!r} on the token {self._token_label!r}: "
                f"{type(exc).__name__}."
            ) from exc
        handle = PKCS11KeyHandle(store=self, label=label, public_key=public_key)
        with self._lock:
            self._handles[label] = handle
        return handle

    def load(self, label: str) -> PKCS11KeyHandle:
        """The key under ``label``; ``KeyNotFoundError`` when the token has none."""
        check_label(label)
        with self._lock:
            cached = self._handles.get(label)
        if cached is not None:
            return cached

        def find_public(session: Any) -> PublicKeyTypes:
            self._private_key(session, label)
            try:
                public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label)
            except pkcs11.exceptions.NoSuchKey:
                raise KeyStoreError(
                    f"The key {label!r} has no public key object on the token "
                    f"{self._token_label!r}."
                ) from None
            return _public_key_of(public)

        try:
            public_key = self._token().run(find_public)
        except pkcs11.exceptions.PKCS11Error as exc:
            raise KeyStoreError(
                f"Cannot load the key {label!r} from the token {self._token_label!r}: "
                f"{type(exc).__name__}."
            ) from exc
        with self._lock:
            return self._handles.setdefault(
                label, PKCS11KeyHandle(store=self, label=label, public_key=public_key)
            )

    def exists(self, label: str) -> bool:
        """Whether the token holds a private key under ``label``."""
        check_label(label)
        attrs = {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: label}
        return bool(self._token().run(lambda s: next(s.get_objects(attrs), None) is not None))

    def check(self) -> None:
        """Raise ``KeyStoreError`` unless the session answers an object search."""
        probe = {Attribute.LABEL: "econtract readiness probe"}
        try:
            self._token().run(lambda s: list(s.get_objects(probe)))
        except pkcs11.exceptions.PKCS11Error as exc:
            raise KeyStoreError(
                f"The PKCS#11 token {self._token_label!r} does not answer: {type(exc).__name__}."
            ) from exc

    def _token(self) -> _TokenSession:
        return _shared_session(self._module, self._token_label, self._pin)

    def _private_key(self, session: Any, label: str) -> Any:
        token = self._token()
        cached = token.private_keys.get(label)
        if cached is not None:
            return cached
        try:
            key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label)
        except pkcs11.exceptions.NoSuchKey:
            raise KeyNotFoundError(
                label, f"No key labelled {label!r} on the PKCS#11 token {self._token_label!r}."
            ) from None
        except pkcs11.exceptions.MultipleObjectsReturned:
            raise KeyStoreError(
                f"More than one private key is labelled {label!r} on the token "
                f"{self._token_label!r}."
            ) from None
        token.private_keys[label] = key
        return key

    def _sign(self, label: str, mechanism: Mechanism, data: bytes) -> bytes:
        """Sign with the private key ``label``; private to ``keys``."""

        def sign(session: Any) -> bytes:
            return bytes(self._private_key(session, label).sign(data, mechanism=mechanism))

        try:
            return self._token().run(sign)
        except pkcs11.exceptions.PKCS11Error as exc:
            raise KeyStoreError(
                f"The token {self._token_label!r} could not sign with the key {label!r}: "
                f"{type(exc).__name__}."
            ) from exc
