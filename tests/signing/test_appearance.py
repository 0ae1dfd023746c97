"""The round seal's look and its font: drawn as expected, every character a real glyph.

Rendered pages are compared with reference images in ``tests/signing/golden/``. After an
intended change of the drawing, rewrite the references and look at them before committing::

    ECONTRACT_UPDATE_GOLDEN=1 .venv/bin/pytest tests/signing/test_appearance.py \
        tests/signing/test_crosspage.py

(the tests that wrote a reference are then skipped, so a rewrite never passes silently).
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fontTools.ttLib import TTFont
from PIL import Image, ImageChops, ImageStat
from pyhanko.pdf_utils import layout
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import SignatureCoverageLevel, validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase.pdfmetrics import registerFont
from reportlab.pdfbase.ttfonts import TTFont as ReportLabTTFont
from reportlab.pdfgen import canvas

from keys.signer import KeySigner, to_asn1
from signing import appearance as appearance_module
from signing import fonts
from signing.appearance import SealAppearance, SealStamp, seal_stamp_style
from signing.errors import SigningError
from signing.fonts import FontMissingError, MissingGlyphsError, check_font, subset_font
from tests.testpki import TestPKI, build_test_pki

GOLDEN = Path(__file__).parent / "golden"
UPDATE_GOLDEN = os.environ.get("ECONTRACT_UPDATE_GOLDEN") == "1"
MAX_MEAN_DIFFERENCE = 1.0
"""Largest mean absolute difference (0 to 255, over all channels) between a rendering and its
reference: anti-aliasing of another poppler version stays well below it; a seal with one
character replaced by a space is above it."""
MAX_CHANGED_PIXELS = 0.0005
"""Largest share of pixels that may differ from the reference by more than 96 levels: one CJK
character replaced by another (about 30 pixels of a 175-pixel seal) is above it. A single digit
of the code is too small to tell at 100 dpi; the text extraction tests cover it."""

APPEARANCE = SealAppearance(
    department_name="杭州市市场监督管理局", seal_name="证照专用章", code="3301000012345"
)
LONG_APPEARANCE = SealAppearance(
    department_name="中华人民共和国浙江省杭州市西湖区市场监督管理局行政审批服务处",
    seal_name="行政审批专用章",
    code="9133010052CL12THX9",
)
SEAL_BOX = (400, 100, 519, 219)
"""Where the visible seal goes on an A4 page: 42 mm across."""


def assert_matches_golden(png: bytes, name: str) -> None:
    """Compare a PNG with the reference ``golden/<name>``; rewrite it when asked to."""
    path = GOLDEN / name
    if UPDATE_GOLDEN:
        GOLDEN.mkdir(exist_ok=True)
        path.write_bytes(png)
        pytest.skip(f"rewrote {path}; look at it before committing")
    assert path.exists(), f"no reference image {path}; run with ECONTRACT_UPDATE_GOLDEN=1"
    with Image.open(io.BytesIO(png)) as got, Image.open(path) as want:
        assert got.size == want.size, f"{name}: size {got.size}, reference {want.size}"
        difference = ImageChops.difference(got.convert("RGB"), want.convert("RGB"))
        mean = statistics.fmean(ImageStat.Stat(difference).mean)
        changed = sum(difference.convert("L").histogram()[96:]) / (got.width * got.height)
    assert mean < MAX_MEAN_DIFFERENCE, f"{name} differs from its reference by {mean:.2f}"
    assert changed <= MAX_CHANGED_PIXELS, f"{name}: {changed:.2%} of the pixels changed"


def render(pdf: bytes, page: int, *, crop: tuple[int, int, int, int] | None = None) -> bytes:
    """Page ``page`` (from 1) as a PNG at 100 dpi, or the pixel rectangle ``crop``
    (x, y from the top left, width, height). Like a viewer, it shows the crop box."""
    args = ["pdftoppm", "-r", "100", "-png", "-cropbox", "-singlefile"]
    args += ["-f", str(page), "-l", str(page)]
    if crop is not None:
        args += ["-x", str(crop[0]), "-y", str(crop[1]), "-W", str(crop[2]), "-H", str(crop[3])]
    return subprocess.run(args, input=pdf, capture_output=True, check=True).stdout


def seal_crop(box: tuple[int, int, int, int], page_height: float) -> tuple[int, int, int, int]:
    """The pixels (at 100 dpi) of a box in PDF points, with a margin of 5 pixels."""
    scale = 100 / 72
    x1, _, x2, y2 = box
    return (
        round(x1 * scale) - 5,
        round((page_height - y2) * scale) - 5,
        round((x2 - x1) * scale) + 10,
        round((x2 - x1) * scale) + 10,
    )


def red_fraction(png: bytes, box: tuple[int, int, int, int] | None = None) -> float:
    """The share of seal-red pixels in a PNG, or in the pixel rectangle ``box``
    (left, top, right, bottom)."""
    with Image.open(io.BytesIO(png)) as image:
        rgb = image.convert("RGB")
        data = (rgb.crop(box) if box else rgb).tobytes()
    pixels = [data[i : i + 3] for i in range(0, len(data), 3)]
    red = sum(1 for r, g, b in pixels if r > 180 and g < 100 and b < 100)
    return red / max(len(pixels), 1)


def make_pdf(pages: int = 1, size: tuple[float, float] = A4) -> bytes:
    """A plain PDF with a line of text and a frame on every page."""
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=size)
    for n in range(pages):
        c.drawString(72, size[1] - 80, f"eContract test document - page {n + 1}")
        c.rect(72, 72, size[0] - 144, size[1] - 180)
        c.showPage()
    c.save()
    return out.getvalue()


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return build_test_pki()


@pytest.fixture(scope="module")
def signer(pki: TestPKI) -> KeySigner:
    handle, cert = pki.make_seal()
    return KeySigner.for_handle(handle, cert, pki.chain)


def sign_visible(
    pdf: bytes,
    signer: KeySigner,
    appearance: SealAppearance = APPEARANCE,
    *,
    writer: IncrementalPdfFileWriter | None = None,
) -> bytes:
    """Seal ``pdf`` (or the prepared ``writer``) with a visible round seal on its first page."""
    meta = signers.PdfSignatureMetadata(
        field_name="Seal1", subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256"
    )
    pdf_signer = signers.PdfSigner(
        meta,
        signer,
        stamp_style=seal_stamp_style(appearance),
        new_field_spec=fields.SigFieldSpec("Seal1", on_page=0, box=SEAL_BOX),
    )
    out = io.BytesIO()
    pdf_signer.sign_pdf(writer or IncrementalPdfFileWriter(io.BytesIO(pdf)), output=out)
    return out.getvalue()


def write(writer: IncrementalPdfFileWriter) -> bytes:
    """The document with the writer's incremental update."""
    out = io.BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]  # untyped upstream
    return out.getvalue()


