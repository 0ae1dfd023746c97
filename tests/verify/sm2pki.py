"""An SM2 test PKI for the attack tests: the SM2 hierarchy of :mod:`tests.signing.sm2` with an
SM2 timestamp authority, SM2 CRLs and SM2 OCSP answers, and sealed documents made with it.

Its shape is the service's SM2 hierarchy (:mod:`econtract.sm2_authorities`): the issuing CA
certifies the seals and answers OCSP about them itself, the timestamp authority is certified
by the issuing CA, every signature is SM2-with-SM3. A look-alike is a second hierarchy with
the same names and keys of its own.
"""

from __future__ import annotations

import asyncio
import datetime
from dataclasses import dataclass
from functools import cache

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from keys.ca import SealSubject
from keys.crl import RevokedEntry, build_crl
from keys.ocsp import OCSPResponder, RevocationStatus
from keys.signer import KeySigner
from keys.sm2 import SM2KeyHandle, generate_sm2_key
from keys.sm2ca import (
    SM2Authority,
    SM2Hierarchy,
    create_sm2_hierarchy,
    issue_sm2_seal_certificate,
    issue_sm2_tsa_certificate,
)
from keys.tsa import InProcessTimeStamper, TimestampAuthority
from signing.appearance import SealAppearance
from signing.material import ValidationMaterial
from signing.options import Certification, SealLevel, SealOptions
from signing.sealer import SealIdentity, SealingContext, seal_pdf_bytes
from tests.signing.sealing import make_pdf
from tests.signing.sm2 import sm2_hierarchy
from tests.testpki import DEPARTMENT_CODE, DEPARTMENT_NAME
from tests.verify import forge
from tests.verify.forge import Sealed
from verify.policy import VerificationPolicy

_HOUR = datetime.timedelta(hours=1)
_DAY = datetime.timedelta(days=1)


@dataclass(frozen=True, kw_only=True)
class SM2TestPKI:
    """An SM2 hierarchy with its timestamp authority; the issuing CA answers OCSP."""

    hierarchy: SM2Hierarchy
    """The SM2 root and issuing CA."""
    tsa: SM2Authority
    """The SM2 timestamp authority, certified by the issuing CA."""

    @property
    def root(self) -> SM2Authority:
        """The SM2 root CA."""
        return self.hierarchy.root

    @property
    def issuing(self) -> SM2Authority:
        """The SM2 issuing CA."""
        return self.hierarchy.issuing

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """The chain above a seal certificate: the issuing CA, then the root."""
        return self.hierarchy.chain

    @property
    def root_certificate(self) -> x509.Certificate:
        """The SM2 root's certificate, the trust anchor."""
        return self.root.certificate

    def identity(
        self,
        *,
        department_name: str = DEPARTMENT_NAME,
        department_code: str = DEPARTMENT_CODE,
        seal_name: str = "证照专用章",
    ) -> SealIdentity:
        """A new SM2 licence seal of the department, certified by the issuing CA."""
        handle = generate_sm2_key("sm2-attack-seal")
        now = datetime.datetime.now(datetime.UTC)
        certificate = issue_sm2_seal_certificate(
            self.issuing,
            handle.public_key_info(),
            subject=SealSubject(
                department_name=department_name,
                department_code=department_code,
                seal_kind="licence",
                seal_name=seal_name,
            ),
            ca_name=self.hierarchy.ca_name,
            urls=self.hierarchy.urls,
            not_before=now - _HOUR,
            not_after=now + 30 * _DAY,
        )
        return SealIdentity(
            signer=KeySigner.for_handle(handle, certificate, self.chain),
            certificate=certificate,
            chain=self.chain,
            appearance=SealAppearance(
                department_name=department_name, seal_name=seal_name, code=department_code[-13:]
            ),
        )

    def ocsp_responder(self, statuses: dict[int, RevocationStatus] | None = None) -> OCSPResponder:
        """The issuing CA answering for its seals: ``statuses`` by serial, ``good`` otherwise."""
        known = dict(statuses or {})
        return OCSPResponder(
            responder=self.issuing,
            issuers=[self.issuing.certificate],
            lookup=lambda _issuer, serial: known.get(serial, RevocationStatus("good")),
        )

    def ocsp_response(
        self, certificate: x509.Certificate, statuses: dict[int, RevocationStatus] | None = None
    ) -> bytes:
        """A fresh DER OCSP response of the issuing CA about ``certificate``."""
        request = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(certificate, self.issuing.certificate, hashes.SHA256())
            .build()
            .public_bytes(Encoding.DER)
        )
        return self.ocsp_responder(statuses).respond(request).der

    def crls(self, revoked: tuple[RevokedEntry, ...] = ()) -> tuple[bytes, ...]:
        """The current CRLs of the root and the issuing CA (which lists ``revoked``)."""
        now = datetime.datetime.now(datetime.UTC)
        return tuple(
            build_crl(
                authority,
                revoked=revoked if authority is self.issuing else (),
                crl_number=2,
                this_update=now,
                next_update=now + _DAY,
            ).public_bytes(Encoding.DER)
            for authority in (self.root, self.issuing)
        )

    def policy(self, revoked: tuple[RevokedEntry, ...] = ()) -> VerificationPolicy:
        """A policy trusting the SM2 root, with its current CRLs."""
        return VerificationPolicy(trust_roots=(self.root.certificate,), crls=self.crls(revoked))

    def context(self, seal: SealIdentity) -> SealingContext:
        """The SM2 timestamper and the SM2 validation material for ``seal``."""
        return SealingContext(
            timestamper=InProcessTimeStamper(TimestampAuthority(authority=self.tsa)),
            material=ValidationMaterial.build(
                certificates=[*self.chain, self.tsa.certificate],
                crls=list(self.crls()),
                ocsp_responses=[self.ocsp_response(seal.certificate)],
            ),
        )

    def seal(
        self,
        pdf: bytes | None = None,
        *,
        level: SealLevel = SealLevel.B_LT,
        certification: Certification = Certification.APPROVAL,
        seal_identity: SealIdentity | None = None,
    ) -> Sealed:
        """Seal ``pdf`` (a fresh one-page PDF by default) with an SM2 seal of this PKI."""
        who = seal_identity or self.identity()
        out, result = seal_pdf_bytes(
            pdf or make_pdf(),
            identity=who,
            options=SealOptions(level=level, certification=certification),
            context=self.context(who),
        )
        return Sealed(out, who, result)

    def look_alike(self) -> SM2TestPKI:
        """A new SM2 PKI with the same names and keys of its own (an impostor's)."""
        return _sm2_pki(
            create_sm2_hierarchy(
                root_key=generate_sm2_key("impostor-root"),
                issuing_key=generate_sm2_key("impostor-issuing"),
                name="Test",
                urls=self.hierarchy.urls,
            )
        )

    def look_alike_seal(self, genuine: SealIdentity) -> SealIdentity:
        """A self-signed SM2 seal with ``genuine``'s subject and picture."""
        handle = generate_sm2_key("look-alike")
        now = datetime.datetime.now(datetime.UTC) - _HOUR
        certificate = _sm2_self_signed(handle, genuine.certificate.subject, now)
        return SealIdentity(
            signer=KeySigner.for_handle(handle, certificate, ()),
            certificate=certificate,
            chain=(),
            appearance=genuine.appearance,
        )

    def replace_contents(self, pdf: bytes, signer: KeySigner) -> bytes:
        """Re-sign the first signature's signed bytes with the SM2 ``signer`` (SM3 digest), as
        :func:`tests.verify.forge.replace_contents` does with SHA-256 for the others."""
        a, b, c, d, _ = forge.byte_range(pdf)
        digest = hashes.Hash(hashes.SM3())
        digest.update(pdf[a : a + b] + pdf[c : c + d])
        cms = asyncio.run(signer.async_sign(digest.finalize(), "sm3", use_pades=True))
        start, end = a + b + 1, c - 1  # inside "<" … ">"
        new_hex: bytes = cms.dump().hex().encode()
        assert len(new_hex) <= end - start
        return pdf[:start] + new_hex.ljust(end - start, b"0") + pdf[end:]


