"""Signing X.509 structures with a key handle.

cryptography's builders (certificates, CRLs, OCSP responses) want a private key object, which
a key in an HSM does not have. So a structure is built and signed with a throwaway key of the
same algorithm family and digest (which makes every signatureAlgorithm field right), and the
to-be-signed bytes are then signed again with the real handle and the signature replaced.
This module is the one place where that happens.

cryptography knows no SM2 key at all, so for an SM2 handle (:mod:`keys.sm2`) the draft is
signed by an ECDSA stand-in and its signatureAlgorithm fields, inside and outside the
to-be-signed part, are set to SM2-with-SM3 (no parameters) before the real signature.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from functools import cache
from typing import Any, Protocol

from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from asn1crypto.crl import CertificateList
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from keys.handles import KeyAlgorithm, KeyHandle

StandInKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

_DER = Encoding.DER
_SM2_WITH_SM3 = asn1_x509.SignedDigestAlgorithm({"algorithm": "sm2_sm3"})


class TBSSigner(Protocol):
    """What signs a to-be-signed structure: a :class:`KeyHandle` or an SM2 key handle."""

    @property
    def algorithm(self) -> KeyAlgorithm:
        """The key's algorithm, which decides the digest and the signature algorithm."""
        ...

    def sign(self, data: bytes, digest: str = ...) -> bytes:
        """Sign ``data`` (not a digest) with ``digest``."""
        ...


def signature_digest(algorithm: KeyAlgorithm) -> str:
    """The digest an authority's key signs with: sm3 for SM2, sha384 for P-384, else sha256."""
    if algorithm is KeyAlgorithm.SM2:
        return "sm3"
    return "sha384" if algorithm is KeyAlgorithm.EC_P384 else "sha256"


def signature_hash(handle: TBSSigner) -> hashes.SHA256 | hashes.SHA384:
    """The hash the stand-in signs a draft with: :func:`signature_digest`'s, SHA-256 for SM2
    (whose draft's algorithm fields are replaced)."""
    return hashes.SHA384() if handle.algorithm is KeyAlgorithm.EC_P384 else hashes.SHA256()


@cache
def _stand_in_key(rsa_family: bool) -> StandInKey:
    # Only the algorithm family shows in the output (sha256WithRSAEncryption,
    # ecdsa-with-SHA384, ...), so one RSA and one EC key serve every size and curve.
    if rsa_family:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def stand_in_key(handle: TBSSigner) -> StandInKey:
    """A throwaway private key whose signatures carry the same algorithm identifier as ``handle``'s.

    For use with cryptography's builders only; its signatures are replaced by :func:`resign`.
    """
    return _stand_in_key(handle.algorithm.is_rsa)


def _resign_sequence(
    signed: Any,
    tbs_field: str,
    sig_field: str,
    handle: TBSSigner,
    *,
    inner_algorithm: str | None = None,
) -> None:
    """Sign ``signed[tbs_field]`` with ``handle`` into ``signed[sig_field]``.

    For SM2 the outer ``signatureAlgorithm`` and, when the structure repeats it inside the
    to-be-signed part, ``inner_algorithm`` of it are set to SM2-with-SM3 first.
    """
    if handle.algorithm is KeyAlgorithm.SM2:
        signed["signature_algorithm"] = _SM2_WITH_SM3
        if inner_algorithm is not None:
            signed[tbs_field][inner_algorithm] = _SM2_WITH_SM3
    digest = signature_digest(handle.algorithm)
    signed[sig_field] = handle.sign(signed[tbs_field].dump(), digest)


def sign_certificate(builder: x509.CertificateBuilder, handle: KeyHandle) -> x509.Certificate:
    """Build the certificate in ``builder`` and sign it with ``handle``."""
    draft = builder.sign(stand_in_key(handle), signature_hash(handle))
    cert = asn1_x509.Certificate.load(draft.public_bytes(_DER))
    _resign_sequence(
        cert, "tbs_certificate", "signature_value", handle, inner_algorithm="signature"
    )
    return x509.load_der_x509_certificate(cert.dump())


def sign_crl(
    builder: x509.CertificateRevocationListBuilder, handle: TBSSigner
) -> x509.CertificateRevocationList:
    """Build the CRL in ``builder`` and sign it with ``handle``."""
    draft = builder.sign(stand_in_key(handle), signature_hash(handle))
    crl = CertificateList.load(draft.public_bytes(_DER))
    _resign_sequence(crl, "tbs_cert_list", "signature", handle, inner_algorithm="signature")
    return x509.load_der_x509_crl(crl.dump())


def sign_ocsp_response(
    builder: ocsp.OCSPResponseBuilder,
    handle: TBSSigner,
    *,
    responder_certificate: x509.Certificate,
    certificates: list[x509.Certificate],
    patch: Callable[[Any], None] | None = None,
) -> bytes:
    """Build the OCSP response in ``builder`` and sign it with ``handle``; returns its DER.

    ``builder`` must not have a responder ID or certificates set: cryptography insists that
    the responder certificate matches the signing key, so the draft names a stand-in and the
    real responder ID (by key hash of ``responder_certificate``) and ``certificates`` are put
    in here. ``patch`` may change the asn1crypto ResponseData further before it is signed.
    """
    key = stand_in_key(handle)
    draft = builder.responder_id(
        ocsp.OCSPResponderEncoding.HASH, _stand_in_certificate(handle.algorithm.is_rsa)
    ).sign(key, signature_hash(handle))
    response = asn1_ocsp.OCSPResponse.load(draft.public_bytes(_DER))
    basic = response["response_bytes"]["response"].parsed
    tbs = basic["tbs_response_data"]
    key_hash = asn1_x509.Certificate.load(responder_certificate.public_bytes(_DER)).public_key.sha1
    tbs["responder_id"] = asn1_ocsp.ResponderId(name="by_key", value=key_hash)
    if patch is not None:
        patch(tbs)
    basic["certs"] = [asn1_x509.Certificate.load(c.public_bytes(_DER)) for c in certificates]
    _resign_sequence(basic, "tbs_response_data", "signature", handle)
    signed = asn1_ocsp.OCSPResponse(
        {
            "response_status": "successful",
            "response_bytes": {
                "response_type": "basic_ocsp_response",
                "response": basic,
            },
        }
    )
    return bytes(signed.dump())


@cache
def _stand_in_certificate(rsa_family: bool) -> x509.Certificate:
    # A certificate for the stand-in key, only to satisfy the OCSP builder's consistency check.
    key = _stand_in_key(rsa_family)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "stand-in")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
