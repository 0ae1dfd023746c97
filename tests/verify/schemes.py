"""The seal algorithms the attack tests run on, behind one interface: ECDSA P-256 seals of the
test PKI, and SM2 seals of the SM2 test PKI (:mod:`tests.verify.sm2pki`).

An attack test written against :class:`Scheme` runs on both, and must give the same verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from keys.crl import RevokedEntry
from keys.ocsp import RevocationStatus
from keys.signer import KeySigner
from signing.options import Certification, SealLevel
from signing.sealer import SealIdentity
from tests.signing.sealing import identity
from tests.testpki import DEPARTMENT_CODE, DEPARTMENT_NAME, TestPKI, build_look_alike_pki
from tests.verify import forge
from tests.verify.forge import Sealed
from tests.verify.sm2pki import build_sm2_test_pki
from verify.policy import VerificationPolicy

__all__ = ["ECDSAScheme", "Scheme", "scheme_named"]


class Scheme(Protocol):
    """A test PKI of one seal algorithm, and the forgeries that depend on the algorithm."""

    @property
    def root_certificate(self) -> x509.Certificate:
        """The trust anchor."""
        ...

    def identity(
        self, *, department_name: str = DEPARTMENT_NAME, department_code: str = DEPARTMENT_CODE
    ) -> SealIdentity:
        """A new licence seal of the department."""
        ...

    def seal(
        self,
        pdf: bytes | None = None,
        *,
        level: SealLevel = SealLevel.B_LT,
        certification: Certification = Certification.APPROVAL,
        seal_identity: SealIdentity | None = None,
    ) -> Sealed:
        """Seal ``pdf`` (a fresh one-page PDF by default)."""
        ...

    def crls(self, revoked: tuple[RevokedEntry, ...] = ()) -> tuple[bytes, ...]:
        """The current CRLs of the root and of the issuing CA (which lists ``revoked``)."""
        ...

    def policy(self, revoked: tuple[RevokedEntry, ...] = ()) -> VerificationPolicy:
        """The service's policy: the root and the current CRLs."""
        ...

    def ocsp_response(
        self, certificate: x509.Certificate, statuses: dict[int, RevocationStatus] | None = None
    ) -> bytes:
        """A fresh OCSP response about ``certificate``."""
        ...

    def look_alike(self) -> Scheme:
        """A PKI of the same algorithm with the same names and keys of its own."""
        ...

    def look_alike_seal(self, genuine: SealIdentity) -> SealIdentity:
        """An untrusted seal with ``genuine``'s subject and picture."""
        ...

    def replace_contents(self, pdf: bytes, signer: KeySigner) -> bytes:
        """The first signature's signed bytes re-signed by ``signer`` (another genuine seal)."""
        ...


@dataclass(frozen=True)
class ECDSAScheme:
    """ECDSA P-256 seals of the test PKI (CAs on P-384, a delegated OCSP responder)."""

    pki: TestPKI

    @property
    def root_certificate(self) -> x509.Certificate:
        """The test root."""
        return self.pki.root.certificate

    def identity(
        self, *, department_name: str = DEPARTMENT_NAME, department_code: str = DEPARTMENT_CODE
    ) -> SealIdentity:
        """A new P-256 licence seal of the department."""
        return identity(self.pki, department_name=department_name, department_code=department_code)

    def seal(
        self,
        pdf: bytes | None = None,
        *,
        level: SealLevel = SealLevel.B_LT,
        certification: Certification = Certification.APPROVAL,
        seal_identity: SealIdentity | None = None,
    ) -> Sealed:
        """Seal with :func:`tests.verify.forge.seal`."""
        return forge.seal(
            self.pki, pdf, level=level, certification=certification, seal_identity=seal_identity
        )

    def crls(self, revoked: tuple[RevokedEntry, ...] = ()) -> tuple[bytes, ...]:
        """The test PKI's current CRLs."""
        return forge.service_crls(self.pki, revoked)

    def policy(self, revoked: tuple[RevokedEntry, ...] = ()) -> VerificationPolicy:
        """The test root and the current CRLs."""
        return VerificationPolicy(trust_roots=(self.root_certificate,), crls=self.crls(revoked))

    def ocsp_response(
        self, certificate: x509.Certificate, statuses: dict[int, RevocationStatus] | None = None
    ) -> bytes:
        """An answer of the delegated responder."""
        request = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(certificate, self.pki.issuing.certificate, hashes.SHA256())
            .build()
            .public_bytes(Encoding.DER)
        )
        return self.pki.ocsp_responder(statuses).respond(request).der

    def look_alike(self) -> ECDSAScheme:
        """An impostor's PKI with the test PKI's names."""
        return ECDSAScheme(build_look_alike_pki(self.pki))

    def look_alike_seal(self, genuine: SealIdentity) -> SealIdentity:
        """A self-signed seal with the genuine subject."""
        return forge.look_alike(self.pki, genuine)

    def replace_contents(self, pdf: bytes, signer: KeySigner) -> bytes:
        """Re-signed over SHA-256."""
        return forge.replace_contents(pdf, signer)


def scheme_named(name: str, pki: TestPKI) -> Scheme:
    """``"ecdsa"`` (over ``pki``) or ``"sm2"``."""
    return build_sm2_test_pki() if name == "sm2" else ECDSAScheme(pki)
