"""The seal signer: a pyHanko ``Signer`` backed by a key handle of this package.

pyHanko's ``SimpleSigner`` re-parses its private key on every signature, and pyHanko signs
once more in a dry run to size the signature placeholder. This signer keeps the handle
(parsed once) and answers the dry run with placeholder bytes of the right size, so a seal
costs exactly one private-key operation.
"""

from __future__ import annotations

from collections.abc import Iterable

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.sign.signers.pdf_cms import Signer
from pyhanko_certvalidator.registry import SimpleCertificateStore

from keys.handles import KeyHandle


def to_asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    """Convert a cryptography certificate to asn1crypto's form (used by pyHanko)."""
    return asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))


class KeySigner(Signer):
    """Signs CMS signatures for pyHanko with a :class:`KeyHandle`.

    Construct with :meth:`for_handle`.
    """

    def __init__(
        self,
        *,
        handle: KeyHandle,
        certificate: asn1_x509.Certificate,
        chain: Iterable[asn1_x509.Certificate] = (),
        embed_roots: bool = True,
    ) -> None:
        store = SimpleCertificateStore()  # type: ignore[no-untyped-call]  # untyped upstream
        store.register_multiple(list(chain))
        super().__init__(
            signing_cert=certificate,
            cert_registry=store,
            embed_roots=embed_roots,
        )
        self._handle = handle

    @classmethod
    def for_handle(
        cls,
        handle: KeyHandle,
        certificate: x509.Certificate,
        chain: Iterable[x509.Certificate] = (),
    ) -> KeySigner:
        """A signer for ``handle`` whose certificate is ``certificate`` issued under ``chain``."""
        return cls(
            handle=handle,
            certificate=to_asn1(certificate),
            chain=[to_asn1(c) for c in chain],
        )

    @property
    def handle(self) -> KeyHandle:
        """The key handle this signer uses."""
        return self._handle

    async def async_sign_raw(
        self, data: bytes, digest_algorithm: str, dry_run: bool = False
    ) -> bytes:
        """Sign ``data``; in a dry run return placeholder bytes of the largest signature size."""
        if dry_run:
            return bytes(self._handle.algorithm.max_signature_size)
        return self._handle.sign(data, digest_algorithm)
