"""An RFC 6960 OCSP responder whose responses are signed by a key handle.

The responder answers for the certificates of its ``issuers``; the status itself comes from
a ``lookup`` callback, which the econtract layer backs with the registry. Responses are
signed either by a delegated responder (a certificate with EKU OCSPSigning issued by the CA)
or by the CA itself; an SM2 CA (:mod:`keys.sm2ca`) signs its answers SM2-with-SM3.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from keys.ca import Authority
from keys.sm2ca import SM2Authority
from keys.tbs import sign_ocsp_response

Clock = Callable[[], datetime.datetime]

# CertID hash algorithms accepted in requests; openssl sends SHA-1 by default.
_CERT_ID_HASHES: dict[str, Callable[[bytes], Any]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}
_CRYPTOGRAPHY_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


@dataclass(frozen=True)
class RevocationStatus:
    """What the registry says about one certificate."""

    status: Literal["good", "revoked", "unknown"]
    """``good``: issued and not revoked; ``revoked``; ``unknown``: not issued by this CA."""
    revoked_at: datetime.datetime | None = None
    """When it was revoked; required for ``revoked``, absent otherwise."""
    reason: x509.ReasonFlags | None = None
    """The revocation reason, if any."""

    def __post_init__(self) -> None:
        if self.status not in ("good", "revoked", "unknown"):
            raise ValueError(f"Unknown revocation status {self.status!r}.")
        if (self.status == "revoked") != (self.revoked_at is not None):
            raise ValueError("A revocation time is given exactly when the status is revoked.")
        if self.reason is not None and self.status != "revoked":
            raise ValueError("Only a revoked certificate has a revocation reason.")


@dataclass(frozen=True)
class OCSPReply:
    """A DER-encoded OCSPResponse, and whether the request was malformed."""

    der: bytes
    """The OCSPResponse to send (``application/ocsp-response``)."""
    malformed: bool
    """True when the request could not be parsed (status malformedRequest)."""
    detail: str | None = None
    """A sentence for logs when the response is not a successful one."""
    served: bool = True
    """False when the request names an issuer this responder does not answer for
    (status unauthorized), so that another responder may be asked."""


@dataclass(frozen=True)
class _IssuerHashes:
    certificate: x509.Certificate
    name_hashes: dict[str, bytes]
    key_hashes: dict[str, bytes]


def _issuer_hashes(cert: x509.Certificate) -> _IssuerHashes:
    parsed = asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))
    name = parsed.subject.dump()
    # RFC 6960 §4.1.1: the key hash covers the subjectPublicKey BIT STRING value only.
    key = bytes(parsed.public_key["public_key"])
    return _IssuerHashes(
        certificate=cert,
        name_hashes={n: h(name).digest() for n, h in _CERT_ID_HASHES.items()},
        key_hashes={n: h(key).digest() for n, h in _CERT_ID_HASHES.items()},
    )


class OCSPResponder:
    """Answers OCSP requests for certificates of ``issuers``, signing as ``responder``."""

    def __init__(
        self,
        *,
        responder: Authority | SM2Authority,
        issuers: Sequence[x509.Certificate],
        lookup: Callable[[x509.Certificate, int], RevocationStatus],
        validity: datetime.timedelta = datetime.timedelta(hours=1),
        clock: Clock = _utc_now,
    ) -> None:
        if not issuers:
            raise ValueError("An OCSP responder needs at least one issuer.")
        for issuer in issuers:
            # A delegated responder is only authorised for the CA that issued it.
            if issuer != responder.certificate and responder.certificate.issuer != issuer.subject:
                raise ValueError(
                    f"The responder {responder.certificate.subject.rfc4514_string()} cannot "
                    f"answer for {issuer.subject.rfc4514_string()}: it was not issued by it."
                )
        if validity <= datetime.timedelta(0):
            raise ValueError("The validity of OCSP responses must be positive.")
        self._responder = responder
        self._issuers = [_issuer_hashes(c) for c in issuers]
        self._lookup = lookup
        self._validity = validity
        self._clock = clock

    def respond(self, request_der: bytes) -> OCSPReply:
        """The DER OCSPResponse answering the DER OCSPRequest ``request_der``."""
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            algorithm = request.hash_algorithm.name
        except ValueError as exc:
            return _unsuccessful(
                ocsp.OCSPResponseStatus.MALFORMED_REQUEST,
                f"The OCSP request could not be decoded: {exc}.",
            )
        except UnsupportedAlgorithm:
            return _unsuccessful(
                ocsp.OCSPResponseStatus.MALFORMED_REQUEST,
                "The OCSP request's CertID uses an unsupported hash algorithm.",
            )
        if algorithm not in _CERT_ID_HASHES:
            return _unsuccessful(
                ocsp.OCSPResponseStatus.MALFORMED_REQUEST,
                f"The OCSP request's CertID uses the unsupported hash algorithm {algorithm}.",
            )
        issuer = self._find_issuer(request, algorithm)
        if issuer is None:
            return replace(
                _unsuccessful(
                    ocsp.OCSPResponseStatus.UNAUTHORIZED,
                    "The OCSP request names an issuer this responder does not serve.",
                ),
                served=False,
            )
        status = self._lookup(issuer, request.serial_number)
        return OCSPReply(der=self._sign(request, algorithm, status), malformed=False)

    def _find_issuer(self, request: ocsp.OCSPRequest, algorithm: str) -> x509.Certificate | None:
        for issuer in self._issuers:
            if (
                issuer.name_hashes[algorithm] == request.issuer_name_hash
                and issuer.key_hashes[algorithm] == request.issuer_key_hash
            ):
                return issuer.certificate
        return None

    def _sign(self, request: ocsp.OCSPRequest, algorithm: str, status: RevocationStatus) -> bytes:
        now = self._clock()
        cert_status = {
            "good": ocsp.OCSPCertStatus.GOOD,
            "revoked": ocsp.OCSPCertStatus.REVOKED,
            "unknown": ocsp.OCSPCertStatus.UNKNOWN,
        }[status.status]
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial_number,
            algorithm=_CRYPTOGRAPHY_HASHES[algorithm](),
            cert_status=cert_status,
            this_update=now,
            next_update=now + self._validity,
            revocation_time=status.revoked_at,
            revocation_reason=status.reason,
        )
        try:
            nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value
            builder = builder.add_extension(x509.OCSPNonce(nonce.nonce), critical=False)
        except x509.ExtensionNotFound:
            pass

        def produced_now(tbs: Any) -> None:
            # cryptography stamps producedAt from the system clock; use ours.
            tbs["produced_at"] = now

        certificate = self._responder.certificate
        return sign_ocsp_response(
            builder,
            self._responder.handle,
            responder_certificate=certificate,
            certificates=[certificate],
            patch=produced_now,
        )


def _unsuccessful(status: ocsp.OCSPResponseStatus, detail: str) -> OCSPReply:
    der = ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(Encoding.DER)
    return OCSPReply(
        der=der,
        malformed=status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST,
        detail=detail,
    )
