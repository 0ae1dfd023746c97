"""Annotated copies (加注件): a licence's pages under a marking, the licence attached whole.

:func:`annotated_pdf` builds the unsealed copy in three steps:

1. every page of the original is imported as a form XObject (its content, and the
   appearance of each visible widget, such as the issuer's seal picture), and drawn on a
   new page of the same size;
2. the marking (one line in Chinese, one in English) is drawn over every page from a small
   overlay that ReportLab sets in a subset of the project's font; the overlay's form XObject
   also carries the marking's text under :data:`MARKING_KEY`, so that a verifier can
   compare the words drawn with the statement without extracting text from glyphs;
3. the original file is attached byte for byte (``/EmbeddedFiles`` and the catalogue's
   ``/AF``, relationship ``/Source``), and the statement, a JSON document saying for whom,
   for what and until when, beside it (relationship ``/Data``).

The copy is sealed afterwards, by the caller, so all of it lies in the signed revision: a
statement or attachment changed later is a change after sealing.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.embed import EmbeddedFileObject, EmbeddedFileParams, FileSpec, embed_file
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

from signing.errors import BrokenPDFError
from signing.fonts import subset_font

# pyHanko's writer and page objects are untyped upstream; the calls below say so one by one.

MARKING_KEY = "/EcMarking"
"""Key of the marking overlay's form XObject that holds the marking's text (both lines,
joined by a line feed)."""
STATEMENT_NAME = "econtract-annotation.json"
"""The attachment name of the annotation statement."""
STATEMENT_FORMAT = "econtract-annotated-copy/1"
"""The statement's version marker (its ``format`` member)."""

_FONT_NAME = "EContractMarking"
_MARK_SIZE = 9.0
_MARGIN = 14.0
# Widget flag 2 (ISO 32000-1, 12.5.3): hidden, not drawn.
_HIDDEN = 2


@dataclass(frozen=True, kw_only=True)
class CopyContent:
    """What an annotated copy is made of."""

    original: bytes
    """The original licence's PDF, byte for byte."""
    original_name: str
    """The attachment's file name (``{identifier}.pdf``)."""
    original_sha256: str
    """The original's SHA-256 (hex), stated in the attachment's description."""
    marking_zh: str
    """The marking in Chinese: 仅供…办理…使用，…前有效."""
    marking_en: str
    """The marking in English."""
    statement: bytes
    """The annotation statement, as canonical JSON."""

    @property
    def marking(self) -> str:
        """Both lines of the marking, as :data:`MARKING_KEY` holds them."""
        return f"{self.marking_zh}\n{self.marking_en}"


def annotated_pdf(content: CopyContent) -> bytes:
    """The unsealed annotated copy; see the module.

    Raises :class:`~signing.errors.BrokenPDFError` for an original that cannot be read and
    :class:`~signing.fonts.MissingGlyphsError` for a marking the font cannot draw.
    """
    try:
        reader = PdfFileReader(io.BytesIO(content.original), strict=False)
        boxes = [_media_box(reader, index) for index in range(int(reader.root["/Pages"]["/Count"]))]
    except (PdfError, KeyError, ValueError, TypeError) as exc:
        raise BrokenPDFError(f"The original cannot be read: {exc}.") from None
    overlay = PdfFileReader(io.BytesIO(_overlay(content, boxes)), strict=False)
    writer = PdfFileWriter()  # type: ignore[no-untyped-call]
    for index, box in enumerate(boxes):
        page = writer.import_page_as_xobject(reader, page_ix=index)
        marking = writer.import_page_as_xobject(overlay, page_ix=index)
        marking.get_object()[pdf_name(MARKING_KEY)] = generic.TextStringObject(content.marking)
        xobjects = {pdf_name("/EcPage"): page, pdf_name("/EcMark"): marking}
        ops = ["q /EcPage Do Q"]
        for number, (ref, matrix) in enumerate(_widgets(writer, reader, index)):
            name = f"/EcWidget{number}"
            xobjects[pdf_name(name)] = ref
            ops.append(f"q {matrix} cm {name} Do Q")
        # The overlay's own origin is (0, 0); a page whose box starts elsewhere moves it there.
        ops.append(f"q 1 0 0 1 {box[0]:.3f} {box[1]:.3f} cm /EcMark Do Q")
        stream = writer.add_object(generic.StreamObject(stream_data="\n".join(ops).encode()))
        resources = generic.DictionaryObject(  # type: ignore[no-untyped-call]
            {pdf_name("/XObject"): generic.DictionaryObject(xobjects)},  # type: ignore[no-untyped-call]
        )
        page_object = PageObject(contents=stream, media_box=list(box), resources=resources)  # type: ignore[no-untyped-call]
        writer.insert_page(page_object)  # type: ignore[no-untyped-call]
    _attach(
        writer,
        name=content.original_name,
        data=content.original,
        mime_type="application/pdf",
        description=f"原件 Original licence, SHA-256 {content.original_sha256}",
        relationship="/Source",
    )
    _attach(
        writer,
        name=STATEMENT_NAME,
        data=content.statement,
        mime_type="application/json",
        description="加注声明 Annotation statement",
        relationship="/Data",
    )
    out = io.BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    return out.getvalue()


