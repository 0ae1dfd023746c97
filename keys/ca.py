"""The CA hierarchy: a root, issuing CAs, and the certificates they issue.

Certificates are built with cryptography's builders and signed by a :class:`KeyHandle`
(see :mod:`keys.tbs`), so an authority's key may stay in an HSM.

Seal certificates name the department (O, organizationIdentifier ``NTRCN-<USCC>``), the seal
(OU, CN) and carry the seal's kind as a certificate policy (:mod:`keys.oids`).
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from keys.errors import PKIError
from keys.handles import KeyAlgorithm, KeyHandle, generate_software_key
from keys.names import ORG_ID_PREFIX, department_code_of, seal_kind_of
from keys.oids import (
    ENTERPRISE_SEAL_POLICY,
    ORGANIZATION_IDENTIFIER,
    SEAL_KIND_POLICIES,
    SEAL_POLICY,
)
from keys.tbs import sign_certificate

__all__ = [
    "Authority",
    "Hierarchy",
    "PKIURLs",
    "SealSubject",
    "check_validity",
    "create_in_memory_hierarchy",
    "create_issuing_ca",
    "create_root_ca",
    "department_code_of",
    "issue_ocsp_responder_certificate",
    "issue_seal_certificate",
    "issue_tsa_certificate",
    "seal_extensions",
    "seal_kind_of",
]

ROOT_CA_NAME = "root"
"""The URL slug of the root CA (its CRL and certificate under ``/pki``)."""

# The shape of a unified social credit code (GB 32100): 18 characters of its alphabet. The
# check characters are verified by the registry (econtract.uscc) before a seal is made.
_USCC_SHAPE = re.compile(r"[0-9A-HJ-NP-RTUW-Y]{18}")
_REGION = re.compile(r"[0-9]{6}")


@dataclass(frozen=True, kw_only=True)
class Authority:
    """A CA or service identity: its certificate, its key handle and the chain above it."""

    certificate: x509.Certificate
    """The authority's own certificate."""
    handle: KeyHandle
    """The key that signs for the authority."""
    chain: tuple[x509.Certificate, ...] = ()
    """The certificates above it, issuer first, up to the root; empty for the root."""


@dataclass(frozen=True, kw_only=True)
class PKIURLs:
    """The public URLs of the PKI, under the service's base URL."""

    base_url: str
    """The public base URL, e.g. ``http://127.0.0.1:8000`` (a trailing slash is ignored)."""

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"The PKI base URL must be http(s), not {self.base_url!r}.")

    @property
    def _base(self) -> str:
        return self.base_url.rstrip("/")

    def crl_url(self, ca_name: str) -> str:
        """Where the CRL of the CA ``ca_name`` is published."""
        return f"{self._base}/pki/crl/{ca_name}.crl"

    def ocsp_url(self) -> str:
        """The OCSP responder."""
        return f"{self._base}/pki/ocsp"

    def ca_issuers_url(self, ca_name: str) -> str:
        """Where the certificate of the CA ``ca_name`` is published (DER)."""
        return f"{self._base}/pki/ca/{ca_name}.cer"

    def tsa_url(self) -> str:
        """The RFC 3161 timestamp authority."""
        return f"{self._base}/pki/tsa"


@dataclass(frozen=True, kw_only=True)
class SealSubject:
    """Whom a seal certificate names: the department and the kind of seal."""

    department_name: str
    """The department's name, e.g. ``杭州市市场监督管理局``."""
    department_code: str
    """The department's 18-character unified social credit code (GB 32100)."""
    seal_kind: str
    """``official``, ``licence`` or ``contract``."""
    seal_name: str
    """The seal's Chinese name, e.g. ``证照专用章``."""
    region: str | None = None
    """The 6-digit administrative division code, if known (not put in the certificate)."""
    enterprise: bool = False
    """Whether the subject is an enterprise (its seal carries the enterprise seal policy
    instead of the department seal policy); the name and code fields then name it."""

    def __post_init__(self) -> None:
        if not self.department_name.strip():
            raise ValueError("The department name must not be empty.")
        if _USCC_SHAPE.fullmatch(self.department_code) is None:
            raise ValueError(f"{self.department_code!r} is not a unified social credit code.")
        if self.seal_kind not in SEAL_KIND_POLICIES:
            raise ValueError(
                f"Unknown seal kind {self.seal_kind!r}; use one of {sorted(SEAL_KIND_POLICIES)}."
            )
        if not self.seal_name.strip():
            raise ValueError("The seal name must not be empty.")
        if self.region is not None and _REGION.fullmatch(self.region) is None:
            raise ValueError(f"The region {self.region!r} is not a 6-digit division code.")

    def name(self) -> x509.Name:
        """The certificate subject."""
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.department_name),
                x509.NameAttribute(ORGANIZATION_IDENTIFIER, ORG_ID_PREFIX + self.department_code),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, self.seal_name),
                x509.NameAttribute(NameOID.COMMON_NAME, self.department_name + self.seal_name),
            ]
        )


