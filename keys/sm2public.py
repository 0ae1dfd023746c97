"""SM2 public keys: checking an SM2 signature (SM3, default user id) with a public key only.

Kept apart from :mod:`keys.sm2`, which creates, loads and signs with private keys, so that the
verifier (which must never reach a private-key path) can check SM2 signatures too.
tongsuopy does the arithmetic in C (Tongsuo's libcrypto): cryptography has no SM2.
"""

from __future__ import annotations

from asn1crypto import keys as asn1_keys
from tongsuopy.crypto import exceptions as tongsuo_exceptions
from tongsuopy.crypto import hashes as tongsuo_hashes
from tongsuopy.crypto import serialization as tongsuo_serialization
from tongsuopy.crypto.asymciphers import ec as tongsuo_ec

from keys.oids import SM2_CURVE

__all__ = ["is_sm2_public_key", "sm2_verify"]


def is_sm2_public_key(public_key: asn1_keys.PublicKeyInfo) -> bool:
    """Whether a SubjectPublicKeyInfo holds a key on the SM2 curve (id-ecPublicKey, sm2p256v1)."""
    try:
        algorithm = public_key["algorithm"]
        if algorithm["algorithm"].native != "ec":
            return False
        curve = algorithm["parameters"]
        return bool(curve.name == "named" and curve.chosen.dotted == SM2_CURVE)
    except (ValueError, TypeError, KeyError):
        return False


def sm2_verify(public_key_der: bytes, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` (DER ``(r, s)``) is an SM2 signature of ``data`` (not a digest)
    over SM3(Z_A || data), ``Z_A`` made with the default user id ``1234567812345678``."""
    try:
        key = tongsuo_serialization.load_der_public_key(public_key_der)
        if not isinstance(key, tongsuo_ec.EllipticCurvePublicKey) or not isinstance(
            key.curve, tongsuo_ec.SM2
        ):
            return False
        key.verify(signature, data, tongsuo_ec.ECDSA(tongsuo_hashes.SM3()))
    except (
        ValueError,
        TypeError,
        tongsuo_exceptions.InvalidSignature,
        tongsuo_exceptions.UnsupportedAlgorithm,
    ):
        return False
    return True
