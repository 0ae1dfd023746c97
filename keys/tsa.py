"""An RFC 3161 timestamp authority signing with a key handle, and a pyHanko client for it.

The service runs its own TSA in process (``POST /pki/tsa`` and PAdES B-T), so that one box
needs nothing else. Tokens are CMS SignedData over a TSTInfo, with the signed attributes
content-type, message-digest and signing-certificate-v2 (RFC 5816).

A PAdES B-T seal asks for one token, so the token must cost little next to the seal itself.
Building it with asn1crypto copies and re-encodes the TSA's names and certificates every
time, which costs far more than the signature. Everything in a token except the TSTInfo, its
digest and the signature is the same from one token to the next, so
:class:`TimestampAuthority` encodes those pieces once and assembles each token from DER
bytes, as :class:`keys.signer.KeySigner` does for seals. :class:`InProcessTimeStamper` hands
pyHanko the token directly instead of a request and response to encode and parse.

An authority whose key is SM2 (:mod:`keys.sm2ca`) signs its tokens SM2-with-SM3: the
SignerInfo's digest is SM3 (1.2.156.10197.1.401), its signature algorithm SM2-with-SM3
(1.2.156.10197.1.501, no parameters, GM/T 0010), the default user id in the signature. It
timestamps SM3 and SHA-256 imprints (:data:`SM2_ACCEPTED_DIGESTS`).
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
from pyhanko.sign.timestamps.common_utils import TimestampRequestError, get_nonce

from keys.ca import Authority
from keys.handles import KeyAlgorithm
from keys.oids import TSA_POLICY
from keys.sm2ca import SM2Authority
from keys.tbs import signature_digest

Clock = Callable[[], datetime.datetime]

ACCEPTED_DIGESTS: dict[str, int] = {"sha256": 32, "sha384": 48, "sha512": 64}
"""Message imprint algorithms the TSA accepts, with their digest sizes; SHA-1 and MD5 are not
collision resistant, so a timestamp over them would prove nothing."""

SM2_ACCEPTED_DIGESTS: dict[str, int] = {"sm3": 32, "sha256": 32}
"""Message imprint algorithms an SM2 authority accepts: SM3, the digest of SM2 seals, and
SHA-256, for a national timestamp over a document hashed the international way."""

# DER tags used when assembling a token.
_INTEGER = 0x02
_OCTET_STRING = 0x04
_GENERALIZED_TIME = 0x18
_SEQUENCE = 0x30
_SET = 0x31
_CONTEXT_0 = 0xA0  # [0]: explicit content, tsa GeneralName; implicit certificates, signedAttrs.
# Object identifiers, encoded with their tag and length.
_OID_MESSAGE_DIGEST = bytes.fromhex("06092a864886f70d010904")
_OID_SIGNED_DATA = bytes.fromhex("06092a864886f70d010702")
_OID_TST_INFO = bytes.fromhex("060b2a864886f70d0109100104")
_VERSION_1 = b"\x02\x01\x01"  # TSTInfo v1; SignerInfo v1 (the signer is issuerAndSerial).
_VERSION_3 = b"\x02\x01\x03"  # SignedData v3: the content is not id-data (RFC 5652 §5.1).
_GRANTED = b"\x30\x03\x02\x01\x00"  # PKIStatusInfo { status granted(0) }.


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _tlv(tag: int, content: bytes) -> bytes:
    """One DER element: a single-byte tag, a definite length and ``content``."""
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


def _integer(value: int) -> bytes:
    """A DER INTEGER: two's complement in the fewest octets that keep the sign."""
    size = (value if value >= 0 else ~value).bit_length() // 8 + 1
    return _tlv(_INTEGER, value.to_bytes(size, "big", signed=True))


