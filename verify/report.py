"""The verification report: one verdict for a person, the details for an auditor.

Every report carries :data:`REPORT_SCHEMA` (``econtract-report/1``), the version of its JSON
form, which ``verify/report_schema.json`` describes. Per signature it follows the vocabulary
of ETSI EN 319 102-1: an indication (TOTAL_PASSED, TOTAL_FAILED, INDETERMINATE) and, unless
it passed, a sub-indication.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from verify.words import INDICATION_WORDS, VERDICT_WORDS, Words

REPORT_SCHEMA = "econtract-report/1"
"""The version marker of the report format."""


class Verdict(StrEnum):
    """The bottom line for a person (DESIGN.md, "Verdicts")."""

    VALID = "VALID"
    """Genuine, unchanged and in force."""
    INVALID = "INVALID"
    """Not genuine: a broken, untrusted or missing seal."""
    MODIFIED = "MODIFIED"
    """Sealed genuinely, then changed in a way the seal does not allow."""
    REVOKED = "REVOKED"
    """Revoked: the licence by its issuer, or the seal before it sealed."""
    SUSPENDED = "SUSPENDED"
    """Suspended by its issuer."""
    EXPIRED = "EXPIRED"
    """Past its validity."""
    SUPERSEDED = "SUPERSEDED"
    """Replaced by a newer issue."""
    INCOMPLETE = "INCOMPLETE"
    """Sealed genuinely so far, but not every party whose field it reserves has sealed (an
    envelope: a contract, a parallel approval)."""
    UNKNOWN = "UNKNOWN"
    """Not issued here."""
    INDETERMINATE = "INDETERMINATE"
    """Cannot be decided now (for example, revocation data is missing)."""

    @property
    def words(self) -> Words:
        """The verdict's words in Chinese and English (``verify.words``), as every page,
        report and the command line print them."""
        return VERDICT_WORDS[self.value]

    @property
    def chinese(self) -> str:
        """The verdict in Chinese."""
        return self.words.zh

    @property
    def english(self) -> str:
        """The verdict in English."""
        return self.words.en


class Indication(StrEnum):
    """ETSI EN 319 102-1 main indications."""

    TOTAL_PASSED = "TOTAL_PASSED"
    """Every check passed."""
    TOTAL_FAILED = "TOTAL_FAILED"
    """A check failed for good (forged, altered, revoked before signing)."""
    INDETERMINATE = "INDETERMINATE"
    """The checks could not conclude."""

    @property
    def words(self) -> Words:
        """The result's words in Chinese and English (``verify.words``)."""
        return INDICATION_WORDS[self.value]


RevocationSource = Literal["embedded", "crl", "ocsp", "registry"]
"""Where revocation data came from: the file (DSS, CMS), the caller's CRLs or OCSP
responses, or the registry."""
RevocationState = Literal["good", "revoked", "revoked-after-signing", "unknown", "not-checked"]
"""What the revocation check found for the signer's certificate."""
SignatureKind = Literal["seal", "document-timestamp"]
"""An approval or certification seal, or a document timestamp (PAdES B-LTA)."""


@dataclass(frozen=True, kw_only=True)
class Reason:
    """One reason for the verdict, in plain words, Chinese and English."""

    code: str
    """A stable slug (``hash-failure``, ``registry-revoked``, ...)."""
    zh: str
    """The reason in Chinese."""
    en: str
    """The reason in English."""


@dataclass(frozen=True, kw_only=True)
class CertificateInfo:
    """A certificate as a person reads it, with its fingerprint."""

    subject: str
    """The subject, human-friendly."""
    issuer: str
    """The issuer, human-friendly."""
    serial: str
    """The serial number, hexadecimal."""
    sha256: str
    """SHA-256 of the DER encoding, lowercase hex."""
    not_before: datetime
    """Start of validity."""
    not_after: datetime
    """End of validity."""


