"""Seal a PDF: PAdES B-B to B-LTA, certification or approval, visible or invisible.

pyHanko does the PDF work. Three things are done here rather than through its defaults, for
speed and for honesty about what was made:

- the signature placeholder is sized from the certificates and the level
  (``bytes_reserved``), so pyHanko does not sign a dummy document first;
- B-LT embeds validation material the service already holds (its own chain, CRLs and OCSP
  responses) with ``DocumentSecurityStore.add_dss``, instead of validating the signer's
  path again and fetching what the certificates point at;
- every failure that would yield less than what was asked (no timestamp, no revocation
  data) raises; a seal is never silently made at a weaker level.

Before anything is written, the document is checked against what it already says: a
licence certified with no changes allowed takes no further seal, and an empty field reserved
for a department (its seed value's certificate constraint) takes only a seal of that
department; the caller may add its own check of the field (the registry's binding).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError, PdfReadError
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.general import UnacceptableSignerError
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.sign.validation.dss import DocumentSecurityStore

from keys.signer import KeySigner
from keys.suites import AlgorithmSuite, signed_bytes_digest
from signing.appearance import SealAppearance, seal_stamp_style
from signing.crosspage import add_cross_page_seal
from signing.errors import (
    BrokenPDFError,
    DocumentCertifiedError,
    EncryptedPDFError,
    FieldReservedError,
    NotAPDFError,
    PlacementError,
    SealUnusableError,
    SigningError,
    TimestampError,
)
from signing.material import ValidationMaterial
from signing.options import (
    Certification,
    FieldHolder,
    Placement,
    ReservedField,
    SealLevel,
    SealOptions,
)

#: Marker of the sealing format, recorded with every seal the service makes.
SEAL_FORMAT = "econtract-seal/1"

# Size of everything in a PAdES CMS besides the certificates, the signature value and the
# timestamp token (attributes, algorithm identifiers, DER overhead), with room to spare.
_CMS_OVERHEAD = 2048
# A timestamp token of our TSA (or a typical external one) with its certificates.
_TIMESTAMP_TOKEN = 6144

_PDF_HEADER_WINDOW = 1024
_CHUNK = 1024 * 1024
_BYTE_RANGE = re.compile(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]")

# Seal certificates name their department as organizationIdentifier NTRCN-<credit code>
# (keys.ca, after ETSI EN 319 412-1's semantics identifier for national registries).
_ORG_ID_PREFIX = "NTRCN-"

_MDP = {
    Certification.NO_CHANGES: fields.MDPPerm.NO_CHANGES,
    Certification.FORM_FILLING: fields.MDPPerm.FILL_FORMS,
}


@dataclass(frozen=True, kw_only=True)
class SealIdentity:
    """The seal that signs: its signer, certificate, chain and look."""

    signer: KeySigner
    """Signs with the seal's key (held in ``keys``), in the seal's algorithm suite."""
    certificate: x509.Certificate
    """The seal's certificate."""
    chain: tuple[x509.Certificate, ...]
    """The issuing CA up to the root."""
    appearance: SealAppearance | None = None
    """How the seal looks on the page; needed for a visible or cross-page seal."""

    @property
    def suite(self) -> AlgorithmSuite:
        """The seal's algorithm suite: its digest and signature mechanism."""
        return self.signer.suite


@dataclass(frozen=True, kw_only=True)
class SealResult:
    """What sealing produced."""

    field_name: str
    """The signature field that holds the seal."""
    level: SealLevel
    """The PAdES level reached (always the level asked for)."""
    signed_digest: str
    """Digest (hex) of the bytes the seal covers, made with the seal suite's digest: the
    seal's ``messageDigest``."""
    signed_at: datetime
    """The signing time written in the signature dictionary."""
    format: str = SEAL_FORMAT
    """The sealing format's version marker."""


@dataclass(frozen=True, kw_only=True)
class FieldToFill:
    """An empty seal field of the document that the seal is about to fill."""

    name: str
    """The field's name."""
    certification_digest: str | None
    """Digest (hex) of the bytes the document's certifying seal covers, made with the digest
    its CMS names, which is how the registry knows that seal; ``None`` when the document is
    not certified."""


#: A check of the field to fill, run before anything is written; it raises to refuse.
FieldCheck = Callable[[FieldToFill], None]


@dataclass(frozen=True, kw_only=True)
class SealingContext:
    """What the engine needs besides the document and the seal."""

    timestamper: TimeStamper | None = None
    """The RFC 3161 client for B-T and above (in-process or over HTTP)."""
    material: ValidationMaterial | None = None
    """Validation data to embed for B-LT and above."""


