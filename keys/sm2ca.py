"""The SM2 CA hierarchy: a root and an issuing CA whose certificates are signed SM2-with-SM3.

It stands beside the hierarchy of :mod:`keys.ca` and names its subjects the same way. The
certificates carry the same extensions, made by cryptography's builders; but cryptography
knows neither SM2 keys nor SM2 signatures, so a certificate is drafted with a stand-in P-256
key and then finished with asn1crypto: the subject's SM2 SubjectPublicKeyInfo and its key
identifier put in, both signature algorithm fields set to SM2-with-SM3
(1.2.156.10197.1.501, no parameters), and the to-be-signed bytes signed by the issuer's SM2
key (:mod:`keys.sm2`, default user id). cryptography reads the result back (names,
extensions, validity), though it cannot check its signature; OpenSSL 3.0 does.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from keys.ca import (
    ROOT_CA_NAME,
    PKIURLs,
    SealSubject,
    _authority_name,
    _now,
    _organization_of,
    authority_validity,
    check_ca_name,
    draft_issued,
    draft_root,
    issuing_ca_extensions,
    seal_extensions,
    tsa_extensions,
)
from keys.sm2 import SM2KeyHandle

__all__ = [
    "SM2Authority",
    "SM2Hierarchy",
    "create_sm2_hierarchy",
    "create_sm2_issuing_ca",
    "create_sm2_root_ca",
    "issue_sm2_seal_certificate",
    "issue_sm2_tsa_certificate",
]

_SM2_WITH_SM3 = asn1_x509.SignedDigestAlgorithm({"algorithm": "sm2_sm3"})


@dataclass(frozen=True, kw_only=True)
class SM2Authority:
    """An SM2 CA: its certificate, its SM2 key and the chain above it."""

    certificate: x509.Certificate
    """The authority's own certificate (SM2-with-SM3)."""
    handle: SM2KeyHandle
    """The SM2 key that signs for the authority."""
    chain: tuple[x509.Certificate, ...] = ()
    """The certificates above it, issuer first, up to the root; empty for the root."""


def _key_identifier(public_key: asn1_keys.PublicKeyInfo) -> x509.SubjectKeyIdentifier:
    # RFC 5280 §4.2.1.2 method 1, as cryptography's from_public_key computes it for others.
    return x509.SubjectKeyIdentifier(public_key.sha1)


def _stand_in() -> ec.EllipticCurvePrivateKey:
    # Any key serves: its public key and signature are replaced before anyone sees them.
    return ec.generate_private_key(ec.SECP256R1())


def _finish(
    builder: x509.CertificateBuilder,
    public_key: asn1_keys.PublicKeyInfo,
    issuer: SM2KeyHandle,
) -> x509.Certificate:
    """Sign the draft in ``builder`` SM2-with-SM3 by ``issuer`` for the SM2 ``public_key``."""
    stand_in = _stand_in()
    draft = builder.public_key(stand_in.public_key()).sign(stand_in, hashes.SHA256())
    cert = asn1_x509.Certificate.load(draft.public_bytes(Encoding.DER))
    tbs = cert["tbs_certificate"]
    tbs["subject_public_key_info"] = public_key
    tbs["signature"] = _SM2_WITH_SM3
    cert["signature_algorithm"] = _SM2_WITH_SM3
    cert["signature_value"] = issuer.sign(tbs.dump(force=True))
    return x509.load_der_x509_certificate(cert.dump(force=True))


def _issued_by(
    ca: SM2Authority,
    public_key: asn1_keys.PublicKeyInfo,
    subject: x509.Name,
    *,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    serial_number: int | None = None,
) -> x509.CertificateBuilder:
    """A draft issued by ``ca`` with key identifiers; the public key comes in :func:`_finish`."""
    return draft_issued(
        ca.certificate,
        subject,
        _key_identifier(public_key),
        not_before=not_before,
        not_after=not_after,
        serial_number=serial_number,
    )


def create_sm2_root_ca(
    handle: SM2KeyHandle,
    *,
    common_name: str,
    organization: str,
    validity_days: int = 7300,
    now: datetime.datetime | None = None,
) -> SM2Authority:
    """A self-signed SM2 root CA for the key ``handle``."""
    public_key = handle.public_key_info()
    builder = draft_root(
        _authority_name(common_name, organization),
        _key_identifier(public_key),
        start=_now(now),
        validity_days=validity_days,
    )
    return SM2Authority(certificate=_finish(builder, public_key, handle), handle=handle)