@dataclass(frozen=True, kw_only=True)
class SignerInfo:
    """The seal that signed, read from its certificate."""

    department_name: str | None
    """The department (O)."""
    department_code: str | None
    """The department's unified social credit code (organizationIdentifier)."""
    seal_name: str | None
    """The seal's name (OU)."""
    seal_kind: str | None
    """``official``, ``licence``, ``contract`` or ``platform`` (from the certificate policy)."""
    common_name: str | None
    """The certificate's CN (for a foreign signer, the only name it may have)."""
    certificate_sha256: str
    """SHA-256 of the signer's certificate."""


@dataclass(frozen=True, kw_only=True)
class TimestampInfo:
    """An RFC 3161 timestamp: on a seal (B-T) or the document timestamp itself."""

    authority: str
    """The timestamp authority's subject."""
    time: datetime
    """The time it proves."""
    intact: bool
    """The stamped digest matches."""
    valid: bool
    """The token's signature is cryptographically valid."""
    trusted: bool
    """The authority chains to a trust root."""


@dataclass(frozen=True, kw_only=True)
class RevocationInfo:
    """The signer certificate's revocation status at the proven signing time."""

    state: RevocationState
    """What was found."""
    at: datetime | None
    """The time the status is stated for (the proven signing time, else the check time)."""
    sources: tuple[RevocationSource, ...] = ()
    """Where revocation data was available from."""
    revoked_at: datetime | None = None
    """When the certificate was revoked, if it was."""
    reason: str | None = None
    """The RFC 5280 revocation reason, if any."""


@dataclass(frozen=True, kw_only=True)
class AlgorithmInfo:
    """The algorithms of a signature and whether they are strong enough."""

    digest: str
    """The message digest (``sha256``)."""
    signature: str
    """The signature mechanism (``ecdsa``, ``sha256_rsa``, ``rsassa_pss``...)."""
    key_type: str
    """``rsa``, ``ec``, ..."""
    key_size: int
    """Key size in bits (the curve size for EC)."""
    acceptable: bool
    """Whether the digest and key meet the policy (SHA-256 or better; RSA >= 2048; EC >= 256)."""


@dataclass(frozen=True, kw_only=True)
class SignatureReport:
    """Everything checked about one signature or document timestamp."""

    field_name: str
    """The signature field."""
    kind: SignatureKind
    """A seal or a document timestamp."""
    signer: SignerInfo | None
    """The seal that signed (for a document timestamp, the authority's certificate)."""
    chain: tuple[CertificateInfo, ...]
    """The validated path, signer first, up to the trust anchor; the embedded certificates
    when no path was found."""
    trust_anchor: CertificateInfo | None
    """The trust root the path ends at, if one was found."""
    intact: bool
    """The signed bytes hash to the signed digest."""
    valid: bool
    """The signature value is cryptographically valid."""
    trusted: bool
    """The signer chains to a trust root, and passes revocation and usage checks."""
    coverage: str
    """ENTIRE_FILE, ENTIRE_REVISION, CONTIGUOUS_BLOCK_FROM_START or UNCLEAR."""
    modification_level: str
    """What changed after this signature: NONE, LTA_UPDATES, FORM_FILLING, ANNOTATIONS, OTHER."""
    certification_level: str | None
    """The DocMDP permission when the signature certifies (NO_CHANGES, FILL_FORMS, ANNOTATE)."""
    docmdp_ok: bool | None
    """Whether the changes after it are within what the certification allows."""
    signing_time: datetime | None
    """The signing time the signer claims (signed attribute, else ``/M``); not proof."""
    timestamp: TimestampInfo | None
    """The signature timestamp (B-T), or for a document timestamp, the token itself."""
    revocation: RevocationInfo
    """Revocation status at the proven signing time."""
    pades_level: str | None
    """B-B, B-T, B-LT or B-LTA reached by this seal; ``None`` for a document timestamp."""
    algorithms: AlgorithmInfo | None
    """Digest, signature mechanism and key."""
    signed_digest: str
    """SHA-256 (hex) of the bytes the signature covers (the registry looks seals up by it)."""
    indication: Indication
    """ETSI EN 319 102-1 indication."""
    sub_indication: str | None
    """ETSI sub-indication (HASH_FAILURE, REVOKED, NO_CERTIFICATE_CHAIN_FOUND, ...)."""
    problems: tuple[str, ...] = ()
    """What went wrong, in English sentences for an auditor."""