def seal_pdf(
    source: BinaryIO,
    output: BinaryIO,
    *,
    identity: SealIdentity,
    options: SealOptions,
    context: SealingContext,
    now: datetime | None = None,
    check_field: FieldCheck | None = None,
) -> SealResult:
    """Seal the PDF read from ``source`` into ``output`` (opened ``w+b``; it is read back).

    Streams let a large file be sealed without holding it in memory. Raises a
    :class:`SigningError` subclass, with nothing useful written, when the input, the seal
    or the options are unusable. ``check_field`` is called before anything is written when
    the seal fills an empty field the document already has.
    """
    now = now or datetime.now(UTC)
    _check_identity(identity, now)
    _check_context(options, context)
    _check_header(source)
    writer = _open(source)
    _check_not_locked(writer)
    field_name = options.field_name or f"Seal-{secrets.token_hex(4)}"
    new_field = _prepare_fields(writer, identity, options, field_name)
    if new_field is None and check_field is not None:
        check_field(
            FieldToFill(name=field_name, certification_digest=_certification_digest(source, writer))
        )
    metadata = signers.PdfSignatureMetadata(
        field_name=field_name,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm=identity.suite.digest,
        certify=options.certification in _MDP,
        docmdp_permissions=_MDP.get(options.certification, fields.MDPPerm.FILL_FORMS),
        reason=options.reason,
        location=options.location,
    )
    style = seal_stamp_style(identity.appearance) if identity.appearance else None
    pdf_signer = signers.PdfSigner(
        metadata,
        signer=identity.signer,
        timestamper=context.timestamper if options.level.timestamped else None,
        stamp_style=style,
        new_field_spec=new_field,
    )
    input_end = _size(source)
    with _translated_errors():
        pdf_signer.sign_pdf(
            writer,
            output=output,
            bytes_reserved=_reserve(identity, timestamped=options.level.timestamped),
            existing_fields_only=new_field is None and options.field_name is not None,
        )
        signed_end = _size(output)
        if options.level.long_term:
            assert context.material is not None
            _embed_material(output, context.material)
        if options.level is SealLevel.B_LTA:
            assert context.timestamper is not None
            _add_document_timestamp(output, context.timestamper, identity.suite)
    return SealResult(
        field_name=field_name,
        level=options.level,
        signed_digest=_signed_digest(output, input_end, signed_end, identity.suite),
        signed_at=now,
    )


def seal_pdf_bytes(
    pdf: bytes,
    *,
    identity: SealIdentity,
    options: SealOptions,
    context: SealingContext,
    now: datetime | None = None,
    check_field: FieldCheck | None = None,
) -> tuple[bytes, SealResult]:
    """Seal a PDF held in memory; return the sealed bytes and the result."""
    output = io.BytesIO()
    result = seal_pdf(
        io.BytesIO(pdf),
        output,
        identity=identity,
        options=options,
        context=context,
        now=now,
        check_field=check_field,
    )
    return output.getvalue(), result


# --- checks before anything is written ----------------------------------------------------


def _check_identity(identity: SealIdentity, now: datetime) -> None:
    cert = identity.certificate
    if now < cert.not_valid_before_utc:
        raise SealUnusableError(
            f"The seal's certificate is not valid before {cert.not_valid_before_utc.isoformat()}."
        )
    if now > cert.not_valid_after_utc:
        raise SealUnusableError(
            f"The seal's certificate expired on {cert.not_valid_after_utc.isoformat()}."
        )


def _check_context(options: SealOptions, context: SealingContext) -> None:
    if options.level.timestamped and context.timestamper is None:
        raise TimestampError(f"PAdES {options.level} needs a timestamp authority; none is set.")
    if options.level.long_term and context.material is None:
        raise SigningError(f"PAdES {options.level} needs validation material; none was given.")


def _size(stream: BinaryIO) -> int:
    stream.seek(0, io.SEEK_END)
    return stream.tell()


def _check_header(source: BinaryIO) -> None:
    start = source.tell()
    head = source.read(_PDF_HEADER_WINDOW)
    source.seek(start)
    if b"%PDF-" not in head:
        raise NotAPDFError("The file is not a PDF: it has no %PDF- header.")


