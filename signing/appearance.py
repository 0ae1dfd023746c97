"""The seal's look: a round red seal drawn as vectors, as a pyHanko stamp style.

A circle border; the department's name along the upper arc, each character turned along the
arc; a five-pointed star in the centre; the seal's name (证照专用章, 合同专用章, …) under the
star; a code (the seal's 13-digit code, or the department's credit code) along the lower edge.
The seal is drawn with the multiply blend mode, as ink prints: the text it covers shows through.
Text is set in a subset of the project's font (:mod:`signing.fonts`), embedded as a TrueType
CID font, so every character is real text that copies and searches.

Use it as a visible signature's appearance::

    style = seal_stamp_style(SealAppearance(department_name="杭州市市场监督管理局",
                                            seal_name="证照专用章", code="3301000012345"))
    PdfSigner(meta, signer, stamp_style=style, new_field_spec=SigFieldSpec(..., box=box))

Everything that does not depend on the document (the subset font, its PDF objects' bytes, the
drawing's operators) is computed once per appearance (0.1 to 0.3 s) and cached; a document
then costs a few small PDF objects (measured: about 0.3 ms more than an invisible seal, 8 KB).
pyHanko's ``GlyphAccumulator`` is not used: it parses, shapes and subsets the font again for
every document (about 11 ms each, even from a pre-subset font).
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import threading
import weakref
import zlib
from dataclasses import dataclass, field
from typing import Any

from fontTools.ttLib import TTFont
from pyhanko.pdf_utils import generic, layout
from pyhanko.pdf_utils.content import ResourceType
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.stamp.base import BaseStamp, BaseStampStyle

from signing._once import computed_once
from signing.fonts import subset_font

SEAL_RED = (0.86, 0.08, 0.08)
"""The default ink: the red of an official seal."""

# The drawing is made once for a seal of this diameter, centred on the origin, and scaled to
# the size asked for (line widths and type sizes scale with it).
_DESIGN = 100.0
_R = _DESIGN / 2
_BORDER = 3.0  # 1.2 mm on a 42 mm seal
_FONT = "/EcSealFont"
_INK = "/EcSealInk"
"""The graphics state the seal is drawn in: multiply blending, so that the seal darkens what
lies under it as ink on paper does, and the text under it stays readable."""


def _check_text(name: str, value: object, lo: int, hi: int) -> str:
    """Validate one of the seal's texts; returns it."""
    if not isinstance(value, str):
        raise TypeError(f"The seal's {name} must be a str, not {type(value).__name__}.")
    if not lo <= len(value) <= hi:
        raise ValueError(
            f"The seal's {name} must have {lo} to {hi} characters, not {len(value)}: {value!r}."
        )
    if value != value.strip() or not value.isprintable():
        raise ValueError(
            f"The seal's {name} may not contain control characters "
            f"or begin or end with a space: {value!r}."
        )
    return value


@dataclass(frozen=True, kw_only=True)
class SealAppearance:
    """What a round seal shows. Validated on construction; hashable, so drawings can be cached."""

    department_name: str
    """The department's name, set along the upper arc (2 to 30 characters)."""
    seal_name: str
    """The seal's name, set under the star, e.g. 证照专用章 (0 to 12 characters; empty for a
    department's official seal, which shows none)."""
    code: str
    """Text along the lower edge: the seal's 13-digit code or the department's unified social
    credit code (0 to 30 characters; empty for none)."""
    color: tuple[float, float, float] = SEAL_RED
    """The ink, as RGB components from 0 to 1."""

    def __post_init__(self) -> None:
        _check_text("department name", self.department_name, 2, 30)
        _check_text("seal name", self.seal_name, 0, 12)
        _check_text("code", self.code, 0, 30)
        if not isinstance(self.color, tuple) or len(self.color) != 3:
            raise TypeError(f"The seal's color must be an (r, g, b) tuple, not {self.color!r}.")
        if not all(isinstance(c, int | float) and 0.0 <= c <= 1.0 for c in self.color):
            raise ValueError(f"The seal's color components must be 0 to 1, not {self.color!r}.")

    @property
    def text(self) -> str:
        """Every character the seal draws."""
        return self.department_name + self.seal_name + self.code


# ---------------------------------------------------------------------------------------------
# The font, as PDF object data prepared once per appearance
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Glyph:
    """One character of the subset font."""

    cid: int
    """Its CID, which is its glyph index in the subset (``/CIDToGIDMap /Identity``)."""
    advance: float
    """Its advance width, in ems."""


