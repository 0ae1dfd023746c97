"""Drawing a licence: one A4 page in the manner of the paper forms, ready to be sealed.

The page carries a double frame, the title in large characters, the licence number (证照编号)
top right, the fields as label/value rows, the validity, a QR code that opens the
verification page (bottom left) and the issuing department's name and the issue date bottom
right, where :attr:`RenderedLicence.seal_placement` tells the sealer to put the seal.

Text is set in the project's font (``signing/fonts/EContractSerifSC.ttf``). ReportLab parses
it once per process (about 0.2 s) and embeds, in each PDF, a subset holding only the glyphs
that page uses, with a ``ToUnicode`` map so that the text can be searched and copied.
Nothing is drawn with a glyph the font lacks: :class:`LicenceContent` refuses such text,
naming the field.

:mod:`econtract.issuance._layout` holds how a page looks (``LicenceStyle``) and what it
says (``LicenceContent``); this module draws them.
"""

from __future__ import annotations

import functools
import io
import re
import threading
import zlib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

import zxingcpp
from reportlab import rl_config
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfdoc import XMP
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from econtract.errors import InvalidInputError
from econtract.issuance._layout import (
    DEFAULT_STYLE,
    MM,
    LicenceContent,
    LicenceStyle,
    RenderedLicence,
    format_date,
)
from econtract.issuance._templates import LONG_TERM
from econtract.licence_metadata import DocumentInfo, NationalMetadata
from signing.fonts import check_font, font_bytes
from signing.options import SEAL_DIAMETER, Placement

FORMAT_VERSION = "econtract-licence/1"
"""The version marker of the page layout, written as the PDF's ``/Producer``."""

FONT_NAME = "EContractSerifSC"
"""The name the project font is registered under in ReportLab."""

_QUIET_ZONE = 4  # modules, as ISO/IEC 18004 requires around a QR code
# Chinese line breaking (禁则): closing punctuation never starts a line and opening
# punctuation never ends one.
_NO_LINE_START = frozenset("，。、；：？！）》」』】〕〉”’…—,.;:?!)]}%")
_NO_LINE_END = frozenset("（《「『【〔〈“‘([{")
_TOKENS = re.compile(r"[!-~]+| +|.", re.DOTALL)


def qr_matrix(text: str) -> list[tuple[bool, ...]]:
    """The modules of a QR code (error correction M, the mask chosen by ISO/IEC 18004's penalty
    rules), dark as ``True``, without the quiet zone.

    zxing-cpp encodes in C++: a pure-Python encoder spent about 5 ms on a licence's code,
    inside the issuing transaction that serialises issuance.
    """
    return [tuple(b == 0 for b in row) for row in _qr_rows(text)]


def _qr_rows(text: str) -> list[bytes]:
    """The rows of a QR code's modules as zxing draws them: one byte a module, dark as 0."""
    symbol = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    # zxing's Image has the buffer protocol, which its type stubs do not declare.
    image = memoryview(symbol.to_image(scale=1, add_quiet_zones=False))  # type: ignore[arg-type]
    assert image.shape is not None
    size = image.shape[1]
    pixels = image.tobytes()
    return [pixels[i : i + size] for i in range(0, len(pixels), size)]


# A run of dark modules in a row of zxing's image.
_DARK_RUN = re.compile(rb"\x00+")


#: Licences are dated in China Standard Time.
_CHINA = timezone(timedelta(hours=8), "CST")


def pdf_date(moment: datetime) -> str:
    """A PDF date string (ISO 32000-1 7.9.4) of a timezone-aware moment, in its own offset."""
    offset = moment.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"D:{moment:%Y%m%d%H%M%S}{sign}{minutes // 60:02d}'{minutes % 60:02d}'"


def _creation_time(content: LicenceContent) -> datetime:
    if content.issued_at is not None:
        return content.issued_at.astimezone(_CHINA)
    return datetime.combine(content.issued_on, time(0, 0), tzinfo=_CHINA)