def create_sm2_issuing_ca(
    root: SM2Authority,
    handle: SM2KeyHandle,
    *,
    ca_name: str,
    common_name: str,
    organization: str,
    urls: PKIURLs,
    root_name: str,
    validity_days: int = 3650,
    now: datetime.datetime | None = None,
) -> SM2Authority:
    """An SM2 issuing CA (path length 0) under ``root``; ``ca_name`` is its URL slug.

    Its CRL distribution point and caIssuers point at the SM2 root's, published as
    ``root_name``.
    """
    check_ca_name(ca_name, ROOT_CA_NAME, root_name)
    start, end = authority_validity(root.certificate, now, validity_days)
    public_key = handle.public_key_info()
    builder = _issued_by(
        root,
        public_key,
        _authority_name(common_name, organization),
        not_before=start,
        not_after=end,
    )
    builder = issuing_ca_extensions(builder, urls, root_name)
    return SM2Authority(
        certificate=_finish(builder, public_key, root.handle),
        handle=handle,
        chain=(root.certificate, *root.chain),
    )


def issue_sm2_seal_certificate(
    ca: SM2Authority,
    public_key: asn1_keys.PublicKeyInfo,
    *,
    subject: SealSubject,
    ca_name: str,
    urls: PKIURLs,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    serial_number: int | None = None,
) -> x509.Certificate:
    """An SM2 seal certificate for the SM2 ``public_key``, naming ``subject``, issued by ``ca``.

    It carries what :func:`keys.ca.issue_seal_certificate` puts in a seal certificate.
    """
    builder = _issued_by(
        ca,
        public_key,
        subject.name(),
        not_before=not_before,
        not_after=not_after,
        serial_number=serial_number,
    )
    return _finish(seal_extensions(builder, subject, urls, ca_name), public_key, ca.handle)


def issue_sm2_tsa_certificate(
    ca: SM2Authority,
    public_key: asn1_keys.PublicKeyInfo,
    *,
    common_name: str,
    ca_name: str,
    urls: PKIURLs,
    validity_days: int = 3650,
    now: datetime.datetime | None = None,
) -> x509.Certificate:
    """An SM2 timestamping certificate from ``ca``: EKU timeStamping only, critical (RFC 3161
    §2.3), as :func:`keys.ca.issue_tsa_certificate` makes for the other hierarchy."""
    start, end = authority_validity(ca.certificate, now, validity_days)
    builder = _issued_by(
        ca,
        public_key,
        _authority_name(common_name, _organization_of(ca.certificate)),
        not_before=start,
        not_after=end,
    )
    return _finish(tsa_extensions(builder, urls, ca_name), public_key, ca.handle)


@dataclass(frozen=True, kw_only=True)
class SM2Hierarchy:
    """The SM2 root and issuing CA, with the URL slugs they are published under."""

    root: SM2Authority
    """The SM2 root CA."""
    issuing: SM2Authority
    """The SM2 issuing CA, which issues SM2 seal certificates."""
    urls: PKIURLs
    """The URLs written into the certificates."""
    root_name: str
    """The SM2 root's URL slug."""
    ca_name: str
    """The SM2 issuing CA's URL slug."""

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """The chain above an SM2 seal certificate: the issuing CA, then the root."""
        return (self.issuing.certificate, self.root.certificate)


def create_sm2_hierarchy(
    *,
    root_key: SM2KeyHandle,
    issuing_key: SM2KeyHandle,
    name: str,
    urls: PKIURLs,
    root_name: str = "sm2-root",
    ca_name: str = "sm2-issuing",
    now: datetime.datetime | None = None,
) -> SM2Hierarchy:
    """An SM2 root and issuing CA for the given keys; ``name`` goes into the common names."""
    organization = f"eContract {name}"
    root = create_sm2_root_ca(
        root_key, common_name=f"eContract {name} SM2 Root CA", organization=organization, now=now
    )
    issuing = create_sm2_issuing_ca(
        root,
        issuing_key,
        ca_name=ca_name,
        common_name=f"eContract {name} SM2 Issuing CA",
        organization=organization,
        urls=urls,
        root_name=root_name,
        now=now,
    )
    return SM2Hierarchy(root=root, issuing=issuing, urls=urls, root_name=root_name, ca_name=ca_name)
