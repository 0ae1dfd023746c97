"""The layout of a licence: how a page looks (:class:`LicenceStyle`) and what it says
(:class:`LicenceContent`, validated whole in its constructor), apart from the drawing.

The template (:mod:`econtract.issuance._templates`) says which rows a type prints; this module
holds the rest of a page's content and its style; :mod:`econtract.issuance._draw` draws it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from types import MappingProxyType
from typing import Any

from reportlab.lib.pagesizes import A4

from econtract.errors import InvalidInputError
from econtract.issuance._templates import LicenceTemplate, validate_fields
from econtract.text import clean_text
from signing.fonts import missing_characters
from signing.options import Placement

MM = 72 / 25.4
"""One millimetre in PDF points."""
_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
_URL = re.compile(r"^https?://[!-~]+$")

Colour = tuple[float, float, float]


@dataclass(frozen=True, kw_only=True)
class LicenceStyle:
    """How a licence page looks, apart from what it says. Lengths are in PDF points."""

    page_size: tuple[float, float] = A4
    """The page's width and height."""
    frame_inset: float = 24.0
    """Distance from the page edge to the outer frame line."""
    frame_width: float = 3.0
    """The outer frame line's width; an inner hairline frame runs inside it."""
    frame_colour: Colour = (0.55, 0.16, 0.12)
    """The frame's colour: the red-brown of the paper forms."""
    text_colour: Colour = (0.08, 0.08, 0.08)
    """The colour of all text and of the QR code."""
    content_inset: float = 56.0
    """Distance from the page edge to the text."""
    title_size: float = 38.0
    """The title's size; long titles are set smaller to fit."""
    body_size: float = 11.5
    """The rows' largest size; rows are set smaller, down to ``min_body_size``, until the
    page holds them."""
    min_body_size: float = 7.0
    """The rows' smallest size."""
    leading: float = 1.45
    """Line spacing as a multiple of the size."""
    qr_size: float = 120.0
    """The QR code's side, quiet zone included (42 mm)."""
    qr_min_module: float = 1.2
    """The smallest module side: below it (2.5 pixels at 150 dpi) a scan is unreliable, so a
    URL needing more modules is refused rather than drawn."""
    notes_size: float = 7.5
    """The size of the small print at the foot."""

    def __post_init__(self) -> None:
        if not 0 < self.min_body_size <= self.body_size:
            raise ValueError("min_body_size must be positive and at most body_size.")
        if self.qr_size < 25 * MM:
            raise ValueError("A QR code under 25 mm does not scan reliably from print.")


DEFAULT_STYLE = LicenceStyle()
"""The style of every licence unless a caller asks for another."""


@dataclass(frozen=True, kw_only=True)
class LicenceContent:
    """Everything printed on one licence. The constructor validates it all.

    ``fields`` are checked with :func:`~econtract.issuance.validate_fields` and kept in
    their cleaned form; text outside the font is refused, naming the field.
    """

    template: LicenceTemplate
    """The certificate type."""
    fields: Mapping[str, Any]
    """The template's fields."""
    number: str
    """The licence number (证照编号): letters, digits and hyphens."""
    department_name: str
    """The issuing department, printed where its seal goes."""
    issued_on: date
    """The issue date printed under the department's name."""
    issued_at: datetime | None = None
    """The moment of issuance, written as the PDF's creation date; midnight (China Standard
    Time) of ``issued_on`` when unset."""
    valid_from: date
    """The first day of validity."""
    valid_until: date | None
    """The last day of validity; ``None`` for no end (长期)."""
    verify_url: str
    """The URL the QR code encodes: the verification page of this licence."""

    def __post_init__(self) -> None:
        for name in ("issued_on", "valid_from"):
            if not isinstance(getattr(self, name), date):
                raise TypeError(f"{name} must be a date.")
        if self.issued_at is not None and (
            not isinstance(self.issued_at, datetime) or self.issued_at.tzinfo is None
        ):
            raise TypeError("issued_at must be a timezone-aware datetime.")
        if self.valid_until is not None and self.valid_until < self.valid_from:
            raise InvalidInputError(
                f"The licence would expire ({self.valid_until}) before it starts "
                f"({self.valid_from}).",
                errors=[("/valid_until", "before valid_from")],
            )
        if not _NUMBER.match(self.number):
            raise InvalidInputError(
                f"A licence number is 1 to 64 letters, digits and hyphens, not {self.number!r}.",
                errors=[("/number", "not a licence number")],
            )
        if len(self.verify_url) > 2048 or not _URL.match(self.verify_url):
            raise InvalidInputError(
                "The verification URL must be an http(s) URL of printable ASCII, at most "
                "2048 characters.",
                errors=[("/verify_url", "not an http(s) URL")],
            )
        department = clean_text(self.department_name, field="department_name", max_length=100)
        missing = missing_characters(department)
        if missing:
            raise InvalidInputError(
                f"The department name has characters the licence font cannot draw: "
                f"{', '.join(f'{ch!r} (U+{ord(ch):04X})' for ch in missing)}.",
                errors=[("/department_name", "characters outside the licence font")],
            )
        object.__setattr__(self, "department_name", department)
        fields = validate_fields(self.template, dict(self.fields))
        object.__setattr__(self, "fields", MappingProxyType(fields))


@dataclass(frozen=True, kw_only=True)
class RenderedLicence:
    """A drawn licence, not yet sealed."""

    pdf: bytes
    """The PDF: one A4 page."""
    seal_placement: Placement
    """Where the issuing department's seal goes: over its name and the issue date."""


def format_date(day: date) -> str:
    """A date as the forms print it: 2024年05月06日."""
    return f"{day.year}年{day.month:02d}月{day.day:02d}日"