def _open(source: BinaryIO) -> IncrementalPdfFileWriter:
    try:
        writer = IncrementalPdfFileWriter(source, strict=True)
    except PdfReadError as exc:
        raise BrokenPDFError(f"The PDF is damaged and cannot be sealed: {exc}.") from None
    except PdfError as exc:
        raise BrokenPDFError(f"The PDF cannot be read: {exc}.") from None
    if writer.prev.encrypted:
        raise EncryptedPDFError("The PDF is encrypted; decrypt it before sealing.")
    return writer


def _check_not_locked(writer: IncrementalPdfFileWriter) -> None:
    """Refuse a document certified with "no changes allowed" (an issued licence)."""
    if _docmdp_permission(writer) == fields.MDPPerm.NO_CHANGES.value:
        raise DocumentCertifiedError(
            "The licence is certified: no further changes are allowed, so it cannot take "
            "another seal."
        )


def _certification_signature(writer: IncrementalPdfFileWriter) -> generic.DictionaryObject | None:
    try:
        perms = writer.root.get("/Perms")
        if perms is None:
            return None
        signature = perms.get_object().get("/DocMDP")
        return None if signature is None else signature.get_object()
    except (PdfError, AttributeError):
        raise BrokenPDFError("The document's certification (/Perms) is unreadable.") from None


def _docmdp_permission(writer: IncrementalPdfFileWriter) -> int | None:
    """The certifying seal's DocMDP permission (1, 2 or 3), or ``None`` when uncertified."""
    signature = _certification_signature(writer)
    if signature is None:
        return None
    try:
        for entry in signature.get("/Reference", ()):
            reference = entry.get_object()
            if reference.get("/TransformMethod") == "/DocMDP":
                params = reference.get("/TransformParams")
                if params is not None:
                    return int(params.get_object().get("/P", 2))
    except (PdfError, AttributeError, TypeError, ValueError):
        raise BrokenPDFError("The document's certification (/Perms) is unreadable.") from None
    # ISO 32000-1 12.8.2.2: without /P the permission is 2 (form filling and signing).
    return 2


def _certification_digest(source: BinaryIO, writer: IncrementalPdfFileWriter) -> str | None:
    """Digest of the bytes the certifying seal covers, as the registry recorded it.

    The certifying seal may have been made in another suite than the seal now added, so the
    digest is the one its own CMS names.
    """
    signature = _certification_signature(writer)
    if signature is None:
        return None
    try:
        first, first_len, second, second_len = (int(v) for v in signature["/ByteRange"])
    except (KeyError, TypeError, ValueError, PdfError):
        raise BrokenPDFError("The certifying seal has no readable /ByteRange.") from None
    digest = hashlib.new(signed_bytes_digest(_cms_digest_algorithm(signature)))
    position = source.tell()
    try:
        for offset, length in ((first, first_len), (second, second_len)):
            source.seek(offset)
            remaining = length
            while remaining > 0:
                chunk = source.read(min(remaining, _CHUNK))
                if not chunk:
                    raise BrokenPDFError("The file is shorter than its certifying seal's range.")
                digest.update(chunk)
                remaining -= len(chunk)
    finally:
        source.seek(position)
    return digest.hexdigest()


def _cms_digest_algorithm(signature: generic.DictionaryObject) -> str:
    """The digest algorithm a signature's CMS names (its SignerInfo's)."""
    try:
        contents = signature["/Contents"]
        signed_data = cms.ContentInfo.load(bytes(contents))["content"]
        return str(signed_data["signer_infos"][0]["digest_algorithm"]["algorithm"].native)
    except (KeyError, IndexError, TypeError, ValueError, PdfError):
        raise BrokenPDFError("The certifying seal's signature (/Contents) is unreadable.") from None


def _prepare_fields(
    writer: IncrementalPdfFileWriter, identity: SealIdentity, options: SealOptions, field_name: str
) -> fields.SigFieldSpec | None:
    """Add reserved fields and the cross-page seal; return the new field's spec.

    ``None`` means the seal fills an empty field that is already in the document.
    """
    page_count = _page_count(writer)
    existing = _empty_signature_fields(writer)
    fills_existing = options.field_name is not None and options.field_name in existing
    if fills_existing and options.placement is not None:
        raise PlacementError(
            f"Field {options.field_name!r} already exists with its own position; "
            "give no placement to fill it."
        )
    if fills_existing:
        _check_holder(existing[field_name], field_name, identity)
    if options.placement is not None and identity.appearance is None:
        raise PlacementError("A visible seal needs the seal's appearance.")
    for reserved in options.reserve_fields:
        if reserved.name in existing:
            raise PlacementError(f"A seal field named {reserved.name!r} already exists.")
        fields.append_signature_field(writer, _reserved_field_spec(writer, reserved, page_count))
    if options.cross_page:
        if identity.appearance is None:
            raise PlacementError("A cross-page seal needs the seal's appearance.")
        if _is_certified(writer):
            raise PlacementError(
                "A cross-page seal changes every page, which the document's certification "
                "forbids; only the certifying seal can carry it."
            )
        add_cross_page_seal(writer, identity.appearance)
    if fills_existing:
        return None
    return _field_spec(writer, field_name, options.placement, page_count)


