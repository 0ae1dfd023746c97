"""Signer handles: a loaded key that signs bytes and shows only its public half."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from keys.errors import KeyStoreError


class KeyAlgorithm(StrEnum):
    """The key types a seal or an authority may use."""

    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"
    EC_P256 = "ecdsa-p256"
    EC_P384 = "ecdsa-p384"
    SM2 = "sm2"
    """SM2 on the curve sm2p256v1 with SM3 (GB/T 32918); its keys are :mod:`keys.sm2`'s."""

    @property
    def is_rsa(self) -> bool:
        """True for the RSA variants."""
        return self in (KeyAlgorithm.RSA_2048, KeyAlgorithm.RSA_3072)

    @property
    def rsa_bits(self) -> int:
        """The modulus size of an RSA variant."""
        return {KeyAlgorithm.RSA_2048: 2048, KeyAlgorithm.RSA_3072: 3072}[self]

    @property
    def curve(self) -> ec.EllipticCurve:
        """The curve of an ECDSA variant."""
        return {KeyAlgorithm.EC_P256: ec.SECP256R1(), KeyAlgorithm.EC_P384: ec.SECP384R1()}[self]

    @property
    def max_signature_size(self) -> int:
        """Upper bound of a raw signature's size in bytes (DER for ECDSA)."""
        if self.is_rsa:
            return self.rsa_bits // 8
        return {KeyAlgorithm.EC_P256: 72, KeyAlgorithm.EC_P384: 104, KeyAlgorithm.SM2: 72}[self]

    @classmethod
    def of_public_key(cls, key: PublicKeyTypes) -> KeyAlgorithm:
        """The algorithm of a public key, refusing the ones the service does not use."""
        if isinstance(key, rsa.RSAPublicKey):
            sizes = {2048: cls.RSA_2048, 3072: cls.RSA_3072}
            if key.key_size in sizes:
                return sizes[key.key_size]
        elif isinstance(key, ec.EllipticCurvePublicKey):
            curves = {"secp256r1": cls.EC_P256, "secp384r1": cls.EC_P384}
            if key.curve.name in curves:
                return curves[key.curve.name]
        raise KeyStoreError(f"Unsupported public key type {type(key).__name__}.")


# The digests a handle signs with: a seal's comes from its suite (keys.suites), an
# authority's from keys.tbs (SHA-384 for a P-384 key). A new suite's digest goes here too.
HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
    "sm3": hashes.SM3(),
}


def hash_algorithm(name: str) -> hashes.HashAlgorithm:
    """The cryptography hash object for a digest name (``sha256``, ``sha384``, ``sha512``)."""
    try:
        return HASHES[name]
    except KeyError:
        raise KeyStoreError(f"Unsupported digest algorithm {name!r}.") from None


@runtime_checkable
class KeyHandle(Protocol):
    """A private key held by a key store, usable for signing only.

    ``sign`` returns RSA PKCS#1 v1.5 signatures for RSA keys and DER-encoded ECDSA
    signatures for EC keys, over ``data`` hashed with ``digest``.
    """

    @property
    def label(self) -> str:
        """The key's label in its store."""
        ...

    @property
    def algorithm(self) -> KeyAlgorithm:
        """The key's algorithm."""
        ...

    def public_key(self) -> PublicKeyTypes:
        """The public half."""
        ...

    def sign(self, data: bytes, digest: str = "sha256") -> bytes:
        """Sign ``data`` (not a pre-computed digest); a seal passes its suite's digest."""
        ...


@dataclass(frozen=True, eq=False)
class SoftwareKeyHandle:
    """A key held in process memory, parsed once when loaded and kept for every signature."""

    label: str
    """The key's label in its store."""
    _key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    """The parsed private key; private to ``keys``."""

    @property
    def algorithm(self) -> KeyAlgorithm:
        """The key's algorithm."""
        return KeyAlgorithm.of_public_key(self._key.public_key())

    def public_key(self) -> PublicKeyTypes:
        """The public half."""
        return self._key.public_key()

    def sign(self, data: bytes, digest: str = "sha256") -> bytes:
        """Sign ``data`` hashed with ``digest``."""
        algo = hash_algorithm(digest)
        if isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(data, padding.PKCS1v15(), algo)
        return self._key.sign(data, ec.ECDSA(algo))


def generate_software_key(label: str, algorithm: KeyAlgorithm) -> SoftwareKeyHandle:
    """A new key held in process memory only (tests, throwaway identities, the file store).

    RSA keys use the public exponent 65537. SM2 keys are not cryptography's: they come from
    :func:`keys.sm2.generate_sm2_key`.
    """
    if algorithm is KeyAlgorithm.SM2:
        raise KeyStoreError("SM2 keys are made by keys.sm2.generate_sm2_key, not here.")
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if algorithm.is_rsa:
        key = rsa.generate_private_key(public_exponent=65537, key_size=algorithm.rsa_bits)
    else:
        key = ec.generate_private_key(algorithm.curve)
    return SoftwareKeyHandle(label, key)