def embedded_fonts(pdf: bytes) -> list[list[str]]:
    """The rows of ``pdffonts`` for the project's font."""
    listing = subprocess.run(
        ["pdffonts", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()
    return [line.split() for line in listing.splitlines() if "EContractSerifSC" in line]


# --- drawing ----------------------------------------------------------------------------------


def test_visible_seal_matches_reference(signer: KeySigner) -> None:
    pdf = sign_visible(make_pdf(), signer)
    assert_matches_golden(render(pdf, 1, crop=seal_crop(SEAL_BOX, A4[1])), "visible-seal.png")


def test_long_department_name_matches_reference(signer: KeySigner) -> None:
    pdf = sign_visible(make_pdf(), signer, LONG_APPEARANCE)
    assert_matches_golden(
        render(pdf, 1, crop=seal_crop(SEAL_BOX, A4[1])), "visible-seal-long-name.png"
    )


def test_visible_seal_is_red(signer: KeySigner) -> None:
    pdf = sign_visible(make_pdf(), signer)
    png = render(pdf, 1, crop=seal_crop(SEAL_BOX, A4[1]))
    assert red_fraction(png) > 0.1


def test_visible_seal_signature_is_valid(pki: TestPKI, signer: KeySigner) -> None:
    pdf = sign_visible(make_pdf(), signer)
    [sig] = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    status = validate_pdf_signature(
        sig, ValidationContext(trust_roots=[to_asn1(pki.root.certificate)])
    )
    assert status.intact
    assert status.valid
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    assert status.modification_level == ModificationLevel.NONE


def test_seal_fills_the_smaller_side_of_a_wide_box() -> None:
    w = IncrementalPdfFileWriter(io.BytesIO(make_pdf()))
    box = layout.BoxConstraints(width=300, height=100)
    stamp = SealStamp(writer=w, style=seal_stamp_style(APPEARANCE), box=box)
    # The drawing is made for a diameter of 100: scale 1, centred in the box.
    assert b"1 0 0 1 150 50 cm" in stamp.render()  # type: ignore[no-untyped-call]


def _forms(xobject: Any) -> Iterator[Any]:
    """A form XObject and every form it draws, depth first."""
    yield xobject
    for ref in xobject.get("/Resources", {}).get("/XObject", {}).values():
        yield from _forms(ref.get_object())


def test_seal_prints_like_ink_with_the_multiply_blend_mode(signer: KeySigner) -> None:
    reader = PdfFileReader(io.BytesIO(sign_visible(make_pdf(), signer)))
    (widget,) = [a.get_object() for a in reader.root["/Pages"]["/Kids"][0]["/Annots"]]
    inks = []
    for form in _forms(widget["/AP"]["/N"].get_object()):
        states = form.get("/Resources", {}).get("/ExtGState", {})
        for name, state in states.items():
            if state.get_object().get("/BM") == "/Multiply":
                inks.append((name, form.data))
    assert inks, "no graphics state with /BM /Multiply in the seal's appearance"
    name, content = inks[0]
    # The state is set before anything of the seal is drawn.
    assert content.index(f"{name} gs".encode()) < content.index(b" rg ")


# --- the font -----------------------------------------------------------------------------------


def test_font_is_embedded_as_a_subset(signer: KeySigner) -> None:
    [row] = embedded_fonts(sign_visible(make_pdf(), signer))
    # name, type (two words: CID TrueType), encoding, emb, sub, uni, object, generation
    name, encoding, emb, sub, uni = row[0], *row[-6:-2]
    assert name[6] == "+"
    assert " ".join(row[1:-6]) == "CID TrueType"
    assert encoding == "Identity-H"
    assert (emb, sub, uni) == ("yes", "yes", "yes")


def test_every_character_maps_to_a_glyph() -> None:
    for appearance in (APPEARANCE, LONG_APPEARANCE):
        font = TTFont(io.BytesIO(subset_font(appearance.text)))
        cmap = font.getBestCmap()
        for ch in appearance.text:
            assert ord(ch) in cmap, f"{ch!r} has no glyph"
            assert cmap[ord(ch)] != ".notdef"
            glyph = font["glyf"][cmap[ord(ch)]]
            assert glyph.numberOfContours != 0, f"{ch!r} has an empty glyph"


@pytest.mark.parametrize("appearance", [APPEARANCE, LONG_APPEARANCE], ids=["short", "long"])
def test_seal_shows_exactly_its_text(signer: KeySigner, appearance: SealAppearance) -> None:
    # The ToUnicode map makes every drawn character real text. Rotated glyphs come out in no
    # particular order, so the characters are compared as a multiset, from the seal's area.
    pdf = sign_visible(make_pdf(), signer, appearance)
    x1, _, _, y2 = SEAL_BOX
    area = ["-x", str(x1 - 5), "-y", str(round(A4[1]) - y2 - 5), "-W", "130", "-H", "130"]
    text = subprocess.run(
        ["pdftotext", *area, "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()
    assert Counter(ch for ch in text if not ch.isspace()) == Counter(appearance.text)


@pytest.mark.parametrize("character", ["\U00020000", "😀"], ids=["ext-b", "emoji"])
def test_character_missing_from_the_font_is_refused(character: str) -> None:
    appearance = SealAppearance(
        department_name=f"杭州市{character}局", seal_name="证照专用章", code="3301000012345"
    )
    with pytest.raises(SigningError, match=f"U\\+{ord(character):04X}"):
        seal_stamp_style(appearance)


def test_missing_glyphs_error_lists_each_character_once() -> None:
    with pytest.raises(MissingGlyphsError) as caught:
        subset_font("杭\U00020000\U00020000😀")
    assert caught.value.characters == "\U00020000😀"
    assert caught.value.code == "missing-glyphs"


@pytest.fixture
def no_font(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    missing = tmp_path / "EContractSerifSC.ttf"
    monkeypatch.setattr(fonts, "FONT_PATH", missing)
    fonts.font_bytes.cache_clear()
    fonts._cmap.cache_clear()
    yield missing
    monkeypatch.undo()
    fonts.font_bytes.cache_clear()
    fonts._cmap.cache_clear()


def test_missing_font_names_the_file_and_the_fix(no_font: Path) -> None:
    with pytest.raises(FontMissingError, match="pip install") as caught:
        check_font()
    assert str(no_font) in caught.value.message
    assert isinstance(caught.value, SigningError)


def test_unreadable_font_is_reported(no_font: Path) -> None:
    no_font.write_bytes(b"not a font")
    with pytest.raises(FontMissingError, match="not a readable font"):
        check_font()


def test_installed_font_passes_the_check() -> None:
    check_font()


def test_subset_font_is_usable_by_reportlab(tmp_path: Path) -> None:
    text = "营业执照统一社会信用代码0123456789"
    registerFont(ReportLabTTFont("EContractSerifTest", io.BytesIO(subset_font(text))))
    out = tmp_path / "licence.pdf"
    c = canvas.Canvas(str(out), pagesize=A4)
    c.setFont("EContractSerifTest", 14)
    c.drawString(72, 700, text)
    c.save()
    [row] = embedded_fonts(out.read_bytes())
    assert "yes" in row


def test_subset_is_deterministic() -> None:
    assert subset_font.__wrapped__("证照专用章") == subset_font.__wrapped__("证照专用章")


# --- the appearance as a value ------------------------------------------------------------------


def test_style_is_made_once_per_appearance() -> None:
    same = SealAppearance(
        department_name=APPEARANCE.department_name,
        seal_name=APPEARANCE.seal_name,
        code=APPEARANCE.code,
    )
    assert seal_stamp_style(same) is seal_stamp_style(APPEARANCE)


@pytest.mark.parametrize("name", ["局", "中" * 31], ids=["one", "thirty-one"])
def test_department_name_length_is_checked(name: str) -> None:
    with pytest.raises(ValueError, match="2 to 30 characters"):
        SealAppearance(department_name=name, seal_name="公章", code="")


def test_control_characters_are_refused() -> None:
    with pytest.raises(ValueError, match="control characters"):
        SealAppearance(department_name="杭州市\n局", seal_name="", code="")


def test_texts_must_be_strings() -> None:
    with pytest.raises(TypeError, match="must be a str"):
        SealAppearance(department_name="杭州市局", seal_name="", code=3301)  # type: ignore[arg-type]


def test_color_components_are_checked() -> None:
    with pytest.raises(ValueError, match="0 to 1"):
        SealAppearance(department_name="杭州市局", seal_name="", code="", color=(1.0, 0.0, 2.0))


# --- cost -------------------------------------------------------------------------------------


def test_each_document_reuses_the_drawing_its_appearance_made_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What costs (subsetting the font, laying the text out, writing the operators) is done
    # once per appearance, when its style is made; a document only embeds what was made. Its
    # time per document is part of bench/bench_sealing.
    pdf = make_pdf()
    style = seal_stamp_style(APPEARANCE)
    box = layout.BoxConstraints(width=119, height=119)

    def never(*_: object) -> None:
        raise AssertionError("a document redid the appearance's one-time work")

    monkeypatch.setattr(appearance_module, "subset_font", never)
    monkeypatch.setattr(appearance_module._FontData, "from_subset", classmethod(never))
    monkeypatch.setattr(appearance_module, "_draw", never)
    outputs = []
    for _ in range(3):
        w = IncrementalPdfFileWriter(io.BytesIO(pdf))
        SealStamp(writer=w, style=style, box=box).register()
        outputs.append(write(w))
    # Each document still carries the seal's font and drawing.
    assert all(len(out) > len(pdf) and b"/FontFile2" in out for out in outputs)
