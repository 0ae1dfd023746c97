"""From the checks to one verdict and its reasons in plain words.

The rules (issue 5):

- bytes exactly as issued (the registry found the whole file's SHA-256): the registry's
  status is the verdict;
- otherwise the last seal must be intact, valid and trusted, everything after it a
  long-term-validation update (DSS, document timestamps) with a clean byte structure, every
  earlier seal within its certification, and every document timestamp intact and trusted;
  then a registry match by a seal's signed bytes adds the registry's status, and a file not
  issued here keeps its cryptographic verdict;
- severity decides between failures: INVALID, then REVOKED, then MODIFIED, then
  INCOMPLETE, then INDETERMINATE;
- a file that reserves fields for parties (an envelope, :mod:`verify.envelope`) is
  INCOMPLETE while any of them is empty, whatever else holds, registry included: a contract
  two of three parties have sealed is not a valid contract. A seal in a bound field by
  someone other than the party it is bound to is INVALID;
- a file that would be VALID on its seals alone, sealed by one of this service's seals
  (the registry knows the seal's certificate) but not found in the registry, is UNKNOWN:
  it was sealed here and never registered (an issuance that crashed before its transaction
  committed, a key used outside the service), so its number may belong to another holder.
  A file sealed by another issuer keeps its cryptographic verdict ("not issued here").

A file with no seal at all is INVALID, not UNKNOWN: a seal picture without a signature
proves nothing, and UNKNOWN ("not issued here") would suggest it might be genuine elsewhere.
A seal whose certificate was revoked before the proven signing time is REVOKED (ETSI:
TOTAL_FAILED / REVOKED), kept apart from INVALID because the seal was genuine once and the
person should hear that it was withdrawn, not forged.
"""

from __future__ import annotations

import dataclasses

from verify.annotated import judge_copy
from verify.envelope import EnvelopeRegistry, with_record
from verify.registry import RegistryMatch, RegistryView
from verify.report import (
    EnvelopeReport,
    Indication,
    Reason,
    RegistryReport,
    Report,
    SignatureReport,
    StructureReport,
    Verdict,
)

_SEVERITY = (
    Verdict.INVALID,
    Verdict.REVOKED,
    Verdict.MODIFIED,
    Verdict.INCOMPLETE,
    Verdict.INDETERMINATE,
)
_PERMITTED_AFTER_LAST = ("NONE", "LTA_UPDATES")
_STATUS_VERDICT = {
    "valid": Verdict.VALID,
    "revoked": Verdict.REVOKED,
    "suspended": Verdict.SUSPENDED,
    "superseded": Verdict.SUPERSEDED,
    "expired": Verdict.EXPIRED,
}
_STATUS_WORDS = {
    "valid": ("登记状态有效", "the registry lists it as valid"),
    "revoked": ("已被签发机关撤销", "its issuer has revoked it"),
    "suspended": ("已被签发机关暂停", "its issuer has suspended it"),
    "superseded": ("已被新版本取代", "a newer issue has replaced it"),
    "expired": ("已过有效期", "it has expired"),
}


