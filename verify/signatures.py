"""One signature or document timestamp, checked with pyHanko and described for the report.

pyHanko does the cryptography, the path validation and the difference analysis (never
skipped); this module turns its statuses into ETSI EN 319 102-1 indications, and validates
a second time at the proven signing time when the first pass failed only because of time
(the seal's certificate revoked or expired after a trusted timestamp proved the seal).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import x509 as asn1_x509
from pyhanko.sign.ades.report import AdESFailure, AdESIndeterminate, AdESSubIndic
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation.pdf_embedded import (
    EmbeddedPdfSignature,
    async_validate_pdf_signature,
    async_validate_pdf_timestamp,
)
from pyhanko.sign.validation.status import (
    DocumentTimestampStatus,
    PdfSignatureStatus,
    SignatureStatus,
    TimestampSignatureStatus,
)
from pyhanko_certvalidator import ValidationContext

from keys.suites import SUITES, signed_bytes_digest
from verify._certs import certificate_info, signer_info
from verify.report import (
    AlgorithmInfo,
    Indication,
    RevocationInfo,
    RevocationSource,
    SignatureReport,
    TimestampInfo,
)

# The digests the policy accepts: SHA-2 and SHA-3 of 256 bits or more, and whatever digest a
# seal suite of this service signs with (so a new suite is accepted where it is defined).
_STRONG_DIGESTS = frozenset(
    {"sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512"}
    | {suite.digest for suite in SUITES}
)
_MIN_KEY_BITS = {"rsa": 2048, "rsassa_pss": 2048, "ec": 256}
# Failures a trusted timestamp can cure: the certificate was fine when the seal was made.
_TIME_BOUND = frozenset(
    {
        AdESIndeterminate.REVOKED_NO_POE,
        AdESIndeterminate.OUT_OF_BOUNDS_NO_POE,
        AdESIndeterminate.OUT_OF_BOUNDS_NOT_REVOKED,
        AdESIndeterminate.EXPIRED,
        AdESIndeterminate.CRYPTO_CONSTRAINTS_FAILURE_NO_POE,
    }
)


@dataclass(frozen=True, kw_only=True)
class Contexts:
    """How to build validation contexts for one document (its DSS plus the caller's data)."""

    make: Callable[[datetime | None], ValidationContext]
    """A context validating at the given time: for ``None`` (the policy's time) one context
    shared by every signature of the document, so that common certificates are checked once
    (certificates a signature carries only help build paths, which must still end at a trust
    root); for a proven signing time a fresh one."""
    soft: Callable[[], ValidationContext]
    """A fresh context that tolerates missing revocation data (to tell "no revocation data"
    apart from a broken chain, which pyHanko reports alike)."""
    sources: tuple[RevocationSource, ...]
    """Where revocation data is available from."""


async def check_seal(
    sig: EmbeddedPdfSignature, contexts: Contexts, *, pades_level: str
) -> SignatureReport:
    """Validate an approval or certification seal."""
    vc = contexts.make(None)
    status = await async_validate_pdf_signature(sig, vc, vc)
    timestamp = _timestamp_info(status.timestamp_validity)
    trust_status: SignatureStatus = status
    revocation_state = None
    if (
        status.trust_problem_indic in _TIME_BOUND
        and timestamp is not None
        and timestamp.trusted
        and _before_revocation(status, timestamp.time)
    ):
        retry = contexts.make(timestamp.time)
        second = await async_validate_pdf_signature(sig, retry, vc, skip_diff=True)
        if second.trusted:
            trust_status = second
            if status.revocation_details is not None:
                revocation_state = "revoked-after-signing"
    indication, sub = _indication(trust_status, timestamp)
    if trust_status.trust_problem_indic is AdESIndeterminate.CERTIFICATE_CHAIN_GENERAL_FAILURE:
        soft = contexts.soft()
        probe = await async_validate_pdf_signature(sig, soft, soft, skip_diff=True)
        if probe.trusted:
            # The chain is sound; only revocation data is missing: ask again later.
            indication, sub = Indication.INDETERMINATE, AdESIndeterminate.TRY_LATER.name
            revocation_state = "unknown"
    problems = _problems(status, trust_status)
    docmdp = sig.docmdp_level
    return SignatureReport(
        field_name=str(sig.field_name),
        kind="seal",
        signer=signer_info(status.signing_cert),
        chain=_chain(trust_status, sig),
        trust_anchor=_anchor(trust_status),
        intact=status.intact,
        valid=status.valid,
        trusted=trust_status.trusted,
        coverage=status.coverage.name if status.coverage is not None else "UNCLEAR",
        modification_level=_modification(status.modification_level),
        certification_level=docmdp.name if docmdp is not None else None,
        docmdp_ok=status.docmdp_ok,
        signing_time=status.signer_reported_dt,
        timestamp=timestamp,
        revocation=_revocation(trust_status, status, timestamp, contexts, revocation_state),
        pades_level=pades_level if timestamp is not None else "B-B",
        algorithms=_algorithms(status, trust_status),
        signed_digest=_signed_digest(sig),
        indication=indication,
        sub_indication=sub,
        problems=tuple(problems),
    )


async def check_document_timestamp(
    sig: EmbeddedPdfSignature, contexts: Contexts
) -> SignatureReport:
    """Validate a document timestamp (PAdES B-LTA)."""
    vc = contexts.make(None)
    status: DocumentTimestampStatus = await async_validate_pdf_timestamp(sig, vc)
    timestamp = TimestampInfo(
        authority=status.signing_cert.subject.human_friendly,
        time=status.timestamp,
        intact=status.intact,
        valid=status.valid,
        trusted=status.trusted,
    )
    indication, sub = _indication(status, None)
    return SignatureReport(
        field_name=str(sig.field_name),
        kind="document-timestamp",
        signer=signer_info(status.signing_cert),
        chain=_chain(status, sig),
        trust_anchor=_anchor(status),
        intact=status.intact,
        valid=status.valid,
        trusted=status.trusted,
        coverage=status.coverage.name if status.coverage is not None else "UNCLEAR",
        modification_level=_modification(status.modification_level),
        certification_level=None,
        docmdp_ok=None,
        signing_time=status.timestamp,
        timestamp=timestamp,
        revocation=_revocation(status, status, timestamp, contexts, None),
        pades_level=None,
        algorithms=_algorithms(status, status),
        signed_digest=_signed_digest(sig),
        indication=indication,
        sub_indication=sub,
        problems=tuple(_problems(status, status)),
    )


def failed_signature(
    field_name: str, kind: str, message: str, sub_indication: str = "FORMAT_FAILURE"
) -> SignatureReport:
    """The report of a signature that could not even be read (no /ByteRange, empty /Contents,
    a CMS that does not parse)."""
    return SignatureReport(
        field_name=field_name,
        kind="document-timestamp" if kind == "document-timestamp" else "seal",
        signer=None,
        chain=(),
        trust_anchor=None,
        intact=False,
        valid=False,
        trusted=False,
        coverage="UNCLEAR",
        modification_level="OTHER",
        certification_level=None,
        docmdp_ok=False,
        signing_time=None,
        timestamp=None,
        revocation=RevocationInfo(state="not-checked", at=None),
        pades_level=None,
        algorithms=None,
        signed_digest="",
        indication=Indication.TOTAL_FAILED,
        sub_indication=sub_indication,
        problems=(message,),
    )


# --- from pyHanko's status to the report -------------------------------------------------


def _before_revocation(status: SignatureStatus, proven: datetime) -> bool:
    details = status.revocation_details
    return details is None or proven < details.revocation_date


def _indication(
    status: SignatureStatus, timestamp: TimestampInfo | None
) -> tuple[Indication, str | None]:
    if not status.intact:
        return Indication.TOTAL_FAILED, AdESFailure.HASH_FAILURE.name
    if not status.valid:
        return Indication.TOTAL_FAILED, AdESFailure.SIG_CRYPTO_FAILURE.name
    problem: AdESSubIndic | None = status.trust_problem_indic
    if problem is None and status.validation_path is None:
        problem = AdESIndeterminate.NO_CERTIFICATE_CHAIN_FOUND
    if (
        problem is AdESIndeterminate.CHAIN_CONSTRAINTS_FAILURE
        and status.validation_path is None
        and status.signing_cert.self_signed != "no"
    ):
        # certvalidator refuses a self-signed leaf that is not a trust root as a constraint
        # failure; for ETSI no chain to a trust anchor was found (a look-alike seal).
        problem = AdESIndeterminate.NO_CERTIFICATE_CHAIN_FOUND
    if problem is None:
        if timestamp is not None and not (timestamp.intact and timestamp.valid):
            return Indication.TOTAL_FAILED, AdESFailure.HASH_FAILURE.name
        return Indication.TOTAL_PASSED, None
    if problem is AdESIndeterminate.REVOKED_NO_POE and timestamp is not None and timestamp.trusted:
        # A trusted timestamp proves the seal was made after the revocation: a failure for
        # good (ETSI EN 319 102-1, 5.6.2.4), not an indeterminate result.
        return Indication.TOTAL_FAILED, AdESFailure.REVOKED.name
    name = problem.standard_name
    if isinstance(problem, AdESFailure):
        return Indication.TOTAL_FAILED, name
    return Indication.INDETERMINATE, name


def _problems(first: SignatureStatus, final: SignatureStatus) -> list[str]:
    problems = []
    if not first.intact:
        problems.append("The signed bytes do not hash to the digest the signature signed.")
    if not first.valid:
        problems.append("The signature value does not verify with the signer's key.")
    if final.trust_problem_indic is not None:
        problems.append(f"Trust: {final.trust_problem_indic.standard_name}.")
    if isinstance(first, PdfSignatureStatus | DocumentTimestampStatus):
        level = first.modification_level
        if level is not None and level.value > ModificationLevel.LTA_UPDATES.value:
            problems.append(f"Changes after the signature: {level.name}.")
        if first.docmdp_ok is False:
            problems.append("The changes after it exceed what the certification allows.")
    return problems


def _timestamp_info(status: TimestampSignatureStatus | None) -> TimestampInfo | None:
    if status is None:
        return None
    return TimestampInfo(
        authority=status.signing_cert.subject.human_friendly,
        time=status.timestamp,
        intact=status.intact,
        valid=status.valid,
        trusted=status.trusted,
    )


def _chain(status: SignatureStatus, sig: EmbeddedPdfSignature) -> tuple:  # type: ignore[type-arg]
    path = status.validation_path
    if path is not None:
        certs: list[asn1_x509.Certificate] = list(path.iter_certs(include_root=True))[::-1]
        return tuple(certificate_info(c) for c in certs)
    return tuple(certificate_info(c) for c in [status.signing_cert, *sig.other_embedded_certs])


def _anchor(status: SignatureStatus):  # type: ignore[no-untyped-def]
    path = status.validation_path
    if path is None:
        return None
    anchor = path.trust_anchor.authority
    cert = getattr(anchor, "certificate", None)
    return certificate_info(cert) if cert is not None else None


def _modification(level: ModificationLevel | None) -> str:
    return level.name if level is not None else "UNKNOWN"


def _revocation(
    final: SignatureStatus,
    first: SignatureStatus,
    timestamp: TimestampInfo | None,
    contexts: Contexts,
    state: str | None,
) -> RevocationInfo:
    at = timestamp.time if timestamp is not None and timestamp.trusted else final.validation_time
    details = first.revocation_details
    if state == "unknown":
        return RevocationInfo(state="unknown", at=at, sources=contexts.sources)
    if state == "revoked-after-signing" and details is not None:
        return RevocationInfo(
            state="revoked-after-signing",
            at=at,
            sources=contexts.sources,
            revoked_at=details.revocation_date,
            reason=str(details.revocation_reason.native),
        )
    if details is not None:
        return RevocationInfo(
            state="revoked",
            at=at,
            sources=contexts.sources,
            revoked_at=details.revocation_date,
            reason=str(details.revocation_reason.native),
        )
    if final.trusted:
        return RevocationInfo(state="good", at=at, sources=contexts.sources)
    if final.validation_path is None and final.trust_problem_indic is not None:
        return RevocationInfo(state="not-checked", at=at, sources=contexts.sources)
    return RevocationInfo(state="unknown", at=at, sources=contexts.sources)


def _signed_digest(sig: EmbeddedPdfSignature) -> str:
    """The digest (hex) by which the registry knows the bytes ``sig`` covers.

    It is made with the digest the signature itself names (a seal's SignerInfo, a document
    timestamp's message imprint), as the sealer recorded it with the seal's suite; see
    :func:`keys.suites.signed_bytes_digest` for a signature no suite makes.
    """
    return sig.compute_digest(signed_bytes_digest(sig.external_md_algorithm)).hex()


def _algorithms(first: SignatureStatus, final: SignatureStatus) -> AlgorithmInfo:
    key = first.signing_cert.public_key
    key_type = str(key.algorithm)
    try:
        bits = int(key.bit_size)
    except (ValueError, TypeError, AttributeError):
        bits = 0
    digest = str(first.md_algorithm)
    crypto_failed = final.trust_problem_indic in (
        AdESIndeterminate.CRYPTO_CONSTRAINTS_FAILURE,
        AdESIndeterminate.CRYPTO_CONSTRAINTS_FAILURE_NO_POE,
    )
    acceptable = (
        digest in _STRONG_DIGESTS
        and bits >= _MIN_KEY_BITS.get(key_type, 10**6)
        and not crypto_failed
    )
    return AlgorithmInfo(
        digest=digest,
        signature=str(first.pkcs7_signature_mechanism),
        key_type=key_type,
        key_size=bits,
        acceptable=acceptable,
    )
