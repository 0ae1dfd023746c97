"""An SM2 test PKI for the attack tests: the SM2 hierarchy of :mod:`tests.signing.sm2` with an
SM2 timestamp authority, SM2 CRLs and SM2 OCSP answers, and sealed documents made with it.

Its shape is the service's SM2 hierarchy (:mod:`econtract.sm2_authorities`): the issuing CA
certifies the seals and answers OCSP about them itself, the timestamp authority is certified
by the issuing CA, every signature is SM2-with-SM3. A look-alike is a second hierarchy with
the same names and keys of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from keys.ocsp import OCSPResponder, RevocationStatus
from keys.sm2 import generate_sm2_key
from keys.sm2ca import SM2Authority, SM2Hierarchy, issue_sm2_tsa_certificate
from keys.tsa import InProcessTimeStamper, TimestampAuthority
from signing.material import ValidationMaterial
from signing.sealer import SealIdentity, SealingContext
from tests.signing.sm2 import new_sm2_hierarchy, sm2_hierarchy, sm2_identity
from tests.testpki import DEPARTMENT_CODE, DEPARTMENT_NAME
from tests.verify import forge
from tests.verify.schemes import Scheme


@dataclass(frozen=True, kw_only=True)
class SM2TestPKI(Scheme):
    """An SM2 hierarchy with its timestamp authority; the issuing CA answers OCSP."""

    hierarchy: SM2Hierarchy
    """The SM2 root and issuing CA."""
    tsa: SM2Authority
    """The SM2 timestamp authority, certified by the issuing CA."""

    @property
    def authorities(self) -> SM2Hierarchy:
        """The SM2 root and issuing CA."""
        return self.hierarchy

    def identity(
        self, *, department_name: str = DEPARTMENT_NAME, department_code: str = DEPARTMENT_CODE
    ) -> SealIdentity:
        """A new SM2 licence seal of the department, certified by the issuing CA."""
        return sm2_identity(
            hierarchy=self.hierarchy,
            department_name=department_name,
            department_code=department_code,
        )

    def ocsp_responder(self, statuses: dict[int, RevocationStatus] | None = None) -> OCSPResponder:
        """The issuing CA answering for its seals: ``statuses`` by serial, ``good`` otherwise."""
        known = dict(statuses or {})
        issuing = self.hierarchy.issuing
        return OCSPResponder(
            responder=issuing,
            issuers=[issuing.certificate],
            lookup=lambda _issuer, serial: known.get(serial, RevocationStatus("good")),
        )

    def context(self, seal: SealIdentity) -> SealingContext:
        """The SM2 timestamper and the SM2 validation material for ``seal``."""
        return SealingContext(
            timestamper=InProcessTimeStamper(TimestampAuthority(authority=self.tsa)),
            material=ValidationMaterial.build(
                certificates=[*self.hierarchy.chain, self.tsa.certificate],
                crls=list(self.crls()),
                ocsp_responses=[self.ocsp_response(seal.certificate)],
            ),
        )

    def look_alike(self) -> SM2TestPKI:
        """A new SM2 PKI with the same names and keys of its own (an impostor's)."""
        return _sm2_pki(new_sm2_hierarchy("impostor"))

    def look_alike_seal(self, genuine: SealIdentity) -> SealIdentity:
        """A self-signed SM2 seal with ``genuine``'s subject and picture."""
        return forge.look_alike(genuine, generate_sm2_key("look-alike"))


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