@dataclass(frozen=True)
class _FontData:
    """A subset font's PDF objects, as the bytes and numbers that do not change."""

    base_font: str
    """``/BaseFont``: a subset tag, ``+``, the PostScript name."""
    program: bytes
    """The Flate-compressed TrueType program (``/FontFile2``)."""
    program_length: int
    """Its uncompressed length (``/Length1``)."""
    to_unicode: bytes
    """The Flate-compressed ``/ToUnicode`` CMap."""
    widths: tuple[int, ...]
    """Advance widths by CID, in thousandths of an em."""
    bbox: tuple[int, int, int, int]
    """The font's bounding box, in thousandths of an em."""
    ascent: int
    """Ascender, in thousandths of an em."""
    descent: int
    """Descender (negative), in thousandths of an em."""
    cap_height: int
    """Height of capital letters, in thousandths of an em."""
    glyphs: dict[str, _Glyph] = field(compare=False)
    """The glyph of each character."""

    @classmethod
    def from_subset(cls, data: bytes) -> _FontData:
        """Read a subset made by :func:`signing.fonts.subset_font`."""
        font = TTFont(io.BytesIO(data))
        scale = 1000 / font["head"].unitsPerEm
        order = font.getGlyphOrder()
        glyphs = {
            chr(cp): _Glyph(cid=font.getGlyphID(name), advance=font["hmtx"][name][0] / 1000 * scale)
            for cp, name in font.getBestCmap().items()
        }
        widths = tuple(round(font["hmtx"][name][0] * scale) for name in order)
        head, os2 = font["head"], font["OS/2"]
        ps_name = font["name"].getDebugName(6) or "EContractSerifSC-Regular"
        # A subset's name starts with six capital letters and '+' (ISO 32000-1, 9.6.4); derive
        # them from the content so the same text always gives the same font name.
        digest = hashlib.sha256(data).digest()
        tag = "".join(chr(ord("A") + b % 26) for b in digest[:6])
        return cls(
            base_font=f"{tag}+{ps_name}",
            program=zlib.compress(data, 9),
            program_length=len(data),
            to_unicode=zlib.compress(_to_unicode_cmap(glyphs), 9),
            widths=widths,
            bbox=tuple(round(v * scale) for v in (head.xMin, head.yMin, head.xMax, head.yMax)),
            ascent=round(os2.sTypoAscender * scale),
            descent=round(os2.sTypoDescender * scale),
            cap_height=round(getattr(os2, "sCapHeight", os2.sTypoAscender) * scale),
            glyphs=glyphs,
        )

    def embed(self, writer: BasePdfFileWriter) -> generic.IndirectObject:
        """Add the font's objects to ``writer``; returns the ``/Type0`` font's reference."""
        name = pdf_name("/" + self.base_font)
        flate = pdf_name("/FlateDecode")
        program = writer.add_object(
            generic.StreamObject(
                {
                    pdf_name("/Length1"): _int(self.program_length),
                    pdf_name("/Filter"): flate,
                },
                encoded_data=self.program,
            )
        )
        descriptor = writer.add_object(
            _dict(
                {
                    pdf_name("/Type"): pdf_name("/FontDescriptor"),
                    pdf_name("/FontName"): name,
                    # Symbolic (4) and serif (2): the glyphs are reached by CID, not by a
                    # standard encoding.
                    pdf_name("/Flags"): _int(6),
                    pdf_name("/FontBBox"): _numbers(self.bbox),
                    pdf_name("/ItalicAngle"): _int(0),
                    pdf_name("/Ascent"): _int(self.ascent),
                    pdf_name("/Descent"): _int(self.descent),
                    pdf_name("/CapHeight"): _int(self.cap_height),
                    pdf_name("/StemV"): _int(80),
                    pdf_name("/FontFile2"): program,
                }
            )
        )
        cid_font = writer.add_object(
            _dict(
                {
                    pdf_name("/Type"): pdf_name("/Font"),
                    pdf_name("/Subtype"): pdf_name("/CIDFontType2"),
                    pdf_name("/BaseFont"): name,
                    pdf_name("/CIDSystemInfo"): _dict(
                        {
                            pdf_name("/Registry"): generic.pdf_string("Adobe"),
                            pdf_name("/Ordering"): generic.pdf_string("Identity"),
                            pdf_name("/Supplement"): _int(0),
                        }
                    ),
                    pdf_name("/FontDescriptor"): descriptor,
                    pdf_name("/CIDToGIDMap"): pdf_name("/Identity"),
                    pdf_name("/W"): generic.ArrayObject([_int(0), _numbers(self.widths)]),
                }
            )
        )
        to_unicode = writer.add_object(
            generic.StreamObject({pdf_name("/Filter"): flate}, encoded_data=self.to_unicode)
        )
        return writer.add_object(
            _dict(
                {
                    pdf_name("/Type"): pdf_name("/Font"),
                    pdf_name("/Subtype"): pdf_name("/Type0"),
                    pdf_name("/BaseFont"): name,
                    pdf_name("/Encoding"): pdf_name("/Identity-H"),
                    pdf_name("/DescendantFonts"): generic.ArrayObject([cid_font]),
                    pdf_name("/ToUnicode"): to_unicode,
                }
            )
        )


