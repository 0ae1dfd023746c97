"""The validation revision of a B-LT seal: the document security store after the signature.

The DSS holds the same certificates, CRLs and OCSP responses for every document sealed while
the validation material is fresh, so their PDF streams are serialised once per
:class:`~signing.material.ValidationMaterial` (:class:`PreparedDSS`). What differs per
document is only where the revision starts, its object numbers, the catalog that points to the
DSS and the cross-reference section; the writer that just signed the document knows all of
them, so the revision is appended without parsing the signed file again.

The objects are those pyHanko's ``DocumentSecurityStore.supply_dss_in_writer`` writes for the
same material (one stream per certificate, OCSP response and CRL, the certificates an OCSP
response carries, a DSS dictionary without VRI entries, the catalog updated to name it), in
its order. A document that already has a DSS (sealed before at B-LT) is left to pyHanko,
which merges the new material into the existing store.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.xref import XRefStream, write_xref_table
from pyhanko.sign.validation.dss import enumerate_ocsp_certs

from signing.errors import SigningError

# The end of a file pyHanko wrote: the offset of its last cross-reference section.
_STARTXREF = re.compile(rb"startxref\s+(\d+)\s+%%EOF\s*$")
# Enough of the file's end to hold "startxref", the offset and "%%EOF".
_TAIL = 64


@dataclass(frozen=True, kw_only=True)
class PreparedDSS:
    """The DSS's streams of one validation material, serialised once (``<<...>>stream...``)."""

    certificates: tuple[bytes, ...]
    """One stream per certificate, those the OCSP responses carry last (pyHanko's order)."""
    ocsp_responses: tuple[bytes, ...]
    """One stream per OCSP response."""
    crls: tuple[bytes, ...]
    """One stream per CRL."""

    @classmethod
    def build(
        cls,
        *,
        certificates: Iterable[asn1_x509.Certificate],
        ocsp_responses: Iterable[asn1_ocsp.OCSPResponse],
        crls: Iterable[asn1_crl.CertificateList],
    ) -> PreparedDSS:
        """Serialise each object once; a certificate or a response named twice is kept once."""
        responses = list(ocsp_responses)
        seen: set[object] = set()
        certs: list[bytes] = []
        carried = (c for r in responses for c in enumerate_ocsp_certs(r))  # type: ignore[no-untyped-call]
        for cert in (*certificates, *carried):
            # pyHanko's DSS tells certificates apart by issuer and serial number.
            if cert.issuer_serial not in seen:
                seen.add(cert.issuer_serial)
                certs.append(_stream(cert.dump()))
        return cls(
            certificates=tuple(certs),
            ocsp_responses=_unique_streams(r.dump() for r in responses),
            crls=_unique_streams(c.dump() for c in crls),
        )


def _unique_streams(ders: Iterable[bytes]) -> tuple[bytes, ...]:
    return tuple(_stream(der) for der in dict.fromkeys(ders))


def _stream(data: bytes) -> bytes:
    buffer = io.BytesIO()
    generic.StreamObject(stream_data=data).write_to_stream(buffer, None)
    return buffer.getvalue()