def _reserved_field_spec(
    writer: IncrementalPdfFileWriter, reserved: ReservedField, page_count: int
) -> fields.SigFieldSpec:
    spec = _field_spec(writer, reserved.name, reserved.placement, page_count)
    if reserved.holder is None:
        return spec
    return dataclasses.replace(
        spec, seed_value_dict=fields.SigSeedValueSpec(cert=_constraints(reserved.holder))
    )


def _constraints(holder: FieldHolder) -> fields.SigCertConstraints:
    """The seed value's certificate constraint that binds a field to its holder.

    Both constraints are mandatory (``/Ff``): a conforming signer (pyHanko, Acrobat) refuses
    any other certificate, and the registry keeps the same binding for this service.
    """
    if not holder.resolved:
        raise SigningError(f"The holder of a reserved field is not resolved: {holder.describe()}.")
    assert holder.department_code is not None
    flags = fields.SigCertConstraintFlags.SUBJECT_DN
    subjects = None
    if holder.seal_certificate is not None:
        flags |= fields.SigCertConstraintFlags.SUBJECT
        subjects = [asn1_x509.Certificate.load(holder.seal_certificate.public_bytes(Encoding.DER))]
    return fields.SigCertConstraints(
        flags=flags,
        subject_dn=asn1_x509.Name.build(
            {"organization_identifier": f"{_ORG_ID_PREFIX}{holder.department_code}"}
        ),
        subjects=subjects,
    )


def _check_holder(
    field_ref: generic.IndirectObject, field_name: str, identity: SealIdentity
) -> None:
    """Refuse to fill a field whose seed value binds it to another department or seal."""
    try:
        seed = field_ref.get_object().get("/SV")  # type: ignore[no-untyped-call]
        if seed is None:
            return
        spec = fields.SigSeedValueSpec.from_pdf_object(seed.get_object())  # type: ignore[no-untyped-call]
        constraints = spec.cert
    except (PdfError, ValueError, KeyError, TypeError):
        raise BrokenPDFError(f"The seed value of field {field_name!r} is unreadable.") from None
    if constraints is None:
        return
    signer = asn1_x509.Certificate.load(identity.certificate.public_bytes(Encoding.DER))
    try:
        constraints.satisfied_by(signer, None)
    except (UnacceptableSignerError, NotImplementedError):
        holder = constraints.subject_dn.human_friendly if constraints.subject_dn else "another seal"
        raise FieldReservedError(
            f"Field {field_name!r} is reserved for another department ({holder}); "
            "this seal may not fill it.",
            field_name=field_name,
        ) from None


def _field_spec(
    writer: IncrementalPdfFileWriter, name: str, placement: Placement | None, page_count: int
) -> fields.SigFieldSpec:
    if placement is None:
        return fields.SigFieldSpec(name)
    if placement.page > page_count:
        raise PlacementError(
            f"Page {placement.page} does not exist; the document has {page_count} page(s)."
        )
    x1, y1, x2, y2 = placement.box()
    left, bottom, right, top = _media_box(writer, placement.page - 1)
    if x1 < left or y1 < bottom or x2 > right or y2 > top:
        raise PlacementError(
            f"A seal of {placement.diameter:g} pt centred at ({placement.x:g}, {placement.y:g}) "
            f"does not fit on page {placement.page} ({right - left:g} x {top - bottom:g} pt)."
        )
    return fields.SigFieldSpec(
        name, on_page=placement.page - 1, box=(int(x1), int(y1), int(x2), int(y2))
    )


def _page_count(writer: IncrementalPdfFileWriter) -> int:
    try:
        return int(writer.root["/Pages"]["/Count"])
    except (KeyError, TypeError, ValueError, PdfError):
        raise BrokenPDFError("The PDF has no readable page tree.") from None