def _int(value: int) -> generic.NumberObject:
    return generic.NumberObject(value)  # type: ignore[no-untyped-call]  # untyped upstream


def _dict(entries: dict[str, generic.PdfObject]) -> generic.DictionaryObject:
    return generic.DictionaryObject(entries)  # type: ignore[no-untyped-call]  # untyped upstream


def _numbers(values: tuple[int, ...]) -> generic.ArrayObject:
    return generic.ArrayObject([_int(v) for v in values])


def _to_unicode_cmap(glyphs: dict[str, _Glyph]) -> bytes:
    """A ToUnicode CMap from CIDs to the characters, so the seal's text can be extracted."""
    pairs = sorted((g.cid, ch) for ch, g in glyphs.items())
    lines = [
        "/CIDInit /ProcSet findresource begin",
        "12 dict begin",
        "begincmap",
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
        "/CMapName /Adobe-Identity-UCS def",
        "/CMapType 2 def",
        "1 begincodespacerange",
        "<0000> <FFFF>",
        "endcodespacerange",
    ]
    for start in range(0, len(pairs), 100):  # at most 100 entries per block
        block = pairs[start : start + 100]
        lines.append(f"{len(block)} beginbfchar")
        lines.extend(f"<{cid:04X}> <{ch.encode('utf-16-be').hex().upper()}>" for cid, ch in block)
        lines.append("endbfchar")
    lines += [
        "endcmap",
        "CMapName currentdict /CMap defineresource pop",
        "end",
        "end",
    ]
    return "\n".join(lines).encode("ascii")


# Fonts already embedded in a writer, so that a visible seal and a cross-page seal in the same
# revision share one copy. Weak keys: the entry goes with the writer.
_embedded: weakref.WeakKeyDictionary[BasePdfFileWriter, dict[str, generic.IndirectObject]] = (
    weakref.WeakKeyDictionary()
)
_embedded_lock = threading.Lock()


def _font_in(writer: BasePdfFileWriter, font: _FontData) -> generic.IndirectObject:
    """The font's reference in ``writer``, embedding it on first use."""
    with _embedded_lock:
        fonts = _embedded.setdefault(writer, {})
        ref = fonts.get(font.base_font)
        if ref is None:
            ref = fonts[font.base_font] = font.embed(writer)
        return ref


# ---------------------------------------------------------------------------------------------
# The drawing
# ---------------------------------------------------------------------------------------------


