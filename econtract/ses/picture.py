"""The seal's picture for its GB/T 38540 seal data: the red round seal as a PNG.

The PDF appearance (:mod:`signing.appearance`) is vector operators that only a PDF renderer
rasterises; the seal data needs an image (``SES_ESPictrueInfo`` type ``PNG``), so the same
design (ring, star, name along the upper arc, seal name under the star) is drawn here with
Pillow (a reportlab dependency already installed) in the project's font.
"""

from __future__ import annotations

import io
import math

from PIL import Image, ImageDraw, ImageFont

from signing.fonts import FONT_PATH

__all__ = ["SEAL_SIZE_MM", "draw_seal_png"]

SEAL_SIZE_MM = 40
"""The seal's diameter in millimetres (GB/T 38540 states the picture's size in mm)."""

_PX = 472  # 40 mm at 300 dpi
_RED = (230, 0, 18, 255)


def _star(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float) -> None:
    points = []
    for i in range(10):
        radius = r if i % 2 == 0 else r * 0.382
        angle = -math.pi / 2 + i * math.pi / 5
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    draw.polygon(points, fill=_RED)


def draw_seal_png(department_name: str, seal_name: str) -> bytes:
    """A transparent PNG of the round seal naming ``department_name`` and ``seal_name``."""
    image = Image.new("RGBA", (_PX, _PX), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    centre, border = _PX / 2, _PX * 0.035
    draw.ellipse((border, border, _PX - border, _PX - border), outline=_RED, width=int(border))
    _star(draw, centre, centre, _PX * 0.15)
    size = int(_PX * 0.11)
    font = ImageFont.truetype(str(FONT_PATH), size)
    # The name along the upper arc, each character turned to face the centre.
    span = min(math.radians(240), len(department_name) * math.radians(24))
    radius = centre - border * 2 - size * 0.6
    for i, ch in enumerate(department_name):
        step = span / max(len(department_name) - 1, 1)
        angle = -math.pi / 2 - span / 2 + i * step if len(department_name) > 1 else -math.pi / 2
        glyph = Image.new("RGBA", (size * 2, size * 2), (0, 0, 0, 0))
        ImageDraw.Draw(glyph).text((size, size), ch, font=font, fill=_RED, anchor="mm")
        glyph = glyph.rotate(-math.degrees(angle) - 90, resample=Image.Resampling.BICUBIC)
        x = centre + radius * math.cos(angle) - size
        y = centre + radius * math.sin(angle) - size
        image.alpha_composite(glyph, (int(x), int(y)))
    if seal_name:
        small = ImageFont.truetype(str(FONT_PATH), int(size * 0.8))
        draw.text((centre, centre + _PX * 0.25), seal_name, font=small, fill=_RED, anchor="mm")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
