"""What a seal is asked to be: its PAdES level, certification, placement and look."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from signing.errors import PlacementError

#: A seal's default diameter in points: 42 mm, the size of a department's round seal.
SEAL_DIAMETER = 119.0

_FIELD_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class SealLevel(StrEnum):
    """PAdES baseline levels (ETSI EN 319 142-1)."""

    B_B = "B-B"
    """A signature only."""
    B_T = "B-T"
    """Plus a signature timestamp: proof of when."""
    B_LT = "B-LT"
    """Plus the chain, CRLs and OCSP responses in the document security store: checkable
    offline and after the seal's certificate expires."""
    B_LTA = "B-LTA"
    """Plus a document timestamp over all of it, renewable before its algorithms weaken."""

    @property
    def timestamped(self) -> bool:
        """Whether the level needs a timestamp authority."""
        return self is not SealLevel.B_B

    @property
    def long_term(self) -> bool:
        """Whether the level embeds validation data."""
        return self in (SealLevel.B_LT, SealLevel.B_LTA)


class Certification(StrEnum):
    """Whether the seal certifies the document (DocMDP) and what it then allows."""

    APPROVAL = "approval"
    """An approval seal: no DocMDP; added to a document that may already be certified."""
    NO_CHANGES = "no-changes"
    """Certify: nothing may change after this seal (an issued licence)."""
    FORM_FILLING = "form-filling"
    """Certify: later seals may fill the empty seal fields (parallel approval)."""


@dataclass(frozen=True, kw_only=True)
class Placement:
    """Where a visible seal goes: a page and the seal's centre, in PDF points."""

    page: int
    """The page, counted from 1."""
    x: float
    """Horizontal position of the seal's centre, from the page's left edge."""
    y: float
    """Vertical position of the seal's centre, from the page's bottom edge."""
    diameter: float = SEAL_DIAMETER
    """The seal's diameter."""

    def __post_init__(self) -> None:
        if self.page < 1:
            raise PlacementError(f"Pages are counted from 1; page {self.page} does not exist.")
        if not 20.0 <= self.diameter <= 400.0:
            raise PlacementError(f"A seal's diameter is 20 to 400 points, not {self.diameter}.")

    @classmethod
    def parse(cls, text: str) -> Placement:
        """Read ``PAGE:X,Y`` (the command line's ``--visible``)."""
        match = re.fullmatch(r"\s*(\d+)\s*:\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*", text)
        if match is None:
            raise PlacementError(f"A placement is PAGE:X,Y (for example 1:450,120), not {text!r}.")
        return cls(page=int(match[1]), x=float(match[2]), y=float(match[3]))

    def box(self) -> tuple[float, float, float, float]:
        """The seal's bounding box (x1, y1, x2, y2)."""
        r = self.diameter / 2
        return (self.x - r, self.y - r, self.x + r, self.y + r)


@dataclass(frozen=True, kw_only=True)
class SealOptions:
    """How to seal one document."""

    level: SealLevel = SealLevel.B_LT
    """The PAdES level."""
    certification: Certification = Certification.APPROVAL
    """Certify the document, or add an approval seal."""
    placement: Placement | None = None
    """Where the visible seal goes; ``None`` for an invisible seal."""
    cross_page: bool = False
    """Also stamp a cross-page seal (骑缝章) in slices along the right edge of every page."""
    field_name: str | None = None
    """The signature field to create, or the empty field to fill; generated when ``None``."""
    reserve_fields: tuple[tuple[str, Placement | None], ...] = field(default=())
    """Empty seal fields to add in the certified revision, for the departments that will
    seal later (parallel approval); only with ``FORM_FILLING``."""
    reason: str | None = None
    """The reason recorded in the signature."""
    location: str | None = None
    """The place recorded in the signature."""

    def __post_init__(self) -> None:
        names = [n for n, _ in self.reserve_fields]
        if self.field_name is not None:
            names.append(self.field_name)
        for name in names:
            if not _FIELD_NAME.match(name):
                raise PlacementError(
                    f"A seal field name is 1 to 64 letters, digits, '_', '.' or '-', not {name!r}."
                )
        if len(set(names)) != len(names):
            raise PlacementError("Seal field names must differ from each other.")
        if self.reserve_fields and self.certification is not Certification.FORM_FILLING:
            raise PlacementError(
                "Empty seal fields for later departments need certification 'form-filling'."
            )

    @classmethod
    def from_text(
        cls,
        *,
        level: SealLevel,
        certification: Certification = Certification.APPROVAL,
        visible: str | None = None,
        cross_page: bool = False,
        field_name: str | None = None,
        reserve: Sequence[str] = (),
    ) -> SealOptions:
        """Options as the command line and the API spell them.

        ``visible`` is ``PAGE:X,Y``; each ``reserve`` entry is ``NAME`` (an invisible field)
        or ``NAME@PAGE:X,Y``.
        """
        return cls(
            level=level,
            certification=certification,
            placement=Placement.parse(visible) if visible else None,
            cross_page=cross_page,
            field_name=field_name or None,
            reserve_fields=tuple(_reserved_field(entry) for entry in reserve),
        )


def _reserved_field(entry: str) -> tuple[str, Placement | None]:
    name, _, where = entry.partition("@")
    return name.strip(), Placement.parse(where) if where else None