@dataclass(frozen=True, kw_only=True)
class RegistryReport:
    """The registry's view of the file."""

    consulted: bool
    """Whether a registry was asked (an offline auditor may have none)."""
    matched: bool
    """Whether the file was issued here."""
    record_id: str | None = None
    """The certificate's or document's id."""
    kind: str | None = None
    """``certificate`` or ``document``."""
    number: str | None = None
    """The number people read."""
    holder: str | None = None
    """The licence's holder as printed on it (the registry's record)."""
    status: str | None = None
    """valid, revoked, suspended, superseded or expired."""
    matched_by: str | None = None
    """``file`` (whole-file SHA-256) or ``signed-bytes`` (a seal's signed digest)."""
    recorded_seal_sha256: str | None = None
    """SHA-256 of the seal certificate recorded at issuance."""
    signer_is_recorded_seal: bool | None = None
    """Whether the last seal of the file was made by that seal certificate."""


@dataclass(frozen=True, kw_only=True)
class StructureReport:
    """What the file's byte structure showed."""

    revisions: int
    """Number of revisions (the original plus incremental updates)."""
    clean: bool
    """Every revision ends where the next begins, every appended object is referenced by its
    cross-reference section, and nothing but line ends follows the last ``%%EOF``."""
    problems: tuple[str, ...] = ()
    """What was found, in English sentences."""


@dataclass(frozen=True, kw_only=True)
class Report:
    """The verification report of one PDF."""

    verdict: Verdict
    """The bottom line."""
    reasons: tuple[Reason, ...]
    """Why, in plain words; the first reason is the decisive one."""
    file_sha256: str
    """SHA-256 of the whole file."""
    file_size: int
    """Size in bytes."""
    verified_at: datetime
    """When the verification ran (or the time the caller pinned)."""
    signatures: tuple[SignatureReport, ...]
    """Every seal and document timestamp, in the order they were added."""
    registry: RegistryReport
    """The registry's view."""
    structure: StructureReport
    """The file's byte structure."""
    annotated_copy: AnnotatedCopyReport | None = None
    """What the file says and shows as an annotated copy (加注件), when it is one."""
    envelope: EnvelopeReport | None = None
    """The parties whose fields the file reserves and whether each has sealed (an envelope:
    a contract, a parallel approval), when it reserves any."""
    schema: str = field(default=REPORT_SCHEMA)
    """The report format's version marker."""

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-ready dict (times in ISO 8601), per ``report_schema.json``."""
        return _jsonable(self)  # type: ignore[no-any-return]


@dataclass(frozen=True, kw_only=True)
class CopyDepartment:
    """The using department an annotated copy is for."""

    code: str
    """Its unified social credit code."""
    name: str
    """Its name."""


@dataclass(frozen=True, kw_only=True)
class CopyOriginal:
    """The original licence attached to an annotated copy, and its own verdict."""

    identifier: str | None
    """The licence identifier the statement names."""
    sha256: str | None
    """The original's SHA-256 the statement names."""
    attached_sha256: str | None
    """SHA-256 of the attachment found in the signed revision (``None``: none found)."""
    verdict: Verdict | None
    """The attachment's own verdict, verified alone with the same policy (``None``: not
    verified, for there was nothing sound to verify)."""
    reasons: tuple[Reason, ...] = ()
    """Why, as its own report says."""
    report: Report | None = field(default=None, metadata={"json": False})
    """The attachment's whole report, kept so that the registry's view can judge it again;
    not part of the JSON form (the copy's report says what matters about it)."""