def _now(now: datetime.datetime | None) -> datetime.datetime:
    if now is None:
        return datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    if now.tzinfo is None:
        raise ValueError("Times must be timezone-aware.")
    return now


def _authority_name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(
    *, digital_signature: bool = False, non_repudiation: bool = False, ca: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=non_repudiation,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def draft_issued(
    issuer: x509.Certificate,
    subject: x509.Name,
    key_identifier: x509.SubjectKeyIdentifier,
    *,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    serial_number: int | None = None,
) -> x509.CertificateBuilder:
    """A certificate issued by the holder of ``issuer``, with the key identifiers every one
    carries, but no public key yet: each hierarchy puts its subject's key in its own way
    (cryptography's builder here; asn1crypto for SM2, :mod:`keys.sm2ca`)."""
    check_validity(issuer, not_before=not_before, not_after=not_after)
    issuer_ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .serial_number(serial_number or x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(key_identifier, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski.value),
            critical=False,
        )
    )


def draft_root(
    name: x509.Name,
    key_identifier: x509.SubjectKeyIdentifier,
    *,
    start: datetime.datetime,
    validity_days: int,
) -> x509.CertificateBuilder:
    """A self-issued root CA certificate named ``name``, without its public key yet."""
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=validity_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(key_identifier, critical=False)
    )


def issuing_ca_extensions(
    builder: x509.CertificateBuilder, urls: PKIURLs, root_name: str
) -> x509.CertificateBuilder:
    """What an issuing CA's certificate carries: a CA of path length 0, signing certificates
    and CRLs, whose revocation the root's CRL (published as ``root_name``) tells."""
    builder = builder.add_extension(
        x509.BasicConstraints(ca=True, path_length=0), critical=True
    ).add_extension(_key_usage(ca=True), critical=True)
    return _revocation_pointers(builder, urls, root_name, ocsp=False)


def tsa_extensions(
    builder: x509.CertificateBuilder, urls: PKIURLs, ca_name: str
) -> x509.CertificateBuilder:
    """What a timestamp authority's certificate carries: EKU timeStamping only, critical
    (RFC 3161 §2.3), and the issuing CA's revocation pointers."""
    builder = (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
    )
    return _revocation_pointers(builder, urls, ca_name, ocsp=True)


def check_ca_name(ca_name: str, *taken: str) -> None:
    """Refuse an issuing CA's URL slug that is not one, or is one of ``taken``."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", ca_name) or ca_name in taken:
        raise ValueError(f"Invalid issuing CA name {ca_name!r}.")


def authority_validity(
    issuer: x509.Certificate | None, now: datetime.datetime | None, validity_days: int
) -> tuple[datetime.datetime, datetime.datetime]:
    """The validity of an authority's certificate from ``now``: ``validity_days`` long, cut to
    the ``issuer``'s (a validity given in days is cut, rather than refused)."""
    start = _now(now)
    end = start + datetime.timedelta(days=validity_days)
    if issuer is not None:
        end = min(end, issuer.not_valid_after_utc)
    return start, end


def _issued_by(
    ca: Authority,
    public_key: PublicKeyTypes,
    subject: x509.Name,
    *,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    serial_number: int | None = None,
) -> x509.CertificateBuilder:
    """A builder for a certificate of ``public_key`` issued by ``ca``."""
    return draft_issued(
        ca.certificate,
        subject,
        x509.SubjectKeyIdentifier.from_public_key(public_key),  # type: ignore[arg-type]
        not_before=not_before,
        not_after=not_after,
        serial_number=serial_number,
    ).public_key(public_key)  # type: ignore[arg-type]  # DH/X25519 etc. refused by builder