def _generalized_time(moment: datetime.datetime) -> bytes:
    """A DER GeneralizedTime of ``moment`` to the second, in UTC (``YYYYMMDDHHMMSSZ``)."""
    t = moment.astimezone(datetime.UTC)
    text = f"{t.year:04d}{t.month:02d}{t.day:02d}{t.hour:02d}{t.minute:02d}{t.second:02d}Z"
    return _tlv(_GENERALIZED_TIME, text.encode("ascii"))


def _der(value: Any) -> bytes:
    """The DER encoding of an asn1crypto value (used once per authority, not per token)."""
    return bytes(value.dump())


def _attribute(kind: str, value: Any) -> bytes:
    """A CMS attribute with one value, DER-encoded."""
    return _der(cms.CMSAttribute({"type": kind, "values": (value,)}))


@dataclass(frozen=True)
class TimestampReply:
    """A DER-encoded TimeStampResp, and whether a token was granted."""

    der: bytes
    """The TimeStampResp to send (``application/timestamp-reply``)."""
    granted: bool
    """True when the response carries a timestamp token."""
    detail: str | None = None
    """Why the request was rejected (a sentence), ``None`` when granted."""


class _RejectedError(ValueError):
    """A request the TSA refuses, with the RFC 3161 failure bit and a sentence.

    A ``ValueError``, so that callers of :meth:`TimestampAuthority.stamp` need not know it.
    """

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


def _check_imprint(algorithm: str, digest_size: int, accepted: dict[str, int]) -> None:
    """Refuse a message imprint whose algorithm is weak or whose digest has the wrong size."""
    if algorithm not in accepted:
        raise _RejectedError(
            "bad_alg",
            f"The hash algorithm {algorithm} is not accepted; use one of {', '.join(accepted)}.",
        )
    if digest_size != accepted[algorithm]:
        raise _RejectedError("bad_data_format", f"The message imprint is not a {algorithm} digest.")