def decide(
    signatures: tuple[SignatureReport, ...],
    structure: StructureReport,
    registry: RegistryReport,
    *,
    sealed_here: bool = False,
    envelope: EnvelopeReport | None = None,
) -> tuple[Verdict, tuple[Reason, ...]]:
    """The verdict and its reasons, decisive reason first.

    ``sealed_here``: a seal of the file is one of this service's seals (the registry knows
    its certificate). ``envelope``: the parties the file reserves fields for."""
    parties = _judge_envelope(envelope)
    if registry.matched and registry.matched_by == "file" and registry.status is not None:
        zh, en = _STATUS_WORDS[registry.status]
        status = Reason(
            code=f"registry-{registry.status}",
            zh=f"文件与签发时完全一致，{zh}。",
            en=f"The file is byte for byte the one issued, and {en}.",
        )
        if registry.status == "valid" and parties:
            # Registered as sealed so far, but the envelope's account decides.
            return _worst([*parties, (Verdict.VALID, status)])
        return _STATUS_VERDICT[registry.status], (status,)
    verdict, reasons = _cryptographic(signatures, structure, parties)
    if not registry.consulted:
        return verdict, reasons
    if not registry.matched and sealed_here and verdict is Verdict.VALID:
        return Verdict.UNKNOWN, (
            Reason(
                code="sealed-here-not-registered",
                zh="文件盖有本平台的电子印章，但本平台从未登记此文件；不能作为有效证照或文件使用。",
                en="The file is sealed with this service's seal but was never registered here; "
                "it is not a valid licence or document.",
            ),
            *reasons,
        )
    if not registry.matched:
        return verdict, (
            *reasons,
            Reason(
                code="not-issued-here",
                zh="本平台未签发此文件；以上结论仅依据电子签章本身。",
                en="This service did not issue the file; the verdict rests on its seals alone.",
            ),
        )
    if registry.signer_is_recorded_seal is False:
        return Verdict.INVALID, (
            Reason(
                code="wrong-seal",
                zh="文件上的印章不是签发时登记的印章。",
                en="The seal on the file is not the seal recorded when it was issued.",
            ),
            *reasons,
        )
    # What the issuer did (revoked, suspended...) is said first, whether every party has
    # sealed or not; the registry's "valid" does not make an incomplete document complete.
    withdrawn = verdict is Verdict.INCOMPLETE and registry.status not in (None, "valid")
    if (verdict is Verdict.VALID or withdrawn) and registry.status is not None:
        zh, en = _STATUS_WORDS[registry.status]
        return _STATUS_VERDICT[registry.status], (
            Reason(
                code=f"registry-{registry.status}",
                zh=f"印章有效，文件为本平台签发，{zh}。",
                en=f"The seal holds, the file was issued here, and {en}.",
            ),
            *reasons,
        )
    return verdict, reasons


def apply_registry(report: Report, registry: RegistryView | None) -> Report:
    """``report`` judged again with the registry's view (verification in a worker process
    leaves the registry to the caller, which holds the database session)."""
    if registry is None:
        return report
    seals = [s for s in report.signatures if s.kind == "seal" and s.signed_digest]
    match = registry.lookup(report.file_sha256, [s.signed_digest for s in seals])
    sealed_here = False
    if match is None:
        view = RegistryReport(consulted=True, matched=False)
        sealed_here = any(
            s.signer is not None and registry.knows_seal(s.signer.certificate_sha256) for s in seals
        )
    else:
        last = seals[-1] if seals else None
        signer = last.signer.certificate_sha256 if last and last.signer else None
        view = RegistryReport(
            consulted=True,
            matched=True,
            record_id=match.record_id,
            kind=match.kind,
            number=match.number,
            holder=match.holder,
            status=match.status,
            matched_by=match.matched_by,
            recorded_seal_sha256=match.seal_fingerprint,
            signer_is_recorded_seal=signer == match.seal_fingerprint,
        )
    envelope = _registered_envelope(report.envelope, registry, match)
    verdict, reasons = decide(
        report.signatures, report.structure, view, sealed_here=sealed_here, envelope=envelope
    )
    judged = dataclasses.replace(
        report, verdict=verdict, reasons=reasons, registry=view, envelope=envelope
    )
    copy = report.annotated_copy
    if copy is None:
        return judged
    # An annotated copy: its original is judged with the registry too, then the copy's
    # verdict is decided again from its own and the original's.
    original = copy.original.report
    return judge_copy(judged, apply_registry(original, registry) if original else None)