def render_licence(
    content: LicenceContent,
    *,
    style: LicenceStyle = DEFAULT_STYLE,
    metadata: NationalMetadata | None = None,
) -> RenderedLicence:
    """Draw ``content`` as a one-page PDF in ``style``; with ``metadata``, the page carries
    it as its XMP metadata stream (GB/T 36903), in the revision that gets sealed.

    Raises :class:`~signing.fonts.FontMissingError` when the font is not installed, and
    :class:`~econtract.errors.InvalidInputError` when the URL needs too dense a QR code or
    the fields cannot fit on the page even at the smallest size.
    """
    # ReportLab keeps per-document state on the shared font object; one document at a time
    # keeps threads from mixing their subsets; a page holds the lock for ~25 ms at most.
    with _render_lock:
        font = _font()
        buffer = io.BytesIO()
        # invariant: no timestamp or random ID, so the same content gives the same bytes and
        # a stored licence can be re-rendered and compared. Its dates are on the page.
        canvas = Canvas(
            buffer,
            pagesize=style.page_size,
            invariant=True,
            lang="zh-CN",
            initialFontName=FONT_NAME,  # else an unembedded Helvetica is listed on the page
        )
        canvas.setProducer(FORMAT_VERSION)
        canvas.setCreator("eContract")
        title = f"{content.template.name} {content.number}"
        canvas.setTitle(title)
        canvas.setAuthor(content.department_name)
        # The real moment of issuance as /CreationDate and /ModDate; it is part of the
        # content, so the bytes stay a function of the content.
        created = pdf_date(_creation_time(content))
        canvas.setDateFormatter(lambda *_: created)
        canvas.setSubject(f"{content.template.code}/{content.template.version}")
        if metadata is not None:
            # The packet repeats the document information (title, author, dates, producer),
            # so that a reader preferring XMP shows what /Info says.
            packet = metadata.to_xmp(
                DocumentInfo(
                    title=title,
                    author=content.department_name,
                    created=_creation_time(content),
                    producer=FORMAT_VERSION,
                    creator_tool="eContract",
                )
            ).encode()
            # ReportLab writes a catalog's /Metadata as an XMP stream (/Type /Metadata,
            # /Subtype /XML); its public API has no setter, so the catalog is reached directly.
            # Bytes, in UTF-8 as XMP asks: a str would be encoded as PDFDocEncoding.
            canvas._doc.Catalog.Metadata = XMP(creator=lambda _doc: packet)
        placement = _Page(canvas, font, style, content).draw()
        canvas.showPage()
        # ASCII85 only makes streams bigger, and without ReportLab's C accelerator encoding
        # them is a third of the render time; the setting is global, so it is restored.
        a85 = rl_config.useA85
        rl_config.useA85 = 0
        try:
            canvas.save()
        finally:
            rl_config.useA85 = a85
    return RenderedLicence(pdf=buffer.getvalue(), seal_placement=placement)


# ---------------------------------------------------------------------------------------------
# The font
# ---------------------------------------------------------------------------------------------

_render_lock = threading.Lock()


#: How many distinct glyph subsets (and their compressed font files) a process keeps.
_SUBSETS_KEPT = 64


@functools.cache
def _font() -> TTFont:
    """The project font, parsed and registered with ReportLab once per process.

    The subset of the font each page embeds depends only on the glyphs the page uses, and
    licences of one template mostly use the same ones; building a subset and compressing it
    took a third of a page's rendering, so both are kept for the subsets seen last.
    """
    check_font()
    font = TTFont(FONT_NAME, io.BytesIO(font_bytes()))
    face = font.face
    make_subset = face.makeSubset
    add_subset_objects = face.addSubsetObjects

    @functools.lru_cache(maxsize=_SUBSETS_KEPT)
    def subset_of(characters: tuple[int, ...]) -> bytes:
        subset: bytes = make_subset(list(characters))
        return subset

    def add_compressed_subset(doc: object, font_name: str, subset: list[int]) -> object:
        descriptor = add_subset_objects(doc, font_name, subset)
        # ReportLab files the font file stream under this name; when it does not find it (a
        # ReportLab that names it otherwise), the stream is compressed as usual.
        stream = doc.idToObject.get(f"fontFile:{face.filename}({font_name})")  # type: ignore[attr-defined]
        if stream is not None and stream.filters:
            stream.filters = [_KEPT_FLATE]
        return descriptor

    face.makeSubset = lambda subset: subset_of(tuple(subset))
    face.addSubsetObjects = add_compressed_subset
    pdfmetrics.registerFont(font)
    return font


