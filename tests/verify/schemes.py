"""The seal algorithms the attack tests run on, behind one interface: ECDSA P-256 seals of the
test PKI, and SM2 seals of the SM2 test PKI (:mod:`tests.verify.sm2pki`).

An attack test written against :class:`Scheme` runs on both, and must give the same verdict.
What does not depend on the algorithm (sealing, the CRLs, the policy, an OCSP answer, a
re-signed ``/Contents``) is written once, in :class:`Scheme`; a scheme gives its authorities,
its seals and what sealing needs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from cryptography import x509

from keys.crl import RevokedEntry
from keys.handles import KeyAlgorithm, generate_software_key
from keys.ocsp import OCSPResponder, RevocationStatus
from keys.signer import KeySigner
from signing.options import Certification, SealLevel
from signing.sealer import SealIdentity, SealingContext
from tests.signing.sealing import context, identity
from tests.testpki import DEPARTMENT_CODE, DEPARTMENT_NAME, TestPKI, build_look_alike_pki
from tests.verify import forge
from tests.verify.forge import CertificationAuthorities, Sealed
from verify.policy import VerificationPolicy

__all__ = ["ECDSAScheme", "Scheme"]


class Scheme(ABC):
    """A test PKI of one seal algorithm, and the forgeries that depend on the algorithm."""

    @property
    @abstractmethod
    def authorities(self) -> CertificationAuthorities:
        """The root and the issuing CA, which certifies the seals and answers for them."""

    @abstractmethod
    def identity(
        self, *, department_name: str = DEPARTMENT_NAME, department_code: str = DEPARTMENT_CODE
    ) -> SealIdentity:
        """A new licence seal of the department."""

    @abstractmethod
    def context(self, seal: SealIdentity) -> SealingContext:
        """The timestamper and the validation material to seal with ``seal``."""

    @abstractmethod
    def ocsp_responder(self, statuses: dict[int, RevocationStatus] | None = None) -> OCSPResponder:
        """The responder for the issuing CA's seals: ``statuses`` by serial, ``good`` otherwise."""

    @abstractmethod
    def look_alike(self) -> Scheme:
        """A PKI of the same algorithm with the same names and keys of its own."""

    @abstractmethod
    def look_alike_seal(self, genuine: SealIdentity) -> SealIdentity:
        """An untrusted seal with ``genuine``'s subject and picture."""

    @property
    def root_certificate(self) -> x509.Certificate:
        """The trust anchor."""
        return self.authorities.root.certificate

    def seal(
        self,
        pdf: bytes | None = None,
        *,
        level: SealLevel = SealLevel.B_LT,
        certification: Certification = Certification.APPROVAL,
        seal_identity: SealIdentity | None = None,
    ) -> Sealed:
        """Seal ``pdf`` (a fresh one-page PDF by default) with ``seal_identity`` or a new seal."""
        who = seal_identity or self.identity()
        return forge.seal_with(
            who, self.context(who), pdf, level=level, certification=certification
        )

    def crls(self, revoked: tuple[RevokedEntry, ...] = ()) -> tuple[bytes, ...]:
        """The current CRLs of the root and of the issuing CA (which lists ``revoked``)."""
        return forge.service_crls(self.authorities, revoked)

    def policy(self, revoked: tuple[RevokedEntry, ...] = ()) -> VerificationPolicy:
        """The service's policy: the root and the current CRLs."""
        return VerificationPolicy(trust_roots=(self.root_certificate,), crls=self.crls(revoked))

    def ocsp_response(
        self, certificate: x509.Certificate, statuses: dict[int, RevocationStatus] | None = None
    ) -> bytes:
        """A fresh DER OCSP response about ``certificate``."""
        issuer = self.authorities.issuing.certificate
        return forge.ocsp_answer(self.ocsp_responder(statuses), certificate, issuer)

    def replace_contents(self, pdf: bytes, signer: KeySigner) -> bytes:
        """The first signature's signed bytes re-signed by ``signer`` (another genuine seal)."""
        return forge.replace_contents(pdf, signer)


@dataclass(frozen=True)
class ECDSAScheme(Scheme):
    """ECDSA P-256 seals of the test PKI (CAs on P-384, a delegated OCSP responder)."""

    pki: TestPKI

    @property
    def authorities(self) -> TestPKI:
        """The test PKI's root and issuing CA."""
        return self.pki

    def identity(
        self, *, department_name: str = DEPARTMENT_NAME, department_code: str = DEPARTMENT_CODE
    ) -> SealIdentity:
        """A new P-256 licence seal of the department."""
        return identity(self.pki, department_name=department_name, department_code=department_code)

    def context(self, seal: SealIdentity) -> SealingContext:
        """The test TSA, and the test PKI's validation material for ``seal``."""
        return context(self.pki, seal)

    def ocsp_responder(self, statuses: dict[int, RevocationStatus] | None = None) -> OCSPResponder:
        """The delegated responder."""
        return self.pki.ocsp_responder(statuses)

    def look_alike(self) -> ECDSAScheme:
        """An impostor's PKI with the test PKI's names."""
        return ECDSAScheme(build_look_alike_pki(self.pki))

    def look_alike_seal(self, genuine: SealIdentity) -> SealIdentity:
        """A self-signed P-256 seal with the genuine subject."""
        return forge.look_alike(genuine, generate_software_key("look-alike", KeyAlgorithm.EC_P256))