@dataclass(frozen=True, kw_only=True)
class AnnotatedCopyReport:
    """An annotated copy (加注件): for whom, for what, until when, and its original.

    Everything here is read from the revision the copy's last seal signed; what was added
    afterwards is not believed."""

    for_department: CopyDepartment | None
    """The using department (``None`` when the statement could not be read)."""
    matter: str | None
    """The matter (事项) the copy serves."""
    case_number: str | None
    """The case number, if the use named one."""
    valid_until: str | None
    """The copy's last day (ISO 8601 date)."""
    valid_until_instant: datetime | None
    """The instant its use ends (the end of that day, China Standard Time)."""
    usage_id: str | None
    """The use record (用证记录) it was made for."""
    original: CopyOriginal
    """The original licence and its verdict."""
    seal_verdict: Verdict
    """The verdict on the copy's own seals and bytes, before its content was judged."""
    platform_seal: bool
    """Whether the copy's last seal is a platform seal (kind ``platform``), the only kind
    that makes annotated copies."""
    expired: bool
    """Whether the copy's use had ended at the verification time."""
    problems: tuple[Reason, ...] = ()
    """What makes it no annotated copy of this service: a malformed statement, a missing or
    different original, a marking for someone else, another kind of seal."""


@dataclass(frozen=True, kw_only=True)
class PartyReport:
    """One party of an envelope: the field reserved for it, and the seal in it, if any."""

    field: str
    """The signature field reserved for the party."""
    code: str
    """The party's unified social credit code, as the field's seed value binds it."""
    name: str | None
    """The party's name: the registry's, else the name its seal's certificate gives."""
    step: int | None
    """The step it acts in (the registry's; ``None`` when only the file was read)."""
    status: Literal["sealed", "unsealed"]
    """Whether its field holds a seal."""
    sealed_at: datetime | None
    """When it sealed: the seal's timestamp, else the time the seal claims."""
    signer_name: str | None
    """The organisation the seal's certificate names (O)."""
    signer_code: str | None
    """The credit code in the seal certificate's organizationIdentifier."""
    signer_is_party: bool | None
    """Whether the seal in the field is the bound party's (``None`` while unsealed)."""


@dataclass(frozen=True, kw_only=True)
class EnvelopeCounts:
    """How many of an envelope's parties have sealed."""

    sealed: int
    """Parties whose field holds a seal."""
    parties: int
    """Parties in all."""


@dataclass(frozen=True, kw_only=True)
class Progress:
    """How far an envelope is, in a sentence: ``3 方中已有 2 方签章``."""

    zh: str
    """In Chinese."""
    en: str
    """In English: ``2 of 3 parties have sealed``."""


@dataclass(frozen=True, kw_only=True)
class EnvelopeRecord:
    """The registry's record of the envelope the file is a revision of."""

    id: str
    """The envelope's id."""
    title: str
    """Its title."""
    status: str
    """open, completed, declined, cancelled or expired."""


@dataclass(frozen=True, kw_only=True)
class EnvelopeReport:
    """An envelope's account, read from the file alone (a court has only the file), with the
    registry's record added when the file is a revision of a registered envelope."""

    parties: tuple[PartyReport, ...]
    """Every field reserved and bound to a party, in the file's order."""
    counts: EnvelopeCounts
    """How many have sealed, of how many."""
    complete: bool
    """Whether every party has sealed."""
    progress: Progress
    """The counts in words."""
    record: EnvelopeRecord | None = None
    """The registry's record of the envelope, when it was asked and knows it."""


@dataclass(frozen=True, kw_only=True)
class Appendix:
    """A section the caller adds at the end of the printable report (HTML and PDF), such as
    the service's transparency-log proof for the registry record the file matched."""

    title: str
    """The section's heading (Chinese, then English)."""
    rows: tuple[tuple[str, str], ...]
    """Label and value pairs, plain text."""
    note: str = ""
    """A sentence under the heading, plain text."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {
            f.name: _jsonable(getattr(value, f.name))
            for f in fields(value)
            if f.metadata.get("json", True)
        }
    return value


def report_schema() -> dict[str, Any]:
    """The JSON Schema of :meth:`Report.to_json` (``verify/report_schema.json``)."""
    import json  # noqa: PLC0415
    from importlib.resources import files  # noqa: PLC0415

    text = files("verify").joinpath("report_schema.json").read_text(encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]