def check_validity(
    issuer: x509.Certificate, *, not_before: datetime.datetime, not_after: datetime.datetime
) -> None:
    """Refuse a validity that ends before it starts or outlives the issuer's certificate."""
    if not_after <= not_before:
        raise PKIError("A certificate must end after it starts.")
    if not_after > issuer.not_valid_after_utc:
        raise PKIError(f"The certificate would outlive its issuer ({issuer.not_valid_after_utc}).")


def seal_extensions(
    builder: x509.CertificateBuilder, subject: SealSubject, urls: PKIURLs, ca_name: str
) -> x509.CertificateBuilder:
    """What every seal certificate carries besides its key identifiers, whatever its algorithm:
    end entity, signing and non-repudiation, the seal policies and the revocation pointers."""
    builder = (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True, non_repudiation=True), critical=True)
        .add_extension(
            x509.CertificatePolicies(
                [
                    x509.PolicyInformation(
                        ENTERPRISE_SEAL_POLICY if subject.enterprise else SEAL_POLICY, None
                    ),
                    x509.PolicyInformation(SEAL_KIND_POLICIES[subject.seal_kind], None),
                ]
            ),
            critical=False,
        )
    )
    return _revocation_pointers(builder, urls, ca_name, ocsp=True)


def _revocation_pointers(
    builder: x509.CertificateBuilder, urls: PKIURLs, ca_name: str, *, ocsp: bool
) -> x509.CertificateBuilder:
    access = [
        x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS,
            x509.UniformResourceIdentifier(urls.ca_issuers_url(ca_name)),
        )
    ]
    if ocsp:
        access.insert(
            0,
            x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP,
                x509.UniformResourceIdentifier(urls.ocsp_url()),
            ),
        )
    crl_dp = x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(urls.crl_url(ca_name))],
        relative_name=None,
        reasons=None,
        crl_issuer=None,
    )
    return builder.add_extension(
        x509.CRLDistributionPoints([crl_dp]), critical=False
    ).add_extension(x509.AuthorityInformationAccess(access), critical=False)


def create_root_ca(
    handle: KeyHandle,
    *,
    common_name: str,
    organization: str,
    validity_days: int = 7300,
    now: datetime.datetime | None = None,
) -> Authority:
    """A self-signed root CA for the key ``handle``."""
    public_key = handle.public_key()
    builder = draft_root(
        _authority_name(common_name, organization),
        x509.SubjectKeyIdentifier.from_public_key(public_key),  # type: ignore[arg-type]
        start=_now(now),
        validity_days=validity_days,
    ).public_key(public_key)  # type: ignore[arg-type]
    return Authority(certificate=sign_certificate(builder, handle), handle=handle)


def create_issuing_ca(
    root: Authority,
    handle: KeyHandle,
    *,
    ca_name: str,
    common_name: str,
    organization: str,
    urls: PKIURLs,
    validity_days: int = 3650,
    now: datetime.datetime | None = None,
) -> Authority:
    """An issuing CA (path length 0) under ``root``; ``ca_name`` is its URL slug.

    Its CRL distribution point and caIssuers point at the root's CRL and certificate.
    """
    check_ca_name(ca_name, ROOT_CA_NAME)
    start, end = authority_validity(root.certificate, now, validity_days)
    builder = _issued_by(
        root,
        handle.public_key(),
        _authority_name(common_name, organization),
        not_before=start,
        not_after=end,
    )
    builder = issuing_ca_extensions(builder, urls, ROOT_CA_NAME)
    return Authority(
        certificate=sign_certificate(builder, root.handle),
        handle=handle,
        chain=(root.certificate, *root.chain),
    )


def issue_seal_certificate(
    ca: Authority,
    public_key: PublicKeyTypes,
    *,
    subject: SealSubject,
    ca_name: str,
    urls: PKIURLs,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    serial_number: int | None = None,
) -> x509.Certificate:
    """A seal certificate for ``public_key``, naming ``subject``, issued by ``ca``."""
    builder = _issued_by(
        ca,
        public_key,
        subject.name(),
        not_before=not_before,
        not_after=not_after,
        serial_number=serial_number,
    )
    return sign_certificate(seal_extensions(builder, subject, urls, ca_name), ca.handle)