class _KeptFlate:
    """ReportLab's Flate filter for font files, keeping the output for the subsets seen last."""

    pdfname = "FlateDecode"

    @staticmethod
    @functools.lru_cache(maxsize=_SUBSETS_KEPT)
    def encode(data: bytes) -> bytes:
        """Compress as ReportLab's own filter does (zlib's default level)."""
        return zlib.compress(data)

    @staticmethod
    def decode(encoded: bytes) -> bytes:
        """Decompress."""
        return zlib.decompress(encoded)


_KEPT_FLATE = _KeptFlate()


@functools.cache
def _advance(char: str) -> float:
    """The advance width of ``char`` at size 1."""
    width: float = _font().stringWidth(char, 1.0)
    return width


def _width(text: str, size: float) -> float:
    return sum(_advance(ch) for ch in text) * size


def _wrap(text: str, width: float, size: float) -> list[str]:
    """``text`` broken into lines no wider than ``width``, Chinese-style.

    Lines break between any two Chinese characters and at spaces between Latin words; a
    Latin word wider than the line is broken anywhere. Closing punctuation may hang past the
    edge by one character rather than start a line.
    """
    tokens: list[str] = []
    for token in _TOKENS.findall(text):
        tokens.extend(token if _width(token, size) > width else [token])
    lines: list[str] = []
    line, line_width = "", 0.0
    for token in tokens:
        token_width = _width(token, size)
        if token.isspace():
            if line:
                line, line_width = line + token, line_width + token_width
            continue
        fits = line_width + token_width <= width
        hangs = len(token) == 1 and token in _NO_LINE_START
        if not line or fits or hangs:
            line, line_width = line + token, line_width + token_width
            continue
        carry = ""
        if len(line) > 1 and line[-1] in _NO_LINE_END:
            line, carry = line[:-1], line[-1]
        lines.append(line.rstrip())
        line = carry + token
        line_width = _width(line, size)
    if line.strip():
        lines.append(line.rstrip())
    return lines or [""]


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    label: str
    value: str
    pointer: str