def append_validation_revision(
    output: BinaryIO,
    writer: IncrementalPdfFileWriter,
    prepared: PreparedDSS,
) -> bool:
    """Append the DSS revision to ``output``, which ``writer`` has just signed.

    Returns ``False``, writing nothing, when the document already has a DSS (or is
    encrypted): the caller then lets pyHanko merge the material into it.
    """
    root = writer.root
    # Encrypted documents are refused before signing; should one come this far, pyHanko's
    # writer (which encrypts what it writes) is the one to update it.
    if "/DSS" in root or writer.security_handler is not None:
        return False
    output.seek(-min(_TAIL, output.seek(0, io.SEEK_END)), io.SEEK_END)
    match = _STARTXREF.search(output.read())
    if match is None:
        raise SigningError("The signed revision does not end with a cross-reference offset.")
    previous_xref = int(match.group(1))
    start = output.seek(0, io.SEEK_END)

    if writer.stream_xrefs:
        # The signed revision's cross-reference stream took the number after the writer's
        # last object (pyHanko gives it no number of its own), so it is skipped here.
        writer.allocate_placeholder()
    numbered = [
        (key, writer.allocate_placeholder().idnum, body)
        for key, bodies in (
            ("/Certs", prepared.certificates),
            ("/OCSPs", prepared.ocsp_responses),
            ("/CRLs", prepared.crls),
        )
        for body in bodies
    ]
    dss_number = writer.allocate_placeholder().idnum
    catalog = generic.DictionaryObject(root)  # type: ignore[no-untyped-call]  # untyped upstream
    catalog[generic.NameObject("/DSS")] = generic.IndirectObject(dss_number, 0, writer)  # type: ignore[no-untyped-call]

    buffer = io.BytesIO()
    positions: dict[tuple[int, int], int] = {}  # keyed (generation, number), as pyHanko's

    def put(number: int, generation: int, body: bytes) -> None:
        positions[generation, number] = start + buffer.tell()
        buffer.write(b"%d %d obj\n%s\nendobj\n" % (number, generation, body))

    root_ref = writer.root_ref
    put(root_ref.idnum, root_ref.generation, _serialised(catalog))
    for _, number, body in numbered:
        put(number, 0, body)
    put(dss_number, 0, _dss_dictionary(numbered))
    _write_cross_reference(buffer, start, positions, _trailer(writer, previous_xref), writer)
    output.seek(start)
    output.write(buffer.getvalue())
    return True


def _dss_dictionary(numbered: list[tuple[str, int, bytes]]) -> bytes:
    """The DSS dictionary naming each stream (``/Certs`` always, the others when present)."""
    entries = []
    for key in ("/Certs", "/OCSPs", "/CRLs"):
        refs = " ".join(f"{number} 0 R" for kind, number, _ in numbered if kind == key)
        if refs or key == "/Certs":
            entries.append(f"{key} [ {refs} ]")
    return ("<<\n" + "\n".join(entries) + "\n>>").encode("ascii")


def _serialised(obj: generic.PdfObject) -> bytes:
    buffer = io.BytesIO()
    obj.write_to_stream(buffer, None)
    return buffer.getvalue()


def _write_cross_reference(
    buffer: io.BytesIO,
    start: int,
    positions: dict[tuple[int, int], int],
    trailer: generic.DictionaryObject,
    writer: IncrementalPdfFileWriter,
) -> None:
    """The revision's cross-reference section and trailer, in the kind the document uses."""
    xref_location = start + buffer.tell()
    if writer.stream_xrefs:
        # A cross-reference stream lists itself, so it takes the next number.
        xref_number = writer.allocate_placeholder().idnum
        entries: dict[tuple[int, int], int | tuple[int, int]] = dict(positions)
        entries[0, xref_number] = xref_location
        xref_stream = XRefStream(entries)
        xref_stream.compress()  # type: ignore[no-untyped-call]  # untyped upstream
        xref_stream.update(trailer)
        xref_stream[generic.NameObject("/Size")] = _number(xref_number + 1)
        buffer.write(b"%d 0 obj\n%s\nendobj\n" % (xref_number, _serialised(xref_stream)))
    else:
        write_xref_table(buffer, positions)
        trailer[generic.NameObject("/Size")] = _number(max(n for _, n in positions) + 1)
        buffer.write(b"trailer\n" + _serialised(trailer))
    buffer.write(b"\nstartxref\n%d\n%%%%EOF\n" % xref_location)


def _number(value: int) -> generic.NumberObject:
    return generic.NumberObject(value)  # type: ignore[no-untyped-call]  # untyped upstream


def _trailer(writer: IncrementalPdfFileWriter, previous_xref: int) -> generic.DictionaryObject:
    """The signed revision's trailer, pointing back to it, with a new second file identifier.

    ISO 32000-1 14.4: the first identifier stays the document's, the second changes with
    every revision (as pyHanko's writer does for each revision it writes).
    """
    trailer = writer.trailer_view
    trailer[generic.NameObject("/Prev")] = _number(previous_xref)
    first, _ = trailer["/ID"]
    trailer[generic.NameObject("/ID")] = generic.ArrayObject(
        [first, generic.ByteStringObject(os.urandom(16))]
    )
    for key in ("/Size", "/XRefStm"):
        trailer.pop(key, None)
    return trailer
