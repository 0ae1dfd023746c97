"""Signatures of certificates, CRLs and OCSP responses, verified once per process.

Every licence the service seals carries the same CA certificates, the same timestamp
authority and the same CRLs; checking a document's paths verifies each of their signatures
again (up to ten per document, most of them ECDSA, a third of the cryptography of a whole
verification). Whether a signature verifies depends on its bytes, the signed bytes, the key
and the algorithm only, never on time or policy, so a verification that succeeded is
remembered under a digest of all four and not repeated. A failure is never remembered: it
raises again every time, with pyHanko's own error.

The signatures a document makes itself (a seal's CMS signature, a timestamp token's) are
always verified: pyHanko checks them with a context of their own (the digest algorithm of the
signed attributes), and only signatures checked without one are remembered.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from asn1crypto import algos, keys
from pyhanko_certvalidator.sig_validate import (
    DEFAULT_VALIDATION_CONTEXT,
    SignatureValidationContext,
)

from verify._sm2 import NationalSignatureValidator

__all__ = ["RememberingSignatureValidator"]


class RememberingSignatureValidator(NationalSignatureValidator):
    """pyHanko's signature validator (with SM2, :mod:`verify._sm2`) that remembers the
    issued objects' signatures it verified (at most ``capacity``, the least recently used
    forgotten first)."""

    def __init__(self, *, capacity: int = 1024) -> None:
        if capacity < 1:
            raise ValueError("The capacity must be at least 1.")
        self._capacity = capacity
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    def validate_signature(
        self,
        signature: bytes,
        signed_data: bytes,
        public_key_info: keys.PublicKeyInfo,
        signature_algorithm: algos.SignedDigestAlgorithm,
        context: SignatureValidationContext = DEFAULT_VALIDATION_CONTEXT,
    ) -> None:
        """Verify as pyHanko does, unless the same signature was verified before.

        Raises what :class:`NationalSignatureValidator` raises (``InvalidSignature`` for a
        signature that does not verify).
        """
        if context is not DEFAULT_VALIDATION_CONTEXT:
            # A document's own CMS signature: unique to the document, checked every time.
            super().validate_signature(
                signature, signed_data, public_key_info, signature_algorithm, context
            )
            return
        key = _fingerprint(
            signature, signed_data, public_key_info.dump(), signature_algorithm.dump()
        )
        with self._lock:
            if key in self._seen:
                self._seen.move_to_end(key)
                return
        super().validate_signature(signature, signed_data, public_key_info, signature_algorithm)
        with self._lock:
            self._seen[key] = None
            if len(self._seen) > self._capacity:
                self._seen.popitem(last=False)

    # Not __len__: pyHanko takes ``signature_validator or DefaultSignatureValidator()``, and an
    # empty validator would then count as none.
    @property
    def remembered(self) -> int:
        """How many verified signatures are remembered."""
        return len(self._seen)


def _fingerprint(*parts: bytes) -> bytes:
    # Each part is length-prefixed, so that moving bytes from one part to the next cannot
    # give another input the same digest.
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()
