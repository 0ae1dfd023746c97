"""The project's CJK font: where it is, checking it at start-up, and subsets of it.

One TrueType font ships with eContract (``signing/fonts/EContractSerifSC.ttf``, a subset of
Noto Serif CJK SC under the SIL Open Font License; see ``signing/fonts/README.md``). It is
about 10 MB, so nothing embeds it whole: :func:`subset_font` cuts it down to the characters a
seal or a licence actually uses. The subset is an ordinary TrueType font (1000 units per em,
with a ``cmap``), usable by this package's seal drawing and by ReportLab alike::

    from reportlab.pdfbase.pdfmetrics import registerFont
    from reportlab.pdfbase.ttfonts import TTFont

    registerFont(TTFont("EContractSerif", io.BytesIO(subset_font(text))))
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

from signing._once import computed_once
from signing.errors import SigningError

FONT_PATH = Path(__file__).resolve().parent / "fonts" / "EContractSerifSC.ttf"
"""The font file installed with the package."""

_REINSTALL = "reinstall eContract (pip install -e . in a checkout, or pip install econtract)"


class FontMissingError(SigningError):
    """The project's font file is absent or unreadable: the installation is incomplete."""

    code = "font-missing"
    title = "The seal font is missing."

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(
            f"The seal font {path} {reason}; seals and licences cannot be drawn without it. "
            f"To fix this, {_REINSTALL}."
        )
        self.path = path


class MissingGlyphsError(SigningError):
    """Text to be drawn contains characters that the project's font cannot show."""

    code = "missing-glyphs"
    title = "The text has characters the seal font cannot draw."

    def __init__(self, characters: str) -> None:
        listed = ", ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in characters)
        super().__init__(
            f"The seal font has no glyph for {listed}; "
            "use characters from the CJK Unified Ideographs block, ASCII or CJK punctuation."
        )
        self.characters = characters


@functools.cache
def font_bytes() -> bytes:
    """The whole font file, read once.

    Raises :class:`FontMissingError` when the file is absent or cannot be read.
    """
    try:
        return FONT_PATH.read_bytes()
    except FileNotFoundError:
        raise FontMissingError(FONT_PATH, "does not exist") from None
    except OSError as exc:
        raise FontMissingError(FONT_PATH, f"cannot be read ({exc.strerror})") from exc


@functools.cache
def _cmap() -> frozenset[int]:
    """The code points the font maps to a glyph."""
    # fontTools loads lazily: importing its subsetter takes 0.2 s, which a process that
    # never draws a seal should not pay.
    from fontTools.ttLib import TTFont, TTLibError  # noqa: PLC0415

    data = font_bytes()
    try:
        font = TTFont(io.BytesIO(data), lazy=True)
        if "glyf" not in font or font["head"].unitsPerEm != 1000:
            # The seal drawing and pyHanko-style /W arrays assume a TrueType font of 1000
            # units per em; anything else is a wrong or corrupted file.
            raise FontMissingError(FONT_PATH, "is not a TrueType font of 1000 units per em")
        cmap = font.getBestCmap()
    except (TTLibError, KeyError, AssertionError, ValueError) as exc:
        raise FontMissingError(FONT_PATH, f"is not a readable font ({exc})") from exc
    if not cmap:
        raise FontMissingError(FONT_PATH, "has no Unicode character map")
    return frozenset(cmap)


def check_font() -> None:
    """Make sure the font is installed and readable; call it when the service starts.

    Raises :class:`FontMissingError` otherwise, naming the file and the fix.
    """
    _cmap()


def missing_characters(text: str) -> str:
    """The distinct characters of ``text`` that the font has no glyph for, in order."""
    known = _cmap()
    return "".join(dict.fromkeys(ch for ch in text if ord(ch) not in known))


# Computed once per text even when several threads ask at once (a worker's first requests).
@computed_once(maxsize=256)
def subset_font(text: str) -> bytes:
    """The font cut down to the glyphs of ``text`` (plus ``.notdef``), as TrueType bytes.

    Subsetting reads the whole 10 MB font (about 0.15 s), so results are cached: callers ask
    once per seal or template, not once per document. Raises :class:`MissingGlyphsError`
    (a :class:`SigningError`) naming every character of ``text`` the font lacks, so that a
    seal never shows an empty box where a character should be.
    """
    missing = missing_characters(text)
    if missing:
        raise MissingGlyphsError(missing)
    from fontTools import subset  # noqa: PLC0415
    from fontTools.ttLib import TTFont  # noqa: PLC0415

    options = subset.Options()
    # Seal and licence text is laid out glyph by glyph, so shaping tables would only add
    # bytes; names stay, because ReportLab needs the PostScript name.
    options.layout_features = []
    options.drop_tables += ["BASE", "GSUB", "GPOS", "GDEF", "vhea", "vmtx", "DSIG"]
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.recalc_timestamp = False  # the same text gives the same bytes
    # TTFont stamps head.modified with the current time on save unless told not to.
    font = TTFont(io.BytesIO(font_bytes()), lazy=True, recalcTimestamp=False)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=text)
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()
