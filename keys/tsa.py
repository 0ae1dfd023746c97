"""An RFC 3161 timestamp authority signing with a key handle, and a pyHanko client for it.

The service runs its own TSA in process (``POST /pki/tsa`` and PAdES B-T), so that one box
needs nothing else. Tokens are CMS SignedData over a TSTInfo, with the signed attributes
content-type, message-digest and signing-certificate-v2 (RFC 5816).
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError

from keys.ca import Authority
from keys.oids import TSA_POLICY
from keys.tbs import signature_digest

Clock = Callable[[], datetime.datetime]

ACCEPTED_DIGESTS: dict[str, int] = {"sha256": 32, "sha384": 48, "sha512": 64}
"""Message imprint algorithms the TSA accepts, with their digest sizes; SHA-1 and MD5 are not
collision resistant, so a timestamp over them would prove nothing."""


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True)
class TimestampReply:
    """A DER-encoded TimeStampResp, and whether a token was granted."""

    der: bytes
    """The TimeStampResp to send (``application/timestamp-reply``)."""
    granted: bool
    """True when the response carries a timestamp token."""
    detail: str | None = None
    """Why the request was rejected (a sentence), ``None`` when granted."""


class _RejectedError(Exception):
    """A request the TSA refuses, with the RFC 3161 failure bit and a sentence."""

    def __init__(self, fail_info: str, detail: str) -> None:
        super().__init__(detail)
        self.fail_info = fail_info
        self.detail = detail


def _check_tsa_certificate(cert: x509.Certificate) -> None:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        eku = None
    # RFC 3161 §2.3: the TSA certificate has exactly the timeStamping EKU, marked critical.
    if eku is None or not eku.critical or list(eku.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        raise ValueError("A TSA certificate needs a critical EKU of timeStamping only.")


class TimestampAuthority:
    """Answers RFC 3161 TimeStampReq messages, signing tokens with ``authority``'s handle."""

    def __init__(
        self,
        *,
        authority: Authority,
        policy_oid: str = TSA_POLICY.dotted_string,
        clock: Clock = _utc_now,
        accuracy_seconds: int = 1,
    ) -> None:
        _check_tsa_certificate(authority.certificate)
        if accuracy_seconds < 1:
            raise ValueError("The accuracy must be at least one second.")
        self._authority = authority
        self._policy = policy_oid
        self._clock = clock
        self._accuracy = accuracy_seconds
        self._cert = asn1_x509.Certificate.load(authority.certificate.public_bytes(Encoding.DER))
        self._chain = [
            asn1_x509.Certificate.load(c.public_bytes(Encoding.DER))
            for c in authority.chain
            if c.issuer != c.subject  # relying parties hold the root already
        ]
        self._digest = signature_digest(authority.handle.algorithm)

    @property
    def policy_oid(self) -> str:
        """The policy of the tokens this authority issues."""
        return self._policy

    def respond(self, query_der: bytes) -> TimestampReply:
        """The DER TimeStampResp answering the DER TimeStampReq ``query_der``."""
        try:
            request = self._parse(query_der)
        except _RejectedError as rejection:
            return _rejected(rejection)
        token = self._token(request)
        response = tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token})
        return TimestampReply(der=response.dump(), granted=True)

    def _parse(self, query_der: bytes) -> Any:
        try:
            request = tsp.TimeStampReq.load(query_der, strict=True)
            request.native  # noqa: B018 (asn1crypto parses lazily; force it here)
        except (ValueError, TypeError, OverflowError) as exc:
            raise _RejectedError(
                "bad_data_format", f"The timestamp request could not be decoded: {exc}."
            ) from exc
        if request["version"].native != "v1":
            raise _RejectedError("bad_request", "Only version 1 timestamp requests are supported.")
        imprint = request["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].native
        if algorithm not in ACCEPTED_DIGESTS:
            raise _RejectedError(
                "bad_alg",
                f"The hash algorithm {algorithm} is not accepted; "
                f"use one of {', '.join(ACCEPTED_DIGESTS)}.",
            )
        if len(imprint["hashed_message"].native) != ACCEPTED_DIGESTS[algorithm]:
            raise _RejectedError(
                "bad_data_format", f"The message imprint is not a {algorithm} digest."
            )
        policy = request["req_policy"].native
        if policy is not None and policy != self._policy:
            raise _RejectedError(
                "unaccepted_policy", f"The policy {policy} is not this TSA's ({self._policy})."
            )
        if request["extensions"].native:
            raise _RejectedError("unaccepted_extension", "Request extensions are not supported.")
        return request

    def _token(self, request: Any) -> cms.ContentInfo:
        tst_info = self._tst_info(request)
        content = tst_info.dump()
        attributes = [
            _attribute("content_type", "tst_info"),
            _attribute("message_digest", hashlib.new(self._digest, content).digest()),
            _attribute("signing_certificate_v2", self._signing_certificate()),
        ]
        # DER sorts a SET OF by encoding; verifiers re-encode before checking the signature.
        signed_attrs = cms.CMSAttributes(sorted(attributes, key=lambda a: a.dump()))
        signature = self._authority.handle.sign(signed_attrs.dump(), self._digest)
        signer = cms.SignerInfo(
            {
                "version": "v1",
                "sid": {
                    "issuer_and_serial_number": {
                        "issuer": self._cert.issuer,
                        "serial_number": self._cert.serial_number,
                    }
                },
                "digest_algorithm": {"algorithm": self._digest},
                "signed_attrs": signed_attrs,
                "signature_algorithm": self._signature_algorithm(),
                "signature": signature,
            }
        )
        certificates = [self._cert, *self._chain] if request["cert_req"].native else []
        signed_data: dict[str, Any] = {
            # v3: the content is not id-data (RFC 5652 §5.1).
            "version": "v3",
            "digest_algorithms": [{"algorithm": self._digest}],
            "encap_content_info": {
                "content_type": "tst_info",
                "content": core.ParsableOctetString(content),
            },
            "signer_infos": [signer],
        }
        if certificates:
            signed_data["certificates"] = certificates
        return cms.ContentInfo({"content_type": "signed_data", "content": signed_data})

    def _tst_info(self, request: Any) -> tsp.TSTInfo:
        fields: dict[str, Any] = {
            "version": "v1",
            "policy": self._policy,
            "message_imprint": request["message_imprint"],
            "serial_number": x509.random_serial_number(),
            # Whole seconds: the accuracy says how far genTime may be from the true time.
            "gen_time": self._clock().astimezone(datetime.UTC).replace(microsecond=0),
            "accuracy": {"seconds": self._accuracy},
            "tsa": asn1_x509.GeneralName(name="directory_name", value=self._cert.subject),
        }
        if request["nonce"].native is not None:
            fields["nonce"] = request["nonce"].native
        return tsp.TSTInfo(fields)

    def _signing_certificate(self) -> tsp.SigningCertificateV2:
        # ESSCertIDv2 with the default hash (SHA-256), which DER leaves out.
        return tsp.SigningCertificateV2(
            {
                "certs": [
                    {
                        "cert_hash": hashlib.sha256(self._cert.dump()).digest(),
                        "issuer_serial": {
                            "issuer": [
                                asn1_x509.GeneralName(
                                    name="directory_name", value=self._cert.issuer
                                )
                            ],
                            "serial_number": self._cert.serial_number,
                        },
                    }
                ]
            }
        )

    def _signature_algorithm(self) -> algos.SignedDigestAlgorithm:
        if self._authority.handle.algorithm.is_rsa:
            return algos.SignedDigestAlgorithm({"algorithm": f"{self._digest}_rsa"})
        return algos.SignedDigestAlgorithm({"algorithm": f"{self._digest}_ecdsa"})


def _attribute(kind: str, value: Any) -> cms.CMSAttribute:
    return cms.CMSAttribute({"type": kind, "values": (value,)})


class TimeStampResponse(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    """TimeStampResp as RFC 3161 defines it, for building and parsing.

    asn1crypto's ``tsp.TimeStampResp`` makes the token mandatory, so it can neither write nor
    read a rejection.
    """

    _fields = [  # noqa: RUF012 (asn1crypto's class-level schema)
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


def _rejected(rejection: _RejectedError) -> TimestampReply:
    status = tsp.PKIStatusInfo(
        {
            "status": "rejection",
            "status_string": [rejection.detail],
            "fail_info": tsp.PKIFailureInfo({rejection.fail_info}),
        }
    )
    der = TimeStampResponse({"status": status}).dump()
    return TimestampReply(der=der, granted=False, detail=rejection.detail)


class InProcessTimeStamper(TimeStamper):
    """A pyHanko ``TimeStamper`` that asks a :class:`TimestampAuthority` directly, without HTTP."""

    def __init__(self, authority: TimestampAuthority, *, include_nonce: bool = True) -> None:
        super().__init__(include_nonce=include_nonce)  # type: ignore[no-untyped-call]
        self._authority = authority

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        """Answer ``req`` with the in-process authority; a rejection raises pyHanko's error."""
        reply = self._authority.respond(req.dump())
        if not reply.granted:
            raise TimestampRequestError(f"The timestamp authority refused: {reply.detail}")
        return tsp.TimeStampResp.load(reply.der)
