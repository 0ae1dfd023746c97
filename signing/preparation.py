"""Before a seal is written: what the document already says, and the fields the seal adds.

The sealer (``signing.sealer``) reads the document here first: that it is a PDF, readable
and not encrypted; whether a certifying seal locked it, and the digest by which the registry
knows that seal; and, for the new seal, the empty field it fills (refused when the field's
seed value reserves it for another department or seal) or the field it adds, with any
fields reserved for later seals and the cross-page seal. Nothing here signs.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import BinaryIO

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError, PdfReadError
from pyhanko.sign import fields
from pyhanko.sign.general import UnacceptableSignerError

from keys.suites import signed_bytes_digest
from signing.appearance import SealAppearance
from signing.crosspage import add_cross_page_seal
from signing.errors import (
    BrokenPDFError,
    DocumentCertifiedError,
    EncryptedPDFError,
    FieldReservedError,
    NotAPDFError,
    PlacementError,
    SigningError,
)
from signing.options import FieldHolder, Placement, ReservedField, SealOptions

#: Bytes read at a time when digesting a signature's byte range.
READ_CHUNK = 1024 * 1024

_PDF_HEADER_WINDOW = 1024

# Seal certificates name their department as organizationIdentifier NTRCN-<credit code>
# (keys.ca, after ETSI EN 319 412-1's semantics identifier for national registries).
_ORG_ID_PREFIX = "NTRCN-"


def check_header(source: BinaryIO) -> None:
    """Refuse a file with no ``%PDF-`` header near its start (``NotAPDFError``)."""
    start = source.tell()
    head = source.read(_PDF_HEADER_WINDOW)
    source.seek(start)
    if b"%PDF-" not in head:
        raise NotAPDFError("The file is not a PDF: it has no %PDF- header.")


def open_document(
    source: BinaryIO, writer_class: type[IncrementalPdfFileWriter] = IncrementalPdfFileWriter
) -> IncrementalPdfFileWriter:
    """An incremental writer (of ``writer_class``) on ``source``; refuses a damaged or
    encrypted PDF."""
    try:
        writer = writer_class(source, strict=True)
    except PdfReadError as exc:
        raise BrokenPDFError(f"The PDF is damaged and cannot be sealed: {exc}.") from None
    except PdfError as exc:
        raise BrokenPDFError(f"The PDF cannot be read: {exc}.") from None
    if writer.prev.encrypted:
        raise EncryptedPDFError("The PDF is encrypted; decrypt it before sealing.")
    return writer


def check_not_locked(writer: IncrementalPdfFileWriter) -> None:
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


def certification_digest(source: BinaryIO, writer: IncrementalPdfFileWriter) -> str | None:
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
                chunk = source.read(min(remaining, READ_CHUNK))
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


def prepare_fields(
    writer: IncrementalPdfFileWriter,
    options: SealOptions,
    field_name: str,
    *,
    certificate: x509.Certificate,
    appearance: SealAppearance | None,
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
        _check_holder(existing[field_name], field_name, certificate)
    if options.placement is not None and appearance is None:
        raise PlacementError("A visible seal needs the seal's appearance.")
    for reserved in options.reserve_fields:
        if reserved.name in existing:
            raise PlacementError(f"A seal field named {reserved.name!r} already exists.")
        fields.append_signature_field(writer, _reserved_field_spec(writer, reserved, page_count))
    if options.cross_page:
        if appearance is None:
            raise PlacementError("A cross-page seal needs the seal's appearance.")
        if _is_certified(writer):
            raise PlacementError(
                "A cross-page seal changes every page, which the document's certification "
                "forbids; only the certifying seal can carry it."
            )
        add_cross_page_seal(writer, appearance)
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
    field_ref: generic.IndirectObject, field_name: str, certificate: x509.Certificate
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
    signer = asn1_x509.Certificate.load(certificate.public_bytes(Encoding.DER))
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