class TimestampAuthority:
    """Answers RFC 3161 TimeStampReq messages, signing tokens with ``authority``'s handle.

    The parts of a token that do not change from one token to the next are encoded when the
    authority is built (see the module's docstring), so keep one authority per process.
    """

    def __init__(
        self,
        *,
        authority: Authority | SM2Authority,
        policy_oid: str = TSA_POLICY.dotted_string,
        clock: Clock = _utc_now,
        accuracy_seconds: int = 1,
    ) -> None:
        _check_tsa_certificate(authority.certificate)
        if accuracy_seconds < 1:
            raise ValueError("The accuracy must be at least one second.")
        self._handle = authority.handle
        self._policy = policy_oid
        self._clock = clock
        cert = asn1_x509.Certificate.load(authority.certificate.public_bytes(Encoding.DER))
        algorithm = authority.handle.algorithm  # computed from the public key: read it once
        self._digest = signature_digest(algorithm)
        sm2 = algorithm is KeyAlgorithm.SM2
        self._accepted = SM2_ACCEPTED_DIGESTS if sm2 else ACCEPTED_DIGESTS
        # TSTInfo: version, policy (invalid OIDs fail here rather than on the first token),
        # then per token the imprint, serial and genTime, then accuracy, nonce and the name.
        self._tst_head = _VERSION_1 + _der(core.ObjectIdentifier(policy_oid))
        self._accuracy = _tlv(_SEQUENCE, _integer(accuracy_seconds))
        # GeneralName is a CHOICE, so the [0] tag of the tsa field is explicit.
        self._tsa_name = _tlv(
            _CONTEXT_0, _der(asn1_x509.GeneralName(name="directory_name", value=cert.subject))
        )
        # The same AlgorithmIdentifier encoding (with NULL parameters) pyHanko's requests use.
        self._imprint_algorithms = {
            name: _der(algos.DigestAlgorithm({"algorithm": name})) for name in self._accepted
        }
        self._content_type_attr = _attribute("content_type", "tst_info")
        self._signing_certificate_attr = _attribute(
            "signing_certificate_v2", _signing_certificate(cert)
        )
        self._digest_algorithm = _der(algos.DigestAlgorithm({"algorithm": self._digest}))
        family = "rsa" if algorithm.is_rsa else "ecdsa"
        mechanism = "sm2_sm3" if sm2 else f"{self._digest}_{family}"
        self._signature_algorithm = _der(algos.SignedDigestAlgorithm({"algorithm": mechanism}))
        self._sid = _der(
            cms.SignerIdentifier(
                name="issuer_and_serial_number",
                value={"issuer": cert.issuer, "serial_number": cert.serial_number},
            )
        )
        # Relying parties hold the root already; DER orders a SET OF by the encodings.
        embedded = {cert.dump()} | {
            c.public_bytes(Encoding.DER) for c in authority.chain if c.issuer != c.subject
        }
        self._certificates = _tlv(_CONTEXT_0, b"".join(sorted(embedded)))

    @property
    def policy_oid(self) -> str:
        """The policy of the tokens this authority issues."""
        return self._policy

    @property
    def accepted_digests(self) -> tuple[str, ...]:
        """The message imprint algorithms this authority timestamps."""
        return tuple(self._accepted)

    def stamp(
        self,
        digest: bytes,
        md_algorithm: str,
        *,
        nonce: int | None = None,
        cert_req: bool = True,
    ) -> bytes:
        """The DER timestamp token (a CMS ``ContentInfo``) over ``digest``.

        ``md_algorithm`` names the hash that made ``digest`` (one of
        :attr:`accepted_digests`); ``nonce`` is copied into the token; with ``cert_req`` the
        token carries the TSA's certificate and its issuers (not the root). Raises
        ``ValueError`` for a weak algorithm or a digest of the wrong size, with the same
        sentence :meth:`respond` would put in its rejection.
        """
        md_algorithm = md_algorithm.lower()
        _check_imprint(md_algorithm, len(digest), self._accepted)
        imprint = _tlv(
            _SEQUENCE, self._imprint_algorithms[md_algorithm] + _tlv(_OCTET_STRING, digest)
        )
        return self._token(imprint, nonce, cert_req)

    def respond(self, query_der: bytes) -> TimestampReply:
        """The DER TimeStampResp answering the DER TimeStampReq ``query_der``."""
        try:
            request = self._parse(query_der)
        except _RejectedError as rejection:
            return _rejected(rejection)
        token = self._token(
            # Re-encoded, so that the token stays DER whatever the request's encoding.
            request["message_imprint"].dump(force=True),
            request["nonce"].native,
            bool(request["cert_req"].native),
        )
        return TimestampReply(der=_tlv(_SEQUENCE, _GRANTED + token), granted=True)

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
        _check_imprint(
            imprint["hash_algorithm"]["algorithm"].native,
            len(imprint["hashed_message"].native),
            self._accepted,
        )
        policy = request["req_policy"].native
        if policy is not None and policy != self._policy:
            raise _RejectedError(
                "unaccepted_policy", f"The policy {policy} is not this TSA's ({self._policy})."
            )
        if request["extensions"].native:
            raise _RejectedError("unaccepted_extension", "Request extensions are not supported.")
        return request

    def _token(self, imprint: bytes, nonce: int | None, cert_req: bool) -> bytes:
        """The DER token over the DER MessageImprint ``imprint``."""
        tst_info = _tlv(
            _SEQUENCE,
            self._tst_head
            + imprint
            + _integer(x509.random_serial_number())
            # Whole seconds: the accuracy says how far genTime may be from the true time.
            + _generalized_time(self._clock())
            + self._accuracy
            + (b"" if nonce is None else _integer(nonce))
            + self._tsa_name,
        )
        message_digest_attr = _tlv(
            _SEQUENCE,
            _OID_MESSAGE_DIGEST
            + _tlv(_SET, _tlv(_OCTET_STRING, hashlib.new(self._digest, tst_info).digest())),
        )
        # DER orders the elements of a SET OF by their encodings; the signature is computed
        # over the attributes tagged as a SET OF, and they are embedded tagged [0] IMPLICIT.
        attrs = b"".join(
            sorted((self._content_type_attr, message_digest_attr, self._signing_certificate_attr))
        )
        signature = self._handle.sign(_tlv(_SET, attrs), self._digest)
        signer_info = _tlv(
            _SEQUENCE,
            _VERSION_1
            + self._sid
            + self._digest_algorithm
            + _tlv(_CONTEXT_0, attrs)
            + self._signature_algorithm
            + _tlv(_OCTET_STRING, signature),
        )
        signed_data = _tlv(
            _SEQUENCE,
            _VERSION_3
            + _tlv(_SET, self._digest_algorithm)
            + _tlv(_SEQUENCE, _OID_TST_INFO + _tlv(_CONTEXT_0, _tlv(_OCTET_STRING, tst_info)))
            + (self._certificates if cert_req else b"")
            + _tlv(_SET, signer_info),
        )
        return _tlv(_SEQUENCE, _OID_SIGNED_DATA + _tlv(_CONTEXT_0, signed_data))