def _n(value: float) -> str:
    """A number as PDF content: three decimals at most, no trailing zeros."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _circle(r: float) -> str:
    """A circle of radius ``r`` around the origin, as four Bézier curves."""
    k = 0.5522847498 * r
    return (
        f"{_n(r)} 0 m {_n(r)} {_n(k)} {_n(k)} {_n(r)} 0 {_n(r)} c "
        f"{_n(-k)} {_n(r)} {_n(-r)} {_n(k)} {_n(-r)} 0 c "
        f"{_n(-r)} {_n(-k)} {_n(-k)} {_n(-r)} 0 {_n(-r)} c "
        f"{_n(k)} {_n(-r)} {_n(r)} {_n(-k)} {_n(r)} 0 c h"
    )


def _star(r: float) -> str:
    """A regular five-pointed star of outer radius ``r`` around the origin, point up."""
    inner = r * math.sin(math.radians(18)) / math.sin(math.radians(126))
    points = []
    for i in range(10):
        a = math.radians(90 + 36 * i)
        radius = r if i % 2 == 0 else inner
        points.append((radius * math.cos(a), radius * math.sin(a)))
    path = [f"{_n(points[0][0])} {_n(points[0][1])} m"]
    path += [f"{_n(x)} {_n(y)} l" for x, y in points[1:]]
    return " ".join(path) + " h f"


class _Text:
    """Text operators for one seal, all in a single BT … ET block."""

    def __init__(self, font: _FontData) -> None:
        self._font = font
        self._ops: list[str] = []
        self._size: float | None = None
        self._scale: float | None = None

    def glyph(
        self, ch: str, *, size: float, hscale: float, angle: float, x: float, y: float
    ) -> None:
        """Set ``ch`` with its origin at (x, y), its baseline turned ``angle`` radians."""
        if size != self._size:
            self._ops.append(f"{_FONT} {_n(size)} Tf")
            self._size = size
        if hscale != self._scale:
            self._ops.append(f"{_n(hscale * 100)} Tz")
            self._scale = hscale
        c, s = math.cos(angle), math.sin(angle)
        cid = self._font.glyphs[ch].cid
        self._ops.append(f"{_n(c)} {_n(s)} {_n(-s)} {_n(c)} {_n(x)} {_n(y)} Tm <{cid:04X}> Tj")

    def advance(self, ch: str) -> float:
        """The advance width of ``ch``, in ems."""
        return self._font.glyphs[ch].advance

    def render(self) -> str:
        """The BT … ET block."""
        return "BT " + "\n".join(self._ops) + " ET" if self._ops else ""


# Em box of the font, as fractions of the type size: CJK ideographs fill it, Latin letters and
# digits sit on the baseline.
_EM_TOP, _EM_BOTTOM = 0.88, -0.12


def _department_arc(text: _Text, name: str, *, max_span: float) -> None:
    """The department's name along the upper arc, glyph tops outward, read clockwise.

    Characters are spaced evenly in angle. Short names spread over a wide arc; long ones
    first narrow their characters (down to 65 %), then shrink them, to stay within
    ``max_span`` radians.
    """
    n = len(name)
    r_out = _R - _BORDER - 1.6  # where the tops of the characters stop, inside the border
    size, hscale, track = 15.0, 0.85, 0.12

    def r_mid(h: float) -> float:
        return r_out - (_EM_TOP - _EM_BOTTOM) / 2 * h

    span = n * (hscale + track) * size / r_mid(size)
    if span > max_span:
        hscale = max_span * r_mid(size) / (n * size) - track
        if hscale < 0.65:
            hscale = 0.65
            # n·(hscale + track)·h = max_span·(r_out − h/2), solved for h.
            size = max_span * r_out / (n * (hscale + track) + max_span / 2)
        span = max_span
    span = max(span, min(math.radians(160), n * math.radians(40)))
    step = span / n
    r_base = r_out - _EM_TOP * size
    for i, ch in enumerate(name):
        theta = math.pi / 2 + span / 2 - step * (i + 0.5)
        phi = theta - math.pi / 2  # baseline direction: the tangent, clockwise
        half = text.advance(ch) * size * hscale / 2
        x = r_base * math.cos(theta) - half * math.cos(phi)
        y = r_base * math.sin(theta) - half * math.sin(phi)
        text.glyph(ch, size=size, hscale=hscale, angle=phi, x=x, y=y)


def _code_arc(text: _Text, code: str, *, max_span: float) -> None:
    """The code along the lower edge, glyph tops toward the centre, read left to right.

    Characters keep their own widths (digits are narrow); the code shrinks to stay within
    ``max_span`` radians.
    """
    r_base = _R - _BORDER - 1.4
    size, track = 5.6, 0.1
    ems = sum(text.advance(ch) for ch in code) + track * (len(code) - 1)
    for _ in range(2):  # the centre radius depends on the size; two rounds settle it
        r_mid = r_base - 0.36 * size
        if ems * size / r_mid > max_span:
            size = max_span * r_mid / ems
    r_mid = r_base - 0.36 * size
    span = ems * size / r_mid
    at = 0.0  # arc length set so far, at the centre radius
    for ch in code:
        width = text.advance(ch) * size
        theta = 3 * math.pi / 2 - span / 2 + (at + width / 2) / r_mid
        phi = theta + math.pi / 2
        x = r_base * math.cos(theta) - width / 2 * math.cos(phi)
        y = r_base * math.sin(theta) - width / 2 * math.sin(phi)
        text.glyph(ch, size=size, hscale=1.0, angle=phi, x=x, y=y)
        at += width + track * size


def _seal_name(text: _Text, name: str) -> None:
    """The seal's name, level, centred under the star; narrowed, then shrunk, if long."""
    size, hscale, max_width = 11.5, 1.0, 56.0
    ems = sum(text.advance(ch) for ch in name)
    if ems * size > max_width:
        hscale = max(0.7, max_width / (ems * size))
        size = min(size, max_width / (ems * hscale))
    x = -ems * size * hscale / 2
    baseline = -30.0
    for ch in name:
        text.glyph(ch, size=size, hscale=hscale, angle=0.0, x=x, y=baseline)
        x += text.advance(ch) * size * hscale


@dataclass(frozen=True)
class _Artwork:
    """A seal drawn once: content operators for a seal of diameter ``_DESIGN`` around the
    origin, and the font they use."""

    content: bytes
    """The operators, without the scaling into a box."""
    font: _FontData
    """The subset font the text is set in."""


