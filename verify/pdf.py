"""Verify a PDF: every seal and document timestamp, the byte structure, the parties it reserves
fields for (:mod:`verify.envelope`), the registry's view.

``verify_pdf`` parses the file once and reuses the reader for every check. Nothing is
fetched: the validation contexts are built with ``allow_fetching=False`` from the file's
DSS and the caller's revocation data. Trust roots and the caller's CRLs and OCSP responses
are converted to pyHanko's types once per process and cached, and the signatures of
certificates, CRLs and OCSP responses are verified once per process
(:mod:`verify._signatures_seen`). Distinguished names are compared once per call
(:mod:`verify._names`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import decimal
import hashlib
import io
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypeVar

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils import generic, misc
from pyhanko.pdf_utils.decode_limits import DecodePurpose
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.general import (
    MultivaluedAttributeError,
    NonexistentAttributeError,
    find_unique_cms_attribute,
)
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko_certvalidator import ValidationContext

from verify._cms_containers import ContainerError, ContainerReadingSignature
from verify._names import remembered_name_comparisons
from verify._signatures_seen import RememberingSignatureValidator
from verify.annotated import examine_copy, find_copy, judge_copy
from verify.envelope import read_envelope
from verify.errors import MalformedPDFError, TooLargeError
from verify.hexstrings import fast_hex_strings
from verify.policy import VerificationPolicy
from verify.report import RegistryReport, Report, RevocationSource, SignatureReport
from verify.signatures import Contexts, check_document_timestamp, check_seal, failed_signature
from verify.structure import check_revisions, prescan
from verify.verdict import apply_registry, decide

__all__ = ["verify_pdf"]

# The CA certificates, the timestamp authority's and the CRLs recur in every document the
# service seals: their signatures are verified once per process (see the module).
_SIGNATURES = RememberingSignatureValidator()
_Revinfo = TypeVar("_Revinfo", asn1_crl.CertificateList, asn1_ocsp.OCSPResponse)
# decimal.InvalidOperation: pyHanko reads a number such as "1.2.3" with Decimal, which raises
# an ArithmeticError, not a ValueError (found by fuzz/fuzz_upload.py).
_PARSE_ERRORS = (
    misc.PdfError,
    ValueError,
    KeyError,
    TypeError,
    RecursionError,
    AttributeError,
    decimal.InvalidOperation,
)


def verify_pdf(data: bytes, *, policy: VerificationPolicy) -> Report:
    """Verify ``data`` and return the report.

    Raises :class:`~verify.errors.TooLargeError` or
    :class:`~verify.errors.MalformedPDFError` when the file is beyond the limits or not a
    readable PDF; every readable PDF gets a report with a verdict. For uploads, run it
    through :func:`verify.limits.verify_pdf_bounded` (time and memory limits).

    An annotated copy (加注件) is judged as such (:mod:`verify.annotated`): its attached
    original is verified too, with the same policy, one level deep.
    """
    with fast_hex_strings(), remembered_name_comparisons():
        report, _ = _verify(data, policy, follow_copies=True)
        return report


def _verify(data: bytes, policy: VerificationPolicy, *, follow_copies: bool) -> tuple[Report, bool]:
    """The report, and whether the file is an annotated copy."""
    verified_at = policy.now or datetime.now(UTC)
    prescan(data, policy.limits)
    reader = _open(data, policy)
    sigs = _embedded_signatures(reader, policy)
    contexts = _contexts(reader, policy, sigs)
    checked = asyncio.run(_check_all(reader, sigs, contexts))
    seal_revisions = [
        sig.signed_revision
        for sig, report in zip(sigs, checked, strict=True)
        if isinstance(sig, EmbeddedPdfSignature) and report.kind == "seal"
    ]
    try:
        structure = check_revisions(
            reader, data, protected=max(seal_revisions) if seal_revisions else -1
        )
    except _PARSE_ERRORS as exc:
        raise MalformedPDFError(f"The file's revisions cannot be read: {exc}.") from None
    registry = RegistryReport(consulted=False, matched=False)
    envelope = read_envelope(reader, checked, sealed_revisions=seal_revisions)
    verdict, reasons = decide(checked, structure, registry, envelope=envelope)
    found = (
        find_copy(reader, max(seal_revisions), max_attachment=policy.limits.max_file_size)
        if seal_revisions
        else None
    )
    copy = None
    if found is not None and follow_copies:
        # The original is judged without the registry, like the copy here; apply_registry
        # judges both again with the registry's view.
        alone = dataclasses.replace(policy, registry=None)
        copy = examine_copy(
            found,
            signatures=checked,
            verified_at=verified_at,
            verify_original=lambda original: _verify(original, alone, follow_copies=False),
        )
    report = Report(
        verdict=verdict,
        reasons=reasons,
        file_sha256=hashlib.sha256(data).hexdigest(),
        file_size=len(data),
        verified_at=verified_at,
        signatures=checked,
        registry=registry,
        structure=structure,
        annotated_copy=copy,
        envelope=envelope,
    )
    return apply_registry(judge_copy(report), policy.registry), found is not None


def _open(data: bytes, policy: VerificationPolicy) -> PdfFileReader:
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=True, decode_limits=policy.limits.decode)
        if reader.encrypted:
            raise MalformedPDFError("The PDF is encrypted; an encrypted file is not verified.")
        revisions = reader.xrefs.total_revisions
        reader.root  # noqa: B018  # touch the catalog so a broken one fails here
    except MalformedPDFError:
        raise
    except _PARSE_ERRORS as exc:
        raise MalformedPDFError(f"The PDF cannot be read: {exc}.") from None
    size = _declared_size(reader)
    if size > policy.limits.max_objects:
        raise TooLargeError(
            f"The PDF declares {size} objects; at most {policy.limits.max_objects} are accepted.",
            limit=policy.limits.max_objects,
            actual=size,
        )
    if revisions > policy.limits.max_revisions:
        raise TooLargeError(
            f"The PDF has {revisions} revisions; at most {policy.limits.max_revisions} "
            "are accepted.",
            limit=policy.limits.max_revisions,
            actual=revisions,
        )
    return reader


def _declared_size(reader: PdfFileReader) -> int:
    try:
        return int(reader.trailer_view["/Size"])
    except _PARSE_ERRORS:
        return 0


_Entry = EmbeddedPdfSignature | SignatureReport


def _embedded_signatures(reader: PdfFileReader, policy: VerificationPolicy) -> list[_Entry]:
    """Every filled signature field, in signing order; one that cannot be read at all (no
    /ByteRange, empty /Contents) becomes a failed report instead of hiding the others."""
    readable: list[EmbeddedPdfSignature] = []
    broken: list[SignatureReport] = []
    try:
        fields = list(enumerate_sig_fields(reader, filled_status=True))
    except _PARSE_ERRORS as exc:
        raise MalformedPDFError(f"The PDF's form fields cannot be read: {exc}.") from None
    if len(fields) > policy.limits.max_signatures:
        raise TooLargeError(
            f"The PDF has {len(fields)} signatures; at most {policy.limits.max_signatures} "
            "are checked.",
            limit=policy.limits.max_signatures,
            actual=len(fields),
        )
    for name, sig_obj, sig_field in fields:
        kind = "seal"
        try:
            if sig_obj.get_object().get("/Type") == "/DocTimeStamp":
                kind = "document-timestamp"
            # RFC 5652 or GM/T 0010 containers; another content type is refused by name.
            readable.append(ContainerReadingSignature(reader, sig_field, name))
        except ContainerError as exc:
            broken.append(failed_signature(str(name), kind, str(exc)))
        except _PARSE_ERRORS as exc:
            broken.append(failed_signature(str(name), kind, f"The signature is unreadable: {exc}."))
    readable.sort(key=lambda sig: sig.signed_revision)
    return [*readable, *broken]


async def _check_all(
    reader: PdfFileReader, sigs: list[_Entry], contexts: Contexts
) -> tuple[SignatureReport, ...]:
    """Check every signature in one event loop (pyHanko's synchronous wrappers start one per
    call)."""
    dss_revision = _dss_revision(reader)
    timestamp_revisions = [
        s.signed_revision
        for s in sigs
        if isinstance(s, EmbeddedPdfSignature) and s.sig_object_type == "/DocTimeStamp"
    ]
    out: list[SignatureReport] = []
    for sig in sigs:
        if isinstance(sig, SignatureReport):
            out.append(sig)
            continue
        is_timestamp = sig.sig_object_type == "/DocTimeStamp"
        try:
            if is_timestamp:
                out.append(await check_document_timestamp(sig, contexts))
            else:
                level = _pades_level(sig.signed_revision, dss_revision, timestamp_revisions)
                out.append(await check_seal(sig, contexts, pades_level=level))
        except SignatureValidationError as exc:
            sub = exc.ades_subindication
            out.append(
                failed_signature(
                    str(sig.field_name),
                    "document-timestamp" if is_timestamp else "seal",
                    str(exc),
                    sub.standard_name if sub is not None else "FORMAT_FAILURE",
                )
            )
        except Exception as exc:  # a hostile signature gets a verdict, not a crash
            out.append(
                failed_signature(
                    str(sig.field_name),
                    "document-timestamp" if is_timestamp else "seal",
                    f"The signature cannot be processed: {type(exc).__name__}: {exc}.",
                )
            )
    return tuple(out)


def _pades_level(revision: int, dss_revision: int | None, timestamps: list[int]) -> str:
    """The level a seal reached; B-T is confirmed by the caller from the timestamp found."""
    if dss_revision is None or dss_revision <= revision:
        return "B-T"
    if any(ts > dss_revision for ts in timestamps):
        return "B-LTA"
    return "B-LT"


def _dss_revision(reader: PdfFileReader) -> int | None:
    try:
        ref = reader.root.raw_get("/DSS")
    except KeyError:
        return None
    if not isinstance(ref, generic.IndirectObject):
        # A direct DSS dictionary changes with the catalog; take the catalog's revision.
        return reader.xrefs.get_last_change(reader.root_ref)  # type: ignore[no-any-return]
    return reader.xrefs.get_last_change(ref.reference)  # type: ignore[no-any-return]


def _contexts(reader: PdfFileReader, policy: VerificationPolicy, sigs: list[_Entry]) -> Contexts:
    roots = _asn1_roots(policy.trust_roots)
    crls = list(_asn1_crls(policy.crls))
    ocsps = list(_asn1_ocsps(policy.ocsp_responses))
    certs: list[asn1_x509.Certificate] = []
    sources: list[RevocationSource] = []
    file_crls, file_ocsps = _carried_revinfo(sigs)
    try:
        dss = _read_dss(reader)
    except _PARSE_ERRORS as exc:
        raise MalformedPDFError(f"The document security store cannot be read: {exc}.") from None
    if dss is not None:
        certs = dss[0]
        file_ocsps += dss[1]
        file_crls += dss[2]
    if policy.crls:
        # The caller's own, current CRLs decide. pyHanko stops at the first "good" OCSP
        # answer and then never reads a CRL, so an authentic but older "good" answer carried
        # in the file (valid for hours) would hide a revocation the caller's CRL lists.
        file_ocsps = []
    if file_crls or file_ocsps:
        sources.append("embedded")
    # The service's own CRLs are often the very ones embedded: check each once.
    crls = _unique([*file_crls, *crls])
    ocsps = _unique([*file_ocsps, *ocsps])
    if policy.crls:
        sources.append("crl")
    if policy.ocsp_responses:
        sources.append("ocsp")

    shared: ValidationContext | None = None

    def make(moment: datetime | None) -> ValidationContext:
        nonlocal shared
        if moment is not None:
            return _context(moment)
        # Every signature validated at the policy's time shares one context, so a
        # certificate's path and revocation status (the TSA's, the CAs') are checked once
        # per document instead of once per signature.
        if shared is None:
            shared = _context(None)
        return shared

    def _context(moment: datetime | None) -> ValidationContext:
        at = moment or policy.now
        return ValidationContext(
            trust_roots=roots,
            other_certs=certs,
            crls=crls,
            ocsps=ocsps,
            allow_fetching=False,
            revocation_mode="hard-fail",
            moment=at,
            # Revocation data issued after the proven signing time still speaks for it.
            retroactive_revinfo=moment is not None,
            signature_validator=_SIGNATURES,
        )

    def soft() -> ValidationContext:
        return ValidationContext(
            trust_roots=roots,
            other_certs=certs,
            crls=crls,
            ocsps=ocsps,
            allow_fetching=False,
            revocation_mode="soft-fail",
            moment=policy.now,
            signature_validator=_SIGNATURES,
        )

    return Contexts(make=make, soft=soft, sources=tuple(sources))


def _read_dss(
    reader: PdfFileReader,
) -> (
    tuple[list[asn1_x509.Certificate], list[asn1_ocsp.OCSPResponse], list[asn1_crl.CertificateList]]
    | None
):
    """The certificates, OCSP responses and CRLs of the file's document security store, or
    ``None`` when it has none.

    Read as pyHanko's ``DocumentSecurityStore.read_dss`` reads them (one certificate per
    issuer and serial number, the last one listed; a /VRI that is not a dictionary refused),
    each stream decoded under the reader's decode limits with pyHanko's per-purpose caps and
    parsed once per process (the cached parsers below). ``read_dss`` itself would parse every
    certificate afresh and decode every CRL and OCSP response twice more for bookkeeping
    that only a writer needs.
    """
    try:
        dss = reader.root["/DSS"]
    except KeyError:
        return None
    certs: dict[object, asn1_x509.Certificate] = {}
    for ref in _dss_array(dss, "/Certs"):
        cert = _parsed_certificate(ref.get_object().read_data(DecodePurpose.CERTIFICATE))
        certs[cert.issuer_serial] = cert
    ocsps = [
        _parsed_ocsp(ref.get_object().read_data(DecodePurpose.OCSP_RESPONSE))
        for ref in _dss_array(dss, "/OCSPs")
    ]
    crls = [
        _parsed_crl(ref.get_object().read_data(DecodePurpose.CRL))
        for ref in _dss_array(dss, "/CRLs")
    ]
    dict(_dss_entry(dss, "/VRI", {}))
    return list(certs.values()), ocsps, crls


def _dss_array(dss: Any, key: str) -> list[Any]:
    return list(_dss_entry(dss, key, []))


def _dss_entry(dss: Any, key: str, default: Any) -> Any:
    # Indexing, as read_dss does: it resolves an indirect entry (dict.get would not), and a
    # /DSS that is no dictionary raises here as there.
    try:
        return dss[key]
    except KeyError:
        return default


def _carried_revinfo(
    sigs: list[_Entry],
) -> tuple[list[asn1_crl.CertificateList], list[asn1_ocsp.OCSPResponse]]:
    """CRLs and OCSP responses carried inside the signatures themselves: the signed attribute
    adbe-revocationInfoArchival (how Acrobat embeds them, ISO 32000-1 12.8.3.3.2) and the CMS
    ``crls`` field (CAdES; OCSP responses as the other-revocation-info format of RFC 5940).
    Their authenticity is checked like any other revocation data's: by their issuers'
    signatures during path validation. A signature too broken to read them is reported by
    its own check."""
    crls: list[asn1_crl.CertificateList] = []
    ocsps: list[asn1_ocsp.OCSPResponse] = []
    for sig in sigs:
        if not isinstance(sig, EmbeddedPdfSignature):
            continue
        try:
            try:
                archival = find_unique_cms_attribute(
                    sig.signer_info["signed_attrs"], "adobe_revocation_info_archival"
                )
            except (NonexistentAttributeError, MultivaluedAttributeError):
                archival = None
            if archival is not None:
                crls.extend(_parsed_crl(item.dump()) for item in archival["crl"] or ())
                ocsps.extend(_parsed_ocsp(item.dump()) for item in archival["ocsp"] or ())
            for choice in sig.signed_data["crls"] or ():
                if choice.name == "crl":
                    crls.append(_parsed_crl(choice.chosen.dump()))
                elif choice.chosen["other_rev_info_format"].native == "ocsp_response":
                    ocsps.append(_parsed_ocsp(choice.chosen["other_rev_info"].dump()))
        except _PARSE_ERRORS:
            continue
    return crls, ocsps


# Documents sealed by the service embed the same CA certificates, CRLs and OCSP responses;
# parsing each once per process keeps asn1crypto's lazily computed values (normalised names,
# hashes) for the next document. Keyed by the DER bytes, so a different file gets its own.
@lru_cache(maxsize=256)
def _parsed_certificate(der: bytes) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(der)


@lru_cache(maxsize=256)
def _parsed_crl(der: bytes) -> asn1_crl.CertificateList:
    return asn1_crl.CertificateList.load(der)


@lru_cache(maxsize=256)
def _parsed_ocsp(der: bytes) -> asn1_ocsp.OCSPResponse:
    return asn1_ocsp.OCSPResponse.load(der)


def _unique(items: list[_Revinfo]) -> list[_Revinfo]:
    return list({item.dump(): item for item in items}.values())


@lru_cache(maxsize=16)
def _asn1_roots(roots: tuple[x509.Certificate, ...]) -> list[asn1_x509.Certificate]:
    return [asn1_x509.Certificate.load(r.public_bytes(Encoding.DER)) for r in roots]


def _asn1_crls(crls: tuple[bytes, ...]) -> list[asn1_crl.CertificateList]:
    return [_parsed_crl(der) for der in _checked(crls)]


def _asn1_ocsps(responses: tuple[bytes, ...]) -> list[asn1_ocsp.OCSPResponse]:
    return [_parsed_ocsp(der) for der in _checked(responses)]


def _checked(items: Iterable[bytes]) -> list[bytes]:
    out = list(items)
    for item in out:
        if not isinstance(item, bytes):
            raise TypeError("CRLs and OCSP responses are given as DER bytes.")
    return out
