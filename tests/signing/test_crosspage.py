"""The cross-page seal: a slice on the right edge of every page, in the signed revision.

Reference images live in ``tests/signing/golden/``; see ``test_appearance`` for rewriting them.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import SignatureCoverageLevel, validate_pdf_signature
from pyhanko.sign.validation.status import PdfSignatureStatus
from pyhanko_certvalidator import ValidationContext
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from keys.signer import KeySigner, to_asn1
from signing.appearance import seal_stamp_style
from signing.crosspage import add_cross_page_seal
from signing.errors import PlacementError
from tests.signing.test_appearance import (
    APPEARANCE,
    assert_matches_golden,
    embedded_fonts,
    make_pdf,
    red_fraction,
    render,
    write,
)
from tests.testpki import TestPKI, build_test_pki

DIAMETER = 119.0
PX = 100 / 72
"""Pixels per point at the 100 dpi of :func:`render`."""


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return build_test_pki()


@pytest.fixture(scope="module")
def signer(pki: TestPKI) -> KeySigner:
    handle, cert = pki.make_seal()
    return KeySigner.for_handle(handle, cert, pki.chain)


def seal_across(
    pdf: bytes, signer: KeySigner, *, visible_on_last_page: bool = False, **placement: float
) -> bytes:
    """Add a cross-page seal and sign it, in one revision."""
    w = IncrementalPdfFileWriter(io.BytesIO(pdf))
    add_cross_page_seal(w, APPEARANCE, diameter=DIAMETER, **placement)
    count = int(w.root["/Pages"]["/Count"])
    spec = fields.SigFieldSpec(
        "Seal1",
        on_page=count - 1,
        box=(400, 100, 519, 219) if visible_on_last_page else None,
    )
    meta = signers.PdfSignatureMetadata(
        field_name="Seal1", subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256"
    )
    pdf_signer = signers.PdfSigner(
        meta, signer, stamp_style=seal_stamp_style(APPEARANCE), new_field_spec=spec
    )
    out = io.BytesIO()
    pdf_signer.sign_pdf(w, output=out)
    return out.getvalue()


def validate(pdf: bytes, pki: TestPKI) -> PdfSignatureStatus:
    [sig] = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    return validate_pdf_signature(
        sig, ValidationContext(trust_roots=[to_asn1(pki.root.certificate)])
    )


def page_content(pdf: bytes, index: int) -> bytes:
    page = PdfFileReader(io.BytesIO(pdf)).root["/Pages"]["/Kids"][index].get_object()
    contents = page["/Contents"]
    streams = contents if isinstance(contents, generic.ArrayObject) else [contents]
    return b"\n".join(s.get_object().data for s in streams)


def right_edge(png: bytes, *, width_pt: float, top_pt: float) -> tuple[int, int, int, int]:
    """The pixel rectangle where a slice ``width_pt`` wide sits at the right edge, its top
    ``top_pt`` below the top of the displayed page (inset by two pixels)."""
    with Image.open(io.BytesIO(png)) as image:
        w = image.width
    top = round(top_pt * PX)
    return (w - round(width_pt * PX) + 2, top + 2, w - 2, top + round(DIAMETER * PX) - 2)


@pytest.fixture(scope="module")
def sealed(signer: KeySigner) -> bytes:
    return seal_across(make_pdf(pages=4), signer)


def test_slices_are_in_the_signed_revision(sealed: bytes, pki: TestPKI) -> None:
    status = validate(sealed, pki)
    assert status.intact
    assert status.valid
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    assert status.modification_level == ModificationLevel.NONE
    assert PdfFileReader(io.BytesIO(sealed)).xrefs.total_revisions == 2
    for index in range(4):
        assert b"/QiFeng" not in page_content(make_pdf(pages=4), index)
        assert b"re W n" in page_content(sealed, index), f"page {index + 1} has no slice"


def test_page_two_shows_red_at_its_right_edge(sealed: bytes) -> None:
    png = render(sealed, 2)
    slice_width = DIAMETER / 4
    top = (A4[1] - DIAMETER) / 2
    assert red_fraction(png, right_edge(png, width_pt=slice_width, top_pt=top)) > 0.05
    with Image.open(io.BytesIO(png)) as image:
        rest = (0, 0, image.width - round(slice_width * PX) - 2, image.height)
    assert red_fraction(png, rest) == 0


def test_slices_put_together_make_the_seal(sealed: bytes) -> None:
    slice_px = DIAMETER / 4 * PX
    top = round((A4[1] - DIAMETER) / 2 * PX)
    strips = []
    for page in range(1, 5):
        with Image.open(io.BytesIO(render(sealed, page))) as image:
            strips.append(
                image.convert("RGB").crop(
                    (image.width - round(slice_px), top, image.width, top + round(DIAMETER * PX))
                )
            )
    whole = Image.new("RGB", (sum(s.width for s in strips), strips[0].height), "white")
    x = 0
    for strip in strips:
        whole.paste(strip, (x, 0))
        x += strip.width
    out = io.BytesIO()
    whole.save(out, format="PNG")
    assert_matches_golden(out.getvalue(), "cross-page-assembled.png")


def test_removing_a_page_afterwards_is_reported(sealed: bytes, pki: TestPKI) -> None:
    w = IncrementalPdfFileWriter(io.BytesIO(sealed))
    pages_ref = w.root.raw_get("/Pages")
    pages = pages_ref.get_object()
    kids = pages["/Kids"]
    del kids[1]
    pages[pdf_name("/Count")] = generic.NumberObject(3)  # type: ignore[no-untyped-call]
    w.mark_update(pages_ref)
    w.update_container(kids)
    status = validate(write(w), pki)
    assert status.intact  # the signed bytes are untouched ...
    assert status.coverage == SignatureCoverageLevel.ENTIRE_REVISION
    assert status.modification_level is not ModificationLevel.NONE  # ... but a change shows
    assert status.modification_level is not ModificationLevel.LTA_UPDATES


def test_cross_page_and_visible_seal_share_one_font(signer: KeySigner, pki: TestPKI) -> None:
    pdf = seal_across(make_pdf(pages=3), signer, visible_on_last_page=True)
    assert len(embedded_fonts(pdf)) == 1
    status = validate(pdf, pki)
    assert status.intact
    assert status.valid
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE


def test_one_page_document_is_refused(signer: KeySigner) -> None:
    w = IncrementalPdfFileWriter(io.BytesIO(make_pdf(pages=1)))
    with pytest.raises(PlacementError, match="two or more pages"):
        add_cross_page_seal(w, APPEARANCE)


def test_seal_that_does_not_fit_is_refused() -> None:
    w = IncrementalPdfFileWriter(io.BytesIO(make_pdf(pages=2)))
    with pytest.raises(PlacementError, match="does not fit on page 1"):
        add_cross_page_seal(w, APPEARANCE, y=A4[1] - 10)


def test_diameter_is_checked() -> None:
    w = IncrementalPdfFileWriter(io.BytesIO(make_pdf(pages=2)))
    with pytest.raises(PlacementError, match="20 to 400 points"):
        add_cross_page_seal(w, APPEARANCE, diameter=1000)


def test_refusal_leaves_the_document_unchanged() -> None:
    pdf = with_page_attribute(make_pdf(pages=3), 2, "/Rotate", generic.NumberObject(45))  # type: ignore[no-untyped-call]
    w = IncrementalPdfFileWriter(io.BytesIO(pdf))
    with pytest.raises(PlacementError, match="Page 3 has /Rotate 45"):
        add_cross_page_seal(w, APPEARANCE)
    assert b"/QiFeng" not in write(w)


def with_page_attribute(pdf: bytes, index: int, key: str, value: generic.PdfObject) -> bytes:
    """``pdf`` with ``key`` set on page ``index``, in an incremental update."""
    w = IncrementalPdfFileWriter(io.BytesIO(pdf))
    page_ref, _ = w.find_page_for_modification(index)  # type: ignore[no-untyped-call]
    page_ref.get_object()[pdf_name(key)] = value
    w.mark_update(page_ref)
    return write(w)


def rotated_cropped_pdf() -> bytes:
    """Four pages turned 0, 90, 180 and 270 degrees; the second also cropped; the media box
    inherited from the page tree."""
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=A4)
    for n, rotate in enumerate((0, 90, 180, 270)):
        if n == 1:
            c.setCropBox((50, 60, A4[0] - 40, A4[1] - 30))
        c.setPageRotation(rotate)
        c.drawString(72, 760, f"page {n + 1}, turned {rotate} degrees")
        c.showPage()
    c.save()
    w = IncrementalPdfFileWriter(io.BytesIO(out.getvalue()))
    pages_ref = w.root.raw_get("/Pages")
    pages = pages_ref.get_object()
    pages[pdf_name("/MediaBox")] = generic.ArrayObject(
        [generic.NumberObject(v) for v in (0, 0, 595, 842)]  # type: ignore[no-untyped-call]
    )
    w.mark_update(pages_ref)
    for index in range(4):
        page_ref, _ = w.find_page_for_modification(index)  # type: ignore[no-untyped-call]
        del page_ref.get_object()["/MediaBox"]
        w.mark_update(page_ref)
    return write(w)


@pytest.mark.parametrize("page", [1, 2, 3, 4], ids=["0", "90-cropped", "180", "270"])
def test_slice_is_on_the_right_of_the_displayed_page(signer: KeySigner, page: int) -> None:
    pdf = seal_across(rotated_cropped_pdf(), signer)
    png = render(pdf, page)
    with Image.open(io.BytesIO(png)) as image:
        height_pt = image.height / PX
    top = (height_pt - DIAMETER) / 2
    assert red_fraction(png, right_edge(png, width_pt=DIAMETER / 4, top_pt=top)) > 0.05
    with Image.open(io.BytesIO(png)) as image:
        rest = (0, 0, image.width - round(DIAMETER / 4 * PX) - 2, image.height)
    assert red_fraction(png, rest) == 0


def test_rotated_slices_are_upright(signer: KeySigner) -> None:
    # Page 4 (turned 270°) shows the last strip: its red must match page 1's last strip
    # rendered from an unrotated copy, which it would not if the slice were turned.
    pdf = seal_across(rotated_cropped_pdf(), signer)
    plain = seal_across(make_pdf(pages=4, size=(595, 842)), signer)
    strips = []
    for document in (pdf, plain):
        png = render(document, 4)
        with Image.open(io.BytesIO(png)) as image:
            h, w = image.height, image.width
            top = round((h - DIAMETER * PX) / 2)
            strip = image.convert("L").crop((w - 40, top, w, top + round(DIAMETER * PX)))
            strips.append(strip.resize((8, 24)).tobytes())
    difference = sum(abs(a - b) for a, b in zip(*strips, strict=True)) / len(strips[0])
    assert difference < 20