@functools.lru_cache(maxsize=512)
def _draw(appearance: SealAppearance) -> _Artwork:
    """Draw ``appearance`` once: subset the font, lay out the text, write the operators."""
    font = _FontData.from_subset(subset_font(appearance.text))
    text = _Text(font)
    _department_arc(text, appearance.department_name, max_span=math.radians(240))
    if appearance.seal_name:
        _seal_name(text, appearance.seal_name)
    if appearance.code:
        _code_arc(text, appearance.code, max_span=math.radians(95))
    color = " ".join(_n(c) for c in appearance.color)
    ops = [
        f"{color} rg {color} RG",
        f"{_n(_BORDER)} w {_circle(_R - _BORDER / 2)} S",
        _star(17.0),
        # Fill and stroke the text (render mode 2) with a hairline: the font is a regular
        # weight, and seal lettering is bolder.
        "2 Tr 0.3 w 1 j",
        text.render(),
    ]
    return _Artwork(content="\n".join(ops).encode("ascii"), font=font)


# ---------------------------------------------------------------------------------------------
# pyHanko integration
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SealStampStyle(BaseStampStyle):
    """The stamp style of a round seal; pass it to ``PdfSigner(stamp_style=...)``.

    Build it with :func:`seal_stamp_style`, which caches it per appearance. The drawing (and
    the font subset) is made when the style is created, so a character the font lacks raises
    :class:`signing.fonts.MissingGlyphsError` then, not while sealing.
    """

    appearance: SealAppearance
    """What the seal shows."""
    border_width: int = 0
    """No rectangular border around the stamp's box (pyHanko draws one by default)."""
    _artwork: _Artwork = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Frozen dataclass: the cached drawing is set once, here.
        object.__setattr__(self, "_artwork", _draw(self.appearance))

    def create_stamp(
        self,
        writer: BasePdfFileWriter,
        box: layout.BoxConstraints,
        text_params: dict[str, Any],
    ) -> SealStamp:
        """The seal drawn in ``box`` (``text_params`` are ignored: the seal shows no signer
        name or time)."""
        return SealStamp(writer=writer, style=self, box=box)


class SealStamp(BaseStamp):
    """A round seal in a form XObject the size of ``box``, centred, as large as fits."""

    style: SealStampStyle

    def __init__(
        self, *, writer: BasePdfFileWriter, style: SealStampStyle, box: layout.BoxConstraints
    ) -> None:
        if not (box.width_defined and box.height_defined):
            raise layout.LayoutError("A seal needs a box of known width and height.")
        super().__init__(writer=writer, style=style, box=box)

    def _render_inner_content(self) -> list[bytes]:
        art = self.style._artwork
        self.set_resource(
            ResourceType.FONT, pdf_name(_FONT), _font_in(self._ensure_writer, art.font)
        )
        self.set_resource(ResourceType.EXT_G_STATE, pdf_name(_INK), _multiply())
        width, height = float(self.box.width), float(self.box.height)
        scale = min(width, height) / _DESIGN
        place = f"{_INK} gs {_n(scale)} 0 0 {_n(scale)} {_n(width / 2)} {_n(height / 2)} cm"
        return [place.encode("ascii"), art.content]


def _multiply() -> generic.DictionaryObject:
    """A graphics state dictionary with the multiply blend mode (one per document)."""
    return _dict(
        {pdf_name("/Type"): pdf_name("/ExtGState"), pdf_name("/BM"): pdf_name("/Multiply")}
    )


# Computed once per appearance even when several threads seal with a seal at once for the
# first time (a worker's first requests): the drawing takes 0.1 to 0.3 s.
@computed_once(maxsize=512)
def seal_stamp_style(appearance: SealAppearance) -> SealStampStyle:
    """The stamp style that draws ``appearance``, made once per appearance.

    Raises :class:`signing.fonts.MissingGlyphsError` (a :class:`SigningError`) when the font
    lacks a character of the appearance's texts.
    """
    return SealStampStyle(appearance=appearance)


def seal_form_xobject(
    writer: BasePdfFileWriter, appearance: SealAppearance, diameter: float
) -> generic.IndirectObject:
    """Add the seal to ``writer`` as a form XObject ``diameter`` points square; its reference.

    For drawing the seal into page content (the cross-page seal) rather than into a
    signature widget.
    """
    box = layout.BoxConstraints(width=diameter, height=diameter)
    stamp = SealStamp(writer=writer, style=seal_stamp_style(appearance), box=box)
    return stamp.register()