class _Page:
    """One licence page being drawn; coordinates are PDF points from the bottom left."""

    def __init__(
        self, canvas: Canvas, font: TTFont, style: LicenceStyle, content: LicenceContent
    ) -> None:
        self.c = canvas
        self.font = font
        self.style = style
        self.content = content
        self.width, self.height = style.page_size
        self.x0 = style.content_inset
        self.x1 = self.width - style.content_inset
        self.top = self.height - style.content_inset
        self.bottom = style.content_inset

    def draw(self) -> Placement:
        c, style = self.c, self.style
        c.setFillColorRGB(*style.text_colour)
        c.setStrokeColorRGB(*style.text_colour)
        self._frame()
        self._header()
        below_title = self._title()
        notes_top = self._notes()
        qr_bottom = notes_top + 36
        qr_top = qr_bottom + style.qr_size
        self._qr(qr_bottom)
        placement = self._issuer(qr_bottom + style.qr_size / 2)
        self._rows(below_title - 10, qr_top + 14)
        return placement

    # -- pieces of the page -----------------------------------------------------------------

    def _frame(self) -> None:
        c, s = self.c, self.style
        c.saveState()
        c.setStrokeColorRGB(*s.frame_colour)
        c.setFillColorRGB(*s.frame_colour)
        outer = s.frame_inset
        c.setLineWidth(s.frame_width)
        c.rect(outer, outer, self.width - 2 * outer, self.height - 2 * outer)
        inner = outer + s.frame_width + 3
        c.setLineWidth(0.6)
        c.rect(inner, inner, self.width - 2 * inner, self.height - 2 * inner)
        # Small squares in the inner corners echo the ornamented corners of the paper forms.
        for x in (inner, self.width - inner):
            for y in (inner, self.height - inner):
                c.rect(x - 3, y - 3, 6, 6, stroke=0, fill=1)
        c.restoreState()

    def _header(self) -> None:
        content = self.content
        y = self.top - 4
        template = content.template
        for name in template.header_fields:
            value = content.fields.get(name)
            if value is None:
                continue
            title = str(template.properties[name].get("title", name))
            self._text(self.x0, y, title, 9.5)
            self._text(self.x0, y - 17, str(value), 13)
            y -= 36
        label = "证照编号："
        number_width = _width(content.number, 11)
        self._text(self.x1 - number_width, self.top - 4, content.number, 11)
        self._text(self.x1 - number_width - _width(label, 9.5), self.top - 4, label, 9.5)

    def _title(self) -> float:
        """Draw the title and its English name; return the lowest point they reach."""
        c, s = self.c, self.style
        name = self.content.template.name
        size = s.title_size
        spacing = size * (0.6 if len(name) <= 4 else 0.2)
        available = (self.x1 - self.x0) * 0.8
        natural = _width(name, size) + spacing * (len(name) - 1)
        if natural > available:
            size *= available / natural
            spacing *= available / natural
        natural = _width(name, size) + spacing * (len(name) - 1)
        baseline = self.top - 78
        c.saveState()  # the text render mode is graphics state: keep it to the title
        text = c.beginText((self.width - natural) / 2, baseline)
        text.setFont(FONT_NAME, size)
        text.setCharSpace(spacing)
        # Fill and stroke (render mode 2): the font has one weight, and titles are bold.
        text.setTextRenderMode(2)
        c.setLineWidth(size * 0.03)
        text.textOut(name)
        c.drawText(text)
        c.restoreState()
        english = self.content.template.name_en.upper()
        en_size, en_spacing = 10.0, 2.0
        en_width = _width(english, en_size) + en_spacing * (len(english) - 1)
        c.drawString((self.width - en_width) / 2, baseline - 24, english, charSpace=en_spacing)
        return baseline - 24 - en_size

    def _notes(self) -> float:
        """Draw the small print at the foot; return its top."""
        s = self.style
        width = self.x1 - self.x0
        lines = [
            line
            for note in self.content.template.notes
            for line in _wrap(note, width, s.notes_size)
        ]
        leading = s.notes_size * 1.4
        y = self.bottom + leading * (len(lines) - 1)
        top = y + s.notes_size
        self.c.saveState()
        self.c.setFillColorRGB(0.3, 0.3, 0.3)
        for line in lines:
            self._text(self.x0, y, line, s.notes_size)
            y -= leading
        self.c.restoreState()
        return top if lines else self.bottom

    def _qr(self, bottom: float) -> None:
        c, s = self.c, self.style
        rows = _qr_rows(self.content.verify_url)
        modules = len(rows)
        module = s.qr_size / (modules + 2 * _QUIET_ZONE)
        if module < s.qr_min_module:
            raise InvalidInputError(
                f"The verification URL ({len(self.content.verify_url)} characters) needs a QR "
                f"code of {modules} modules, too dense to scan reliably at "
                f"{s.qr_size / MM:.0f} mm; shorten the URL.",
                errors=[("/verify_url", "too long for the QR code")],
            )
        left = self.x0 + 4 - _QUIET_ZONE * module  # the symbol, not its quiet zone, aligns
        top = bottom + s.qr_size
        ops: list[str] = []
        # Runs of dark modules are found by a regular expression over each row's bytes, and
        # every coordinate is formatted once per column, row and run length rather than once
        # per rectangle: formatting floats for the ~1,600 runs of a licence's code cost more
        # than the rest of the page.
        xs = [f"{left + (_QUIET_ZONE + col) * module:.3f}" for col in range(modules)]
        widths = [f"{length * module:.3f}" for length in range(modules + 1)]
        height = f"{module:.3f} re"
        for r, row in enumerate(rows):
            y = f"{top - (_QUIET_ZONE + r + 1) * module:.3f}"
            for run in _DARK_RUN.finditer(row):
                start, end = run.span()
                ops.append(f"{xs[start]} {y} {widths[end - start]} {height}")
        # One filled path: the modules join without the hairline seams that separately
        # anti-aliased rectangles leave. The operators are written directly because
        # ReportLab's path object formats each number in pure Python, which for the thousand
        # rectangles of a QR code costs more than the rest of the page.
        c.saveState()
        c.setFillColorRGB(*s.text_colour)
        c.addLiteral("\n".join(ops) + "\nf")
        c.restoreState()
        centre = left + s.qr_size / 2
        caption = "扫描二维码验证"
        self._text(centre - _width(caption, 9) / 2, bottom - 12, caption, 9)
        english = "Scan to verify"
        self._text(centre - _width(english, 7.5) / 2, bottom - 23, english, 7.5)

    def _issuer(self, middle: float) -> Placement:
        """Draw the department and the issue date bottom right; return where the seal goes."""
        content = self.content
        room = 220.0
        centre = self.x1 - room / 2
        name = content.department_name
        size = 13.0
        while _width(name, size) > room and size > 9:
            size -= 0.5
        lines = _wrap(name, room, size)
        leading = size * 1.3
        day = format_date(content.issued_on)
        date_size = 12.0
        # Name and date are centred as a block on the seal's centre.
        block = leading * len(lines) + date_size * 1.6
        y = middle + block / 2 - size
        label = content.template.issuer_label
        self.c.saveState()
        self.c.setFillColorRGB(0.3, 0.3, 0.3)
        self._text(centre - _width(label, 9) / 2, y + size + 12, label, 9)
        self.c.restoreState()
        for line in lines:
            self._text(centre - _width(line, size) / 2, y, line, size)
            y -= leading
        y -= date_size * 0.6
        self._text(centre - _width(day, date_size) / 2, y, day, date_size)
        return Placement(page=1, x=centre, y=middle, diameter=SEAL_DIAMETER)

    def _rows(self, top: float, bottom: float) -> None:
        """Draw the preamble and the rows between ``top`` and ``bottom``, as large as fits."""
        s = self.style
        rows = self._row_texts()
        preamble = self.content.template.preamble
        width = self.x1 - self.x0
        size = s.body_size
        while True:
            leading = size * s.leading
            label_width = max(4 * size, *(_width(r.label, size) for r in rows))
            gap = size * 1.5
            value_width = width - label_width - gap
            wrapped = [_wrap(r.value, value_width, size) for r in rows]
            intro = _wrap(preamble, width, size) if preamble else []
            row_gap = size * 0.55
            needed = (
                leading * sum(len(w) for w in wrapped)
                + row_gap * (len(rows) - 1)
                + (leading * len(intro) + size if intro else 0)
            )
            if needed <= top - bottom - size or size <= s.min_body_size:
                break
            size = max(s.min_body_size, size - 0.5)
        if needed > top - bottom - size:
            longest = max(rows, key=lambda r: len(r.value))
            raise InvalidInputError(
                f"The fields of this {self.content.template.name} do not fit on one page even "
                f"at {size} points; shorten {longest.pointer[1:] or 'them'}.",
                errors=[(longest.pointer, "too long to fit on the page")],
            )
        # Share what is left between the rows, up to a line each, so short forms do not
        # huddle at the top of the page.
        spare = top - bottom - size - needed
        if len(rows) > 1:
            row_gap += min(leading, spare / 2 / (len(rows) - 1))
        y = top - size
        for line in intro:
            self._text(self.x0, y, line, size)
            y -= leading
        if intro:
            y -= size
        x_value = self.x0 + label_width + gap
        for row, lines in zip(rows, wrapped, strict=True):
            self._label(row.label, y, size)
            for line in lines:
                self._text(x_value, y, line, size)
                y -= leading
            y -= row_gap

    def _row_texts(self) -> list[_Row]:
        content = self.content
        template = content.template
        properties = template.properties
        rows: list[_Row] = []
        for row in template.rows:
            values: list[str] = []
            for name in row.fields:
                value = content.fields.get(name, properties[name].get("default"))
                if value is None:
                    break
                values.append(_display(value))
            else:
                rows.append(_Row(row.label, row.text.format(*values), "/" + row.fields[0]))
        if template.valid_until_field is None:
            start = format_date(content.valid_from)
            until = content.valid_until
            validity = f"{start}至{format_date(until)}" if until else f"{start}起{LONG_TERM}有效"
            rows.append(_Row("有效期限", validity, "/valid_until"))
        return rows

    # -- text ---------------------------------------------------------------------------------

    def _text(self, x: float, y: float, text: str, size: float) -> None:
        self.c.setFont(FONT_NAME, size)
        self.c.drawString(x, y, text)

    def _label(self, label: str, y: float, size: float) -> None:
        # Short labels are spread over four characters' width (名　　称), as on the forms.
        spacing = (4 * size - _width(label, size)) / (len(label) - 1) if len(label) < 4 else 0
        self.c.saveState()
        # A hairline stroke around the fill sets labels a little bolder than values.
        self.c.setLineWidth(size * 0.025)
        text = self.c.beginText(self.x0, y)
        text.setFont(FONT_NAME, size)
        text.setCharSpace(spacing)
        text.setTextRenderMode(2)
        text.textOut(label)
        self.c.drawText(text)
        self.c.restoreState()


def _display(value: object) -> str:
    """A field's value as printed: ISO dates the Chinese way, the rest as text."""
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return format_date(date.fromisoformat(value))
    return str(value)
