"""SM2 signatures in pyHanko's validation: the seal's CMS, timestamp tokens, certificates, CRLs
and OCSP responses signed SM2-with-SM3.

pyHanko and pyhanko-certvalidator check every signature through one pluggable
``SignatureValidator`` (the validation context's): the signed attributes of a CMS, each
certificate of a path with its issuer's key, each CRL and OCSP response. Their default
validator loads the key with pyca/cryptography, which has no SM2 curve ("UnsupportedAlgorithm:
Curve 1.2.156.10197.1.301"). This validator checks SM2 itself (through
:mod:`keys.sm2public`, C code) and leaves every other algorithm to pyHanko's; so an SM2 seal
gets the same path building, validity periods, basic constraints, key usage, revocation,
timestamp and difference analysis as the others, from the same code.
"""

from __future__ import annotations

from asn1crypto import algos, keys
from cryptography.exceptions import InvalidSignature
from pyhanko_certvalidator.errors import AlgorithmNotSupported
from pyhanko_certvalidator.sig_validate import (
    DEFAULT_VALIDATION_CONTEXT,
    DefaultSignatureValidator,
    SignatureValidationContext,
)

from keys.oids import SM2_CURVE, SM2_WITH_SM3, SM3
from keys.sm2public import is_sm2_public_key, sm2_verify

__all__ = ["NationalSignatureValidator"]

# SM2-with-SM3 (GB/T 35276), and the bare SM2 signature OID of GM/T 0006 (sm2sign,
# 1.2.156.10197.1.301.1) with which some signers name it, the digest then being SM3.
_SM2_SIGNATURES = frozenset({SM2_WITH_SM3, f"{SM2_CURVE}.1"})


class NationalSignatureValidator(DefaultSignatureValidator):
    """pyHanko's signature validator, with SM2-with-SM3 (default user id) added."""

    def validate_signature(
        self,
        signature: bytes,
        signed_data: bytes,
        public_key_info: keys.PublicKeyInfo,
        signature_algorithm: algos.SignedDigestAlgorithm,
        context: SignatureValidationContext = DEFAULT_VALIDATION_CONTEXT,
    ) -> None:
        """Verify ``signature`` over ``signed_data``; raises ``InvalidSignature`` when it
        does not verify (``AlgorithmNotSupported``, one of them, for an SM2 key used with
        another algorithm)."""
        sm2_key = is_sm2_public_key(public_key_info)
        named = signature_algorithm["algorithm"].dotted
        if not sm2_key and named not in _SM2_SIGNATURES:
            super().validate_signature(
                signature, signed_data, public_key_info, signature_algorithm, context
            )
            return
        if not sm2_key:
            raise InvalidSignature("An SM2 signature needs a key on the SM2 curve.")
        if named not in _SM2_SIGNATURES or (
            named != SM2_WITH_SM3 and context.contextual_md_algorithm not in (None, "sm3", SM3)
        ):
            raise AlgorithmNotSupported(f"An SM2 key signs SM2-with-SM3 only, not {named}.")
        if context.prehashed:
            # SM2 hashes Z_A (from the key and the user id) before the message: a digest
            # made without it cannot be checked.
            raise AlgorithmNotSupported("An SM2 signature cannot be checked over a digest.")
        if not sm2_verify(public_key_info.dump(), signature, signed_data):
            raise InvalidSignature("The SM2 signature does not verify.")
