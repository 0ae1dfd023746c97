"""Reading certificates for the report: names, fingerprints, the seal's department."""

from __future__ import annotations

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.x509.oid import NameOID

from keys.names import department_code_of, seal_kind_of
from verify.report import CertificateInfo, SignerInfo


def certificate_info(cert: asn1_x509.Certificate) -> CertificateInfo:
    """A certificate as the report shows it."""
    return CertificateInfo(
        subject=cert.subject.human_friendly,
        issuer=cert.issuer.human_friendly,
        serial=format(cert.serial_number, "x"),
        sha256=cert.sha256.hex(),
        not_before=cert.not_valid_before,
        not_after=cert.not_valid_after,
    )


def signer_info(cert: asn1_x509.Certificate) -> SignerInfo:
    """The department and seal a seal certificate names (empty fields for a foreign one)."""
    try:
        parsed = x509.load_der_x509_certificate(cert.dump())
    except ValueError:
        return SignerInfo(
            department_name=None,
            department_code=None,
            seal_name=None,
            seal_kind=None,
            common_name=None,
            certificate_sha256=cert.sha256.hex(),
        )
    return SignerInfo(
        department_name=_attribute(parsed, NameOID.ORGANIZATION_NAME),
        department_code=department_code_of(parsed),
        seal_name=_attribute(parsed, NameOID.ORGANIZATIONAL_UNIT_NAME),
        seal_kind=seal_kind_of(parsed),
        common_name=_attribute(parsed, NameOID.COMMON_NAME),
        certificate_sha256=cert.sha256.hex(),
    )


def _attribute(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str | None:
    values = cert.subject.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None