def _registered_envelope(
    envelope: EnvelopeReport | None, registry: RegistryView, match: RegistryMatch | None
) -> EnvelopeReport | None:
    """The file's account of its parties, with the registry's record of the envelope when the
    file is a registered revision of one and the registry knows envelopes."""
    if envelope is None or match is None:
        return envelope
    if not isinstance(registry, EnvelopeRegistry):
        return envelope
    registered = registry.envelope_of(match.record_id)
    return envelope if registered is None else with_record(envelope, registered)


def _judge_envelope(envelope: EnvelopeReport | None) -> list[tuple[Verdict, Reason]]:
    """A seal by someone else in a bound field (INVALID), and parties yet to seal
    (INCOMPLETE)."""
    if envelope is None:
        return []
    out: list[tuple[Verdict, Reason]] = []
    for party in envelope.parties:
        if party.signer_is_party is False:
            signer = party.signer_code or "无代码 no code"
            out.append(
                (
                    Verdict.INVALID,
                    Reason(
                        code="envelope-wrong-party",
                        zh=f"签章域“{party.field}”为签署方 {party.code} 保留，却由 {signer} 盖章。",
                        en=f"Field {party.field!r} is reserved for party {party.code}, but "
                        f"{signer} sealed it.",
                    ),
                )
            )
    if not envelope.complete:
        missing = [p for p in envelope.parties if p.status == "unsealed"]
        zh_names = "、".join(_who(p.name, p.code, p.field, zh=True) for p in missing)
        en_names = "; ".join(_who(p.name, p.code, p.field, zh=False) for p in missing)
        out.append(
            (
                Verdict.INCOMPLETE,
                Reason(
                    code="envelope-incomplete",
                    zh=f"签署未完成：{envelope.progress.zh}，尚未签章：{zh_names}。",
                    en=f"Not every party has sealed: {envelope.progress.en}; "
                    f"not yet sealed: {en_names}.",
                ),
            )
        )
    return out


def _who(name: str | None, code: str, field: str, *, zh: bool) -> str:
    named = f"{name}（{code}）" if zh and name else f"{name} ({code})" if name else code
    return f"{named}，签章域“{field}”" if zh else f"{named}, field {field!r}"


def _worst(found: list[tuple[Verdict, Reason]]) -> tuple[Verdict, tuple[Reason, ...]]:
    """The most severe finding's verdict, and every reason, most severe first (a VALID
    finding, such as the registry's word, comes last)."""

    def rank(item: tuple[Verdict, Reason]) -> int:
        return _SEVERITY.index(item[0]) if item[0] in _SEVERITY else len(_SEVERITY)

    ordered = sorted(found, key=rank)
    return ordered[0][0], tuple(dict.fromkeys(r for _, r in ordered))


def _cryptographic(
    signatures: tuple[SignatureReport, ...],
    structure: StructureReport,
    parties: list[tuple[Verdict, Reason]] | None = None,
) -> tuple[Verdict, tuple[Reason, ...]]:
    seals = [s for s in signatures if s.kind == "seal"]
    if not seals:
        return Verdict.INVALID, (
            Reason(
                code="no-seal",
                zh="文件没有电子签章；印章图案本身不能证明真实性。",
                en="The file carries no electronic seal; a picture of a seal proves nothing.",
            ),
        )
    found: list[tuple[Verdict, Reason]] = list(parties or ())
    for index, sig in enumerate(seals):
        found.extend(_judge_seal(sig, last=index == len(seals) - 1))
    for sig in signatures:
        if sig.kind == "document-timestamp":
            found.extend(_judge_timestamp(sig))
    if not structure.clean:
        found.append(
            (
                Verdict.MODIFIED,
                Reason(
                    code="stray-bytes",
                    zh="盖章后文件末尾被追加了未登记的内容。",
                    en="Unreferenced objects or stray bytes were appended after sealing.",
                ),
            )
        )
    if not found:
        return Verdict.VALID, (
            Reason(
                code="seals-valid",
                zh="电子签章完整、有效、可信，盖章后未被改动。",
                en="Every seal is intact, valid and trusted, and nothing changed after sealing.",
            ),
        )
    return _worst(found)


