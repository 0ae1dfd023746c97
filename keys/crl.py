"""Certificate revocation lists, signed by a CA's key handle (SM2 CAs sign SM2-with-SM3)."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509

from keys.ca import Authority
from keys.errors import PKIError
from keys.sm2ca import SM2Authority
from keys.tbs import sign_crl


@dataclass(frozen=True)
class RevokedEntry:
    """One revoked certificate in a CRL."""

    serial_number: int
    """The serial number of the revoked certificate."""
    revoked_at: datetime.datetime
    """When it was revoked (timezone-aware)."""
    reason: x509.ReasonFlags | None = None
    """The RFC 5280 reason, or ``None`` to leave the reason code out."""

    def __post_init__(self) -> None:
        if self.serial_number <= 0:
            raise ValueError("A serial number must be positive.")
        if self.revoked_at.tzinfo is None:
            raise ValueError("The revocation time must be timezone-aware.")


def build_crl(
    ca: Authority | SM2Authority,
    *,
    revoked: Iterable[RevokedEntry],
    crl_number: int,
    this_update: datetime.datetime,
    next_update: datetime.datetime,
) -> x509.CertificateRevocationList:
    """The CRL of ``ca`` listing ``revoked``, with CRL number and authority key identifier."""
    if next_update <= this_update:
        raise PKIError("A CRL's next update must come after its this update.")
    if crl_number < 0:
        raise PKIError("A CRL number must not be negative.")
    ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(crl_number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    )
    for entry in revoked:
        revoked_cert = (
            x509.RevokedCertificateBuilder()
            .serial_number(entry.serial_number)
            .revocation_date(entry.revoked_at)
        )
        # RFC 5280 §5.3.1: leave the reason out rather than write "unspecified".
        if entry.reason is not None and entry.reason is not x509.ReasonFlags.unspecified:
            revoked_cert = revoked_cert.add_extension(x509.CRLReason(entry.reason), critical=False)
        builder = builder.add_revoked_certificate(revoked_cert.build())
    return sign_crl(builder, ca.handle)
