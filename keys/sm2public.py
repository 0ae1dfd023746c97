"""SM2 public keys: checking an SM2 signature (SM3, default user id) with a public key only.

Kept apart from :mod:`keys.sm2`, which creates, loads and signs with private keys, so that the
verifier (which must never reach a private-key path) can check SM2 signatures too.
tongsuopy does the arithmetic in C (Tongsuo's libcrypto): cryptography has no SM2.
"""

from __future__ import annotations

import functools
from typing import Any

from asn1crypto import keys as asn1_keys
from tongsuopy.crypto import exceptions as tongsuo_exceptions
from tongsuopy.crypto import hashes as tongsuo_hashes
from tongsuopy.crypto import serialization as tongsuo_serialization
from tongsuopy.crypto.asymciphers import ec as tongsuo_ec

from keys.oids import SM2_CURVE

__all__ = ["is_sm2_public_key", "sm2_verify"]

# tongsuopy verifies SM2 through its ECDSA interface; the (stateless) algorithm object is
# made once rather than with every verification.
_SM2_WITH_SM3 = tongsuo_ec.ECDSA(tongsuo_hashes.SM3())


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
    key = _sm2_public_key(public_key_der)
    if key is None:
        return False
    try:
        key.verify(signature, data, _SM2_WITH_SM3)
    except (
        ValueError,
        TypeError,
        tongsuo_exceptions.InvalidSignature,
        tongsuo_exceptions.UnsupportedAlgorithm,
    ):
        return False
    return True


# A verifier meets the same few keys again and again (the SM2 CAs', the timestamp
# authority's, a department's seals), and parsing one into an EVP_PKEY costs about a fifteenth
# of checking a signature with it. The parsed key is only read: each verification makes an
# EVP_MD_CTX of its own, so threads may share it.
@functools.lru_cache(maxsize=256)
def _sm2_public_key(public_key_der: bytes) -> Any:
    """tongsuopy's public key for a DER SubjectPublicKeyInfo on the SM2 curve, else ``None``."""
    try:
        key = tongsuo_serialization.load_der_public_key(public_key_der)
    except (ValueError, TypeError, tongsuo_exceptions.UnsupportedAlgorithm):
        return None
    if not isinstance(key, tongsuo_ec.EllipticCurvePublicKey) or not isinstance(
        key.curve, tongsuo_ec.SM2
    ):
        return None
    return key
