"""Build signing/fonts/EContractSerifSC.ttf from Debian's Noto Serif CJK SC (fonts-noto-cjk).

The service embeds subsets of one font in seals and licences. It must be TrueType (glyf
outlines: reportlab embeds nothing else) with 1000 units per em (pyHanko writes /W widths in
font units), and cover ASCII, CJK punctuation, full-width forms and the CJK Unified Ideographs.
Noto Serif CJK is CFF-based and shipped as a collection, so this script picks the SC face,
subsets it to those ranges, converts the cubic outlines to quadratic TrueType ones, and
renames the family (the SIL OFL 1.1 reserves the name "Source" of the upstream font).

Run once by a maintainer: ``python scripts/build-font.py`` (needs fonts-noto-cjk installed).
"""

from __future__ import annotations

import sys
from pathlib import Path

from fontTools import subset
from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTCollection, TTFont, newTable

SOURCE = Path("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc")
TARGET = Path(__file__).resolve().parents[1] / "signing" / "fonts" / "EContractSerifSC.ttf"
FAMILY = "EContract Serif SC"
RANGES = [
    (0x0020, 0x007E),
    (0x00A0, 0x00FF),
    (0x2000, 0x206F),
    (0x2160, 0x217F),
    (0x2460, 0x24FF),
    (0x25A0, 0x25FF),
    (0x3000, 0x303F),
    (0x3200, 0x32FF),
    (0x4E00, 0x9FFF),
    (0xFF00, 0xFFEF),
]
MAX_ERR = 1.0  # font units: the quadratic approximation stays within one unit of the cubic


def sc_face() -> TTFont:
    for font in TTCollection(str(SOURCE)).fonts:
        if "SC" in font["name"].getDebugName(1):
            return font
    raise SystemExit(f"no SC face in {SOURCE}")


def to_truetype(font: TTFont) -> None:
    glyph_order = font.getGlyphOrder()
    glyph_set = font.getGlyphSet()
    glyf = newTable("glyf")
    glyf.glyphOrder = glyph_order
    glyf.glyphs = {}
    for name in glyph_order:
        pen = TTGlyphPen(glyph_set)
        glyph_set[name].draw(Cu2QuPen(pen, MAX_ERR, reverse_direction=True))
        glyf[name] = pen.glyph()
    font["glyf"] = glyf
    font["loca"] = newTable("loca")
    del font["CFF "]
    if "VORG" in font:
        del font["VORG"]
    font["maxp"] = newTable("maxp")
    maxp = font["maxp"]
    maxp.tableVersion = 0x00010000
    for attr in (
        "maxZones",
        "maxTwilightPoints",
        "maxStorage",
        "maxFunctionDefs",
        "maxInstructionDefs",
        "maxStackElements",
        "maxSizeOfInstructions",
        "maxComponentElements",
    ):
        setattr(maxp, attr, 0)
    maxp.maxZones = 1
    maxp.numGlyphs = len(glyph_order)
    post = font["post"]
    post.formatType = 2.0
    post.extraNames = []
    post.mapping = {}
    post.glyphOrder = glyph_order
    font.sfntVersion = "\x00\x01\x00\x00"


def rename(font: TTFont) -> None:
    table = font["name"]
    for record in list(table.names):
        if record.nameID in (1, 3, 4, 6, 16, 17):
            table.removeNames(nameID=record.nameID)
    table.setName(FAMILY, 1, 3, 1, 0x409)
    table.setName("Regular", 2, 3, 1, 0x409)
    table.setName(f"{FAMILY} Regular", 4, 3, 1, 0x409)
    table.setName("EContractSerifSC-Regular", 6, 3, 1, 0x409)
    table.setName(f"{FAMILY}; subset of Noto Serif CJK SC", 3, 3, 1, 0x409)


def main() -> int:
    font = sc_face()
    options = subset.Options()
    options.layout_features = []  # horizontal text only: no vertical or locale alternates
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.hinting = False
    options.desubroutinize = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[u for lo, hi in RANGES for u in range(lo, hi + 1)])
    subsetter.subset(font)
    to_truetype(font)
    rename(font)
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    font.save(str(TARGET))
    print(f"{TARGET}: {TARGET.stat().st_size} bytes, {len(font.getGlyphOrder())} glyphs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