def imprint_algorithm(query_der: bytes) -> str | None:
    """The hash algorithm of a DER TimeStampReq's message imprint (``sm3``, ``sha256``...);
    ``None`` when the query cannot be read that far (an authority then rejects it in full)."""
    try:
        request = tsp.TimeStampReq.load(query_der, strict=True)
        name = request["message_imprint"]["hash_algorithm"]["algorithm"].native
    except (ValueError, TypeError, OverflowError, KeyError):
        return None
    return name if isinstance(name, str) else None


def _signing_certificate(cert: asn1_x509.Certificate) -> tsp.SigningCertificateV2:
    # ESSCertIDv2 with the default hash (SHA-256), which DER leaves out.
    return tsp.SigningCertificateV2(
        {
            "certs": [
                {
                    "cert_hash": hashlib.sha256(cert.dump()).digest(),
                    "issuer_serial": {
                        "issuer": [asn1_x509.GeneralName(name="directory_name", value=cert.issuer)],
                        "serial_number": cert.serial_number,
                    },
                }
            ]
        }
    )


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
    """A pyHanko ``TimeStamper`` that asks a :class:`TimestampAuthority` directly, without HTTP.

    :meth:`async_timestamp` takes the token from :meth:`TimestampAuthority.stamp` instead of
    encoding a TimeStampReq and parsing a TimeStampResp. pyHanko's size-estimate dummy
    responses and the TSA certificates it gathers from them go through the same method.
    """

    def __init__(self, authority: TimestampAuthority, *, include_nonce: bool = True) -> None:
        super().__init__(include_nonce=include_nonce)  # type: ignore[no-untyped-call]
        self._authority = authority

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> cms.ContentInfo:
        """A token over ``message_digest``; a rejection raises pyHanko's error.

        With ``include_nonce`` the token carries a fresh nonce, as one fetched over HTTP
        would; pyHanko's check that the nonce came back is moot, the token being made here.
        """
        nonce = get_nonce() if self.include_nonce else None  # type: ignore[no-untyped-call]
        try:
            token = self._authority.stamp(message_digest, md_algorithm, nonce=nonce)
        except ValueError as exc:
            raise TimestampRequestError(f"The timestamp authority refused: {exc}") from exc
        return cms.ContentInfo.load(token)

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        """Answer ``req`` with the in-process authority; a rejection raises pyHanko's error.

        pyHanko's own path no longer comes here (see :meth:`async_timestamp`); this serves
        callers that hold a request already.
        """
        reply = self._authority.respond(req.dump())
        if not reply.granted:
            raise TimestampRequestError(f"The timestamp authority refused: {reply.detail}")
        return tsp.TimeStampResp.load(reply.der)