def issue_tsa_certificate(
    ca: Authority,
    public_key: PublicKeyTypes,
    *,
    common_name: str,
    ca_name: str,
    urls: PKIURLs,
    validity_days: int = 3650,
    now: datetime.datetime | None = None,
) -> x509.Certificate:
    """A timestamping certificate: EKU timeStamping (critical, as RFC 3161 requires)."""
    start, end = authority_validity(ca.certificate, now, validity_days)
    builder = _issued_by(
        ca,
        public_key,
        _authority_name(common_name, _organization_of(ca.certificate)),
        not_before=start,
        not_after=end,
    )
    return sign_certificate(tsa_extensions(builder, urls, ca_name), ca.handle)


def issue_ocsp_responder_certificate(
    ca: Authority,
    public_key: PublicKeyTypes,
    *,
    common_name: str,
    validity_days: int = 365,
    now: datetime.datetime | None = None,
) -> x509.Certificate:
    """A delegated OCSP responder certificate: EKU OCSPSigning and id-pkix-ocsp-nocheck."""
    start, end = authority_validity(ca.certificate, now, validity_days)
    builder = _issued_by(
        ca,
        public_key,
        _authority_name(common_name, _organization_of(ca.certificate)),
        not_before=start,
        not_after=end,
    )
    builder = (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        # Clients need not check the responder's own status (RFC 6960 §4.2.2.2.1).
        .add_extension(x509.OCSPNoCheck(), critical=False)
    )
    return sign_certificate(builder, ca.handle)


def _organization_of(cert: x509.Certificate) -> str:
    values = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(values[0].value) if values else "eContract"


@dataclass(frozen=True, kw_only=True)
class Hierarchy:
    """A complete CA hierarchy: root, issuing CA, timestamp authority, OCSP responder."""

    root: Authority
    """The root CA."""
    issuing: Authority
    """The issuing CA, which issues seals, the TSA and the OCSP responder."""
    tsa: Authority
    """The timestamp authority's identity."""
    ocsp: Authority
    """The delegated OCSP responder's identity."""
    urls: PKIURLs
    """The URLs written into the certificates."""
    ca_name: str
    """The issuing CA's URL slug."""
    now: datetime.datetime
    """The start of every certificate's validity."""

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """The chain above a seal certificate: the issuing CA, then the root."""
        return (self.issuing.certificate, self.root.certificate)


def create_in_memory_hierarchy(
    *,
    name: str,
    base_url: str,
    ca_name: str,
    now: datetime.datetime,
) -> Hierarchy:
    """A hierarchy whose keys live in process memory only (tests, benchmarks, demos).

    ``name`` (e.g. ``Test``) goes into every common name and the organisation.
    """
    slug = name.lower()
    urls = PKIURLs(base_url=base_url)
    organization = f"eContract {name}"
    root = create_root_ca(
        generate_software_key(f"{slug}-root", KeyAlgorithm.EC_P384),
        common_name=f"eContract {name} Root CA",
        organization=organization,
        now=now,
    )
    issuing = create_issuing_ca(
        root,
        generate_software_key(f"{slug}-issuing", KeyAlgorithm.EC_P384),
        ca_name=ca_name,
        common_name=f"eContract {name} Issuing CA",
        organization=organization,
        urls=urls,
        now=now,
    )
    chain = (issuing.certificate, root.certificate)
    tsa_key = generate_software_key(f"{slug}-tsa", KeyAlgorithm.EC_P256)
    tsa_cert = issue_tsa_certificate(
        issuing,
        tsa_key.public_key(),
        common_name=f"eContract {name} TSA",
        ca_name=ca_name,
        urls=urls,
        now=now,
    )
    ocsp_key = generate_software_key(f"{slug}-ocsp", KeyAlgorithm.EC_P256)
    ocsp_cert = issue_ocsp_responder_certificate(
        issuing, ocsp_key.public_key(), common_name=f"eContract {name} OCSP Responder", now=now
    )
    return Hierarchy(
        root=root,
        issuing=issuing,
        tsa=Authority(certificate=tsa_cert, handle=tsa_key, chain=chain),
        ocsp=Authority(certificate=ocsp_cert, handle=ocsp_key, chain=chain),
        urls=urls,
        ca_name=ca_name,
        now=now,
    )