def _media_box(
    writer: IncrementalPdfFileWriter, page_index: int
) -> tuple[float, float, float, float]:
    page, _ = writer.find_page_for_modification(page_index)  # type: ignore[no-untyped-call]
    node = page.get_object()
    while node is not None:
        box = node.get("/CropBox") or node.get("/MediaBox")
        if box is not None:
            x1, y1, x2, y2 = (float(v) for v in box)
            return (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
        parent = node.get("/Parent")
        node = parent.get_object() if parent is not None else None
    raise BrokenPDFError(f"Page {page_index + 1} has no media box.")


def _is_certified(writer: IncrementalPdfFileWriter) -> bool:
    perms = writer.root.get("/Perms")
    return perms is not None and "/DocMDP" in perms.get_object()


def _empty_signature_fields(writer: IncrementalPdfFileWriter) -> dict[str, generic.IndirectObject]:
    try:
        return {
            name: field_ref
            for name, value, field_ref in fields.enumerate_sig_fields(
                writer.prev, filled_status=False
            )
            if value is None
        }
    except PdfError:
        return {}


def _reserve(identity: SealIdentity, *, timestamped: bool) -> int:
    """Hex digits to reserve for the CMS: twice its largest size in bytes."""
    certs = sum(len(c.public_bytes(Encoding.DER)) for c in (identity.certificate, *identity.chain))
    size = certs + identity.signer.handle.algorithm.max_signature_size + _CMS_OVERHEAD
    if timestamped:
        size += _TIMESTAMP_TOKEN
    return 2 * size


# --- after the signature ------------------------------------------------------------------


def _embed_material(output: BinaryIO, material: ValidationMaterial) -> None:
    output.seek(0)
    DocumentSecurityStore.add_dss(
        output,
        None,
        certs=list(material.certificates),
        ocsps=list(material.ocsp_responses),
        crls=list(material.crls),
        force_write=True,
    )


def _add_document_timestamp(
    output: BinaryIO, timestamper: TimeStamper, suite: AlgorithmSuite
) -> None:
    # The document timestamp's imprint uses the seal's digest: one digest per document.
    output.seek(0)
    writer = IncrementalPdfFileWriter(output, strict=True)
    signers.PdfTimeStamper(
        timestamper, field_name=f"DocTimeStamp-{secrets.token_hex(4)}"
    ).timestamp_pdf(
        writer,
        suite.digest,
        bytes_reserved=2 * (_TIMESTAMP_TOKEN + _CMS_OVERHEAD),
        in_place=True,
    )


def _signed_digest(output: BinaryIO, start: int, end: int, suite: AlgorithmSuite) -> str:
    """The suite's digest of the bytes the new signature covers, read from its ``/ByteRange``.

    The new signature is the only one written between ``start`` and ``end`` (the revision
    pyHanko just appended), so its ``/ByteRange`` is found there; reading it from the bytes is
    far cheaper than parsing the document again for the CMS's ``messageDigest``, which it
    equals.
    """
    output.seek(start)
    revision = output.read(end - start)
    match = _BYTE_RANGE.search(revision)
    if match is None:
        raise SigningError("The sealed revision has no /ByteRange.")
    first, first_len, second, second_len = (int(v) for v in match.groups())
    digest = suite.new_hash()
    for offset, length in ((first, first_len), (second, second_len)):
        output.seek(offset)
        remaining = length
        while remaining > 0:
            chunk = output.read(min(remaining, _CHUNK))
            if not chunk:
                raise SigningError("The sealed file is shorter than its /ByteRange.")
            digest.update(chunk)
            remaining -= len(chunk)
    return digest.hexdigest()


@contextmanager
def _translated_errors() -> Iterator[None]:
    """Turn pyHanko's and the network's exceptions into this package's typed errors."""
    try:
        yield
    except SigningError:
        raise
    except TimestampRequestError as exc:
        raise TimestampError(f"The timestamp authority failed: {exc}.") from None
    except PyHankoSigningError as exc:
        message = str(exc)
        if "forbids" in message or "DocMDP" in message or "certif" in message.lower():
            raise SealUnusableError(
                f"The document's certification does not allow another seal: {message}."
            ) from None
        raise SigningError(f"Sealing failed: {message}.") from None
    except PdfError as exc:
        raise BrokenPDFError(f"The PDF cannot be sealed: {exc}.") from None
    except OSError as exc:
        # requests' and aiohttp's connection errors derive from OSError.
        raise TimestampError(f"The timestamp authority is unreachable: {exc}.") from None