def _media_box(reader: PdfFileReader, index: int) -> tuple[float, float, float, float]:
    page = reader.find_page_for_modification(index)[0].get_object()  # type: ignore[no-untyped-call]
    while "/MediaBox" not in page and "/Parent" in page:
        page = page["/Parent"]
    x1, y1, x2, y2 = (float(v) for v in page["/MediaBox"])
    return (x1, y1, x2, y2)


def _widgets(
    writer: PdfFileWriter, reader: PdfFileReader, index: int
) -> list[tuple[generic.IndirectObject, str]]:
    """The visible widgets' normal appearances of a page, imported, with the matrix that
    maps each appearance's bounding box onto its rectangle (a seal picture stays visible)."""
    page = reader.find_page_for_modification(index)[0].get_object()  # type: ignore[no-untyped-call]
    out: list[tuple[generic.IndirectObject, str]] = []
    for annot_ref in page.get("/Annots", ()):
        annot = annot_ref.get_object()
        if int(annot.get("/F", 0)) & _HIDDEN:
            continue
        appearance = annot.get("/AP", {}).get("/N")
        if not isinstance(appearance, generic.StreamObject):
            continue
        x1, y1, x2, y2 = (float(v) for v in annot["/Rect"])
        bx1, by1, bx2, by2 = (float(v) for v in appearance.get("/BBox", (0, 0, 1, 1)))
        if bx2 == bx1 or by2 == by1 or x2 == x1 or y2 == y1:
            continue
        sx, sy = (x2 - x1) / (bx2 - bx1), (y2 - y1) / (by2 - by1)
        ref = writer.add_object(writer.import_object(appearance))
        out.append((ref, f"{sx:.5f} 0 0 {sy:.5f} {x1 - bx1 * sx:.3f} {y1 - by1 * sy:.3f}"))
    return out


def _overlay(content: CopyContent, boxes: list[tuple[float, float, float, float]]) -> bytes:
    """One page per page of the original, each with the marking along its bottom edge and
    across its middle."""
    # ReportLab is imported here: only a process that makes copies pays for it.
    from reportlab.lib.colors import Color  # noqa: PLC0415
    from reportlab.pdfbase.pdfmetrics import registerFont, stringWidth  # noqa: PLC0415
    from reportlab.pdfbase.ttfonts import TTFont  # noqa: PLC0415
    from reportlab.pdfgen.canvas import Canvas  # noqa: PLC0415

    font = subset_font("".join(sorted(set(content.marking_zh + content.marking_en))))
    registerFont(TTFont(_FONT_NAME, io.BytesIO(font)))
    out = io.BytesIO()
    canvas = Canvas(out, pageCompression=1, invariant=1)
    ink = Color(0.75, 0.05, 0.05, alpha=0.9)
    faint = Color(0.75, 0.05, 0.05, alpha=0.18)
    lines = (content.marking_zh, content.marking_en)
    for x1, y1, x2, y2 in boxes:
        width, height = x2 - x1, y2 - y1
        canvas.setPageSize((width, height))
        widest = max(stringWidth(line, _FONT_NAME, 1) for line in lines)
        size = min(_MARK_SIZE, (width - 2 * _MARGIN) / widest)
        canvas.setFillColor(ink)
        canvas.setFont(_FONT_NAME, size)
        canvas.drawCentredString(width / 2, _MARGIN + size * 1.3, content.marking_zh)
        canvas.drawCentredString(width / 2, _MARGIN, content.marking_en)
        # Across the middle, faint: a cut-off bottom edge does not remove the marking.
        canvas.saveState()
        canvas.setFillColor(faint)
        canvas.translate(width / 2, height / 2)
        canvas.rotate(30)
        diagonal = min(width, height) * 1.1
        big = max(8.0, min(28.0, diagonal / stringWidth(content.marking_zh, _FONT_NAME, 1)))
        canvas.setFont(_FONT_NAME, big)
        canvas.drawCentredString(0, 0, content.marking_zh)
        canvas.restoreState()
        canvas.showPage()
    canvas.save()
    return out.getvalue()


def _attach(
    writer: PdfFileWriter,
    *,
    name: str,
    data: bytes,
    mime_type: str,
    description: str,
    relationship: str,
) -> None:
    embedded = EmbeddedFileObject.from_file_data(
        writer, data, mime_type=mime_type, params=EmbeddedFileParams()
    )
    embed_file(
        writer,
        FileSpec(
            file_spec_string=name,
            file_name=name,
            embedded_data=embedded,
            description=description,
            af_relationship=pdf_name(relationship),
        ),
    )
