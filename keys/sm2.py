"""SM2 keys (GB/T 32918, curve sm2p256v1) that sign with SM3 and the default user id.

cryptography has SM3 but no SM2 and does not plan it, so SM2 keys are tongsuopy's: the Tongsuo
project's binding, pyca/cryptography's backend over Tongsuo (an OpenSSL 3 fork) linked in, so
signing and verifying are C code. Its SM2 signatures hash ``Z_A || M`` with SM3, where ``Z_A``
is computed with the default user id ``1234567812345678`` (GB/T 35276), the id Chinese CAs and
signers use. OpenSSL 3.0's command line computes ``Z_A`` with an empty id unless told
otherwise, so it verifies these signatures with ``-pkeyopt distid:1234567812345678``.

The key files hold the same PKCS#8 ``PrivateKeyInfo`` as the others (id-ecPublicKey with the
SM2 curve's OID), in the same PBES2 envelope (:mod:`keys.filestore`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asn1crypto import keys as asn1_keys
from tongsuopy.crypto import exceptions as tongsuo_exceptions
from tongsuopy.crypto import hashes as tongsuo_hashes
from tongsuopy.crypto import serialization as tongsuo_serialization
from tongsuopy.crypto.asymciphers import ec as tongsuo_ec

from keys.errors import KeyStoreError
from keys.handles import KeyAlgorithm
from keys.oids import SM2_CURVE
from keys.sm2public import sm2_verify

__all__ = [
    "DEFAULT_USER_ID",
    "SM2KeyHandle",
    "generate_sm2_key",
    "is_sm2_private_key_info",
    "load_sm2_private_key",
    "sm2_verify",
]

DEFAULT_USER_ID = b"1234567812345678"
"""The user id every SM2 signature of the service carries in ``Z_A`` (GB/T 35276's default)."""

_SM3 = "sm3"
# tongsuopy's SM2 signs through its ECDSA interface; the (stateless) algorithm object is made
# once rather than with every signature.
_SM2_WITH_SM3 = tongsuo_ec.ECDSA(tongsuo_hashes.SM3())


@dataclass(frozen=True, eq=False)
class SM2KeyHandle:
    """An SM2 key held in process memory, parsed once; it signs with SM3 only."""

    label: str
    """The key's label in its store."""
    _key: Any
    """tongsuopy's SM2 private key (untyped upstream); private to ``keys``."""

    @property
    def algorithm(self) -> KeyAlgorithm:
        """Always :attr:`KeyAlgorithm.SM2`."""
        return KeyAlgorithm.SM2

    def public_key_der(self) -> bytes:
        """The public half as a DER SubjectPublicKeyInfo (id-ecPublicKey, curve SM2)."""
        der: bytes = self._key.public_key().public_bytes(
            tongsuo_serialization.Encoding.DER,
            tongsuo_serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        return der

    def public_key_info(self) -> asn1_keys.PublicKeyInfo:
        """The public half as asn1crypto's SubjectPublicKeyInfo (for certificates)."""
        return asn1_keys.PublicKeyInfo.load(self.public_key_der())

    def sign(self, data: bytes, digest: str = _SM3) -> bytes:
        """Sign ``data`` (not a digest) with SM2 over SM3(Z_A || data); DER ``(r, s)``.

        SM2 is defined with SM3 only; any other ``digest`` is refused.
        """
        if digest != _SM3:
            raise KeyStoreError(f"An SM2 key signs with SM3, not {digest}.")
        signature: bytes = self._key.sign(data, _SM2_WITH_SM3)
        return signature

    def pkcs8_der(self) -> bytes:
        """The unencrypted PKCS#8 PrivateKeyInfo, for the key store's envelope only."""
        der: bytes = self._key.private_bytes(
            tongsuo_serialization.Encoding.DER,
            tongsuo_serialization.PrivateFormat.PKCS8,
            tongsuo_serialization.NoEncryption(),
        )
        return der


def generate_sm2_key(label: str) -> SM2KeyHandle:
    """A new SM2 key (curve sm2p256v1) held in process memory."""
    return SM2KeyHandle(label, tongsuo_ec.generate_private_key(tongsuo_ec.SM2()))


def is_sm2_private_key_info(der: bytes) -> bool:
    """Whether a PKCS#8 PrivateKeyInfo holds a key on the SM2 curve."""
    try:
        info = asn1_keys.PrivateKeyInfo.load(der)
        algorithm = info["private_key_algorithm"]
        if algorithm["algorithm"].native != "ec":
            return False
        curve = algorithm["parameters"]
        return bool(curve.name == "named" and curve.chosen.dotted == SM2_CURVE)
    except (ValueError, TypeError, KeyError):
        return False


def load_sm2_private_key(label: str, der: bytes) -> SM2KeyHandle:
    """An SM2 key from its unencrypted PKCS#8 DER; a key on another curve is refused."""
    if not is_sm2_private_key_info(der):
        raise KeyStoreError(f"The key {label!r} is not an SM2 key.", code="key-unreadable")
    try:
        key = tongsuo_serialization.load_der_private_key(der, None)
    except (ValueError, TypeError, tongsuo_exceptions.UnsupportedAlgorithm) as exc:
        raise KeyStoreError(
            f"Cannot load the SM2 key {label!r} (damaged file).", code="key-unreadable"
        ) from exc
    return SM2KeyHandle(label, key)
