"""Validation material a seal embeds for PAdES B-LT: certificates, CRLs and OCSP responses.

The service is its own CA, so this material is at hand when a seal is made; nothing is
fetched. It is converted to pyHanko's (asn1crypto) form once, when built, and its PDF
streams are serialised the first time a seal embeds it; both are reused for every document
sealed while the material is fresh (the service keeps one per validity period: new CRLs, a
new OCSP response or a revocation give new material).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from keys.signer import to_asn1
from signing.dss import PreparedDSS


@dataclass(frozen=True)
class ValidationMaterial:
    """What a validator needs to check a seal offline, in pyHanko's types.

    Build with :meth:`build`.
    """

    certificates: tuple[asn1_x509.Certificate, ...]
    """The chain of the seal and of the timestamp authority, root included."""
    crls: tuple[asn1_crl.CertificateList, ...]
    """The current CRL of every CA in those chains."""
    ocsp_responses: tuple[asn1_ocsp.OCSPResponse, ...] = field(default=())
    """OCSP responses for the seal's certificate (and the TSA's), if any."""

    @classmethod
    def build(
        cls,
        *,
        certificates: Iterable[x509.Certificate],
        crls: Iterable[bytes],
        ocsp_responses: Iterable[bytes] = (),
    ) -> ValidationMaterial:
        """Convert certificates and DER-encoded CRLs and OCSP responses."""
        # Keyed by DER so that a certificate named twice (the issuing CA of both the seal and
        # the TSA) is embedded once.
        unique = {cert.public_bytes(Encoding.DER): cert for cert in certificates}
        return cls(
            certificates=tuple(to_asn1(c) for c in unique.values()),
            crls=tuple(asn1_crl.CertificateList.load(der) for der in crls),
            ocsp_responses=tuple(asn1_ocsp.OCSPResponse.load(der) for der in ocsp_responses),
        )

    @cached_property
    def prepared_dss(self) -> PreparedDSS:
        """The DSS streams of this material, serialised once for every document sealed."""
        return PreparedDSS.build(
            certificates=self.certificates, ocsp_responses=self.ocsp_responses, crls=self.crls
        )