def _sm2_self_signed(
    handle: SM2KeyHandle, subject: x509.Name, now: datetime.datetime
) -> x509.Certificate:
    """A self-signed SM2-with-SM3 certificate for ``handle`` (what
    :func:`tests.verify.forge.handle_self_signed` makes for the others): drafted by
    cryptography with a stand-in key, finished with asn1crypto as :mod:`keys.sm2ca` does."""
    stand_in = ec.generate_private_key(ec.SECP256R1())
    draft = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(stand_in.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + 30 * _DAY)
        .sign(stand_in, hashes.SHA256())
    )
    certificate = asn1_x509.Certificate.load(draft.public_bytes(Encoding.DER))
    sm2_with_sm3 = asn1_x509.SignedDigestAlgorithm({"algorithm": "sm2_sm3"})
    tbs = certificate["tbs_certificate"]
    tbs["subject_public_key_info"] = handle.public_key_info()
    tbs["signature"] = sm2_with_sm3
    certificate["signature_algorithm"] = sm2_with_sm3
    certificate["signature_value"] = handle.sign(tbs.dump(force=True))
    return x509.load_der_x509_certificate(certificate.dump(force=True))


def _sm2_pki(hierarchy: SM2Hierarchy) -> SM2TestPKI:
    handle = generate_sm2_key("sm2-attack-tsa")
    certificate = issue_sm2_tsa_certificate(
        hierarchy.issuing,
        handle.public_key_info(),
        common_name="eContract Test SM2 Timestamp Authority",
        ca_name=hierarchy.ca_name,
        urls=hierarchy.urls,
    )
    tsa = SM2Authority(certificate=certificate, handle=handle, chain=hierarchy.chain)
    return SM2TestPKI(hierarchy=hierarchy, tsa=tsa)


@cache
def build_sm2_test_pki() -> SM2TestPKI:
    """The SM2 test PKI over :func:`tests.signing.sm2.sm2_hierarchy`, made once."""
    return _sm2_pki(sm2_hierarchy())