def _judge_seal(sig: SignatureReport, *, last: bool) -> list[tuple[Verdict, Reason]]:
    name = sig.field_name
    out: list[tuple[Verdict, Reason]] = []
    if sig.sub_indication in ("REVOKED", "REVOKED_NO_POE"):
        out.append(
            (
                Verdict.REVOKED,
                Reason(
                    code="seal-revoked",
                    zh=f"印章“{name}”的证书在盖章前已被吊销。",
                    en=f"The certificate of seal {name!r} was revoked before it sealed.",
                ),
            )
        )
    elif sig.indication is Indication.TOTAL_FAILED or sig.coverage in (
        "UNCLEAR",
        "CONTIGUOUS_BLOCK_FROM_START",
    ):
        out.append(
            (
                Verdict.INVALID,
                Reason(
                    code="seal-broken",
                    zh=f"印章“{name}”已损坏或被伪造（{sig.sub_indication or '签名范围异常'}）。",
                    en=f"Seal {name!r} is broken or forged "
                    f"({sig.sub_indication or 'its signed range is irregular'}).",
                ),
            )
        )
    elif sig.sub_indication in (
        "NO_CERTIFICATE_CHAIN_FOUND",
        "CHAIN_CONSTRAINTS_FAILURE",
        "CRYPTO_CONSTRAINTS_FAILURE",
        "NO_SIGNING_CERTIFICATE_FOUND",
        "CERTIFICATE_CHAIN_GENERAL_FAILURE",
    ):
        out.append(
            (
                Verdict.INVALID,
                Reason(
                    code="seal-untrusted",
                    zh=f"印章“{name}”不是可信机构签发的印章（{sig.sub_indication}）。",
                    en=f"Seal {name!r} does not come from a trusted authority "
                    f"({sig.sub_indication}).",
                ),
            )
        )
    elif sig.indication is Indication.INDETERMINATE:
        out.append(
            (
                Verdict.INDETERMINATE,
                Reason(
                    code="seal-indeterminate",
                    zh=f"暂时无法确认印章“{name}”的有效性（{sig.sub_indication}）。",
                    en=f"Seal {name!r} cannot be confirmed now ({sig.sub_indication}).",
                ),
            )
        )
    modified = (
        sig.modification_level not in _PERMITTED_AFTER_LAST
        if last
        else sig.docmdp_ok is not True or sig.modification_level in ("OTHER", "UNKNOWN")
    )
    if modified:
        out.append(
            (
                Verdict.MODIFIED,
                Reason(
                    code="modified-after-seal",
                    zh=f"印章“{name}”之后文件被改动（{sig.modification_level}）。",
                    en=f"The file was changed after seal {name!r} ({sig.modification_level}).",
                ),
            )
        )
    return out


def _judge_timestamp(sig: SignatureReport) -> list[tuple[Verdict, Reason]]:
    name = sig.field_name
    if sig.indication is Indication.TOTAL_FAILED or not (sig.intact and sig.valid):
        return [
            (
                Verdict.INVALID,
                Reason(
                    code="timestamp-broken",
                    zh=f"文档时间戳“{name}”已损坏。",
                    en=f"Document timestamp {name!r} is broken.",
                ),
            )
        ]
    if not sig.trusted:
        return [
            (
                Verdict.INDETERMINATE,
                Reason(
                    code="timestamp-untrusted",
                    zh=f"文档时间戳“{name}”的时间戳机构不可信。",
                    en=f"The authority of document timestamp {name!r} is not trusted.",
                ),
            )
        ]
    if sig.modification_level not in _PERMITTED_AFTER_LAST:
        return [
            (
                Verdict.MODIFIED,
                Reason(
                    code="modified-after-timestamp",
                    zh=f"文档时间戳“{name}”之后文件被改动。",
                    en=f"The file was changed after document timestamp {name!r}.",
                ),
            )
        ]
    return []
