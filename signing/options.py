"""What a seal is asked to be: its PAdES level, certification, placement and look."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from signing.errors import PlacementError

if TYPE_CHECKING:
    # Only annotated here; the command line reads these options before it needs cryptography.
    from cryptography import x509

#: A seal's default diameter in points: 42 mm, the size of a department's round seal.
SEAL_DIAMETER = 119.0

_FIELD_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# The shape of a unified social credit code (GB 32100); its check character is the
# registry's to verify, which looks the department up anyway.
_CREDIT_CODE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{18}$")
_SEAL_ID = re.compile(r"^seal-[0-9a-f]{1,64}$")


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
class FieldHolder:
    """Who may fill a reserved seal field: any seal of one department, or one seal.

    The sealer writes it into the field as a seed value (ISO 32000-1 12.7.4.5, ``/SV`` with
    a mandatory ``/Cert`` constraint), so the binding travels with the file: the seal's
    certificate must name the department (``organizationIdentifier`` ``NTRCN-<code>``) and,
    for one seal, be that seal's certificate.
    """

    department_code: str | None = None
    """The department's unified social credit code."""
    seal_id: str | None = None
    """The one seal that may fill the field, when the binding names a seal."""
    seal_certificate: x509.Certificate | None = None
    """That seal's certificate; the registry sets it when it resolves ``seal_id``."""

    def __post_init__(self) -> None:
        if self.department_code is None and self.seal_id is None:
            raise PlacementError("A reserved field is bound to a department or to a seal.")
        if self.department_code is not None and not _CREDIT_CODE.match(self.department_code):
            raise PlacementError(
                "A department is named by its unified social credit code (18 characters), "
                f"not {self.department_code!r}."
            )
        if self.seal_certificate is not None and self.seal_id is None:
            raise PlacementError("A seal's certificate binds a field only with the seal's id.")

    @classmethod
    def parse(cls, text: str) -> FieldHolder:
        """Read a department's credit code or a seal's id (``seal-…``)."""
        text = text.strip()
        if _CREDIT_CODE.match(text):
            return cls(department_code=text)
        if _SEAL_ID.match(text):
            return cls(seal_id=text)
        raise PlacementError(
            "A reserved field is bound to a department's unified social credit code "
            f"(18 characters) or to a seal id (seal-…), not {text!r}."
        )

    @property
    def resolved(self) -> bool:
        """Whether the sealer has what it needs: a department, and a seal's certificate
        when a seal is named."""
        return self.department_code is not None and (
            self.seal_id is None or self.seal_certificate is not None
        )

    def describe(self) -> str:
        """The holder as a person reads it: the department's code, and the seal if named."""
        if self.seal_id is None:
            return f"department {self.department_code}"
        if self.department_code is None:
            return f"seal {self.seal_id}"
        return f"seal {self.seal_id} of department {self.department_code}"


@dataclass(frozen=True, kw_only=True)
class ReservedField:
    """An empty seal field added in the certified revision for a department that seals later."""

    name: str
    """The field's name, which the later department gives to fill it."""
    placement: Placement | None = None
    """Where its visible seal will go; ``None`` for an invisible seal."""
    holder: FieldHolder | None = None
    """Who may fill it; ``None`` leaves it open to any seal (the older, unbound form)."""

    def __post_init__(self) -> None:
        if not _FIELD_NAME.match(self.name):
            raise PlacementError(
                f"A seal field name is 1 to 64 letters, digits, '_', '.' or '-', not {self.name!r}."
            )

    @classmethod
    def parse(cls, text: str) -> ReservedField:
        """Read ``NAME[@PAGE:X,Y][=HOLDER]`` (the command line's ``--reserve``).

        ``HOLDER`` is a department's unified social credit code or a seal id.
        """
        spec, equals, holder = text.partition("=")
        name, _, where = spec.partition("@")
        return cls(
            name=name.strip(),
            placement=Placement.parse(where) if where.strip() else None,
            holder=FieldHolder.parse(holder) if equals else None,
        )


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
    reserve_fields: tuple[ReservedField, ...] = field(default=())
    """Empty seal fields to add in the certified revision, for the departments that will
    seal later (parallel approval), each bound to who may fill it; only with
    ``FORM_FILLING``."""
    reason: str | None = None
    """The reason recorded in the signature."""
    location: str | None = None
    """The place recorded in the signature."""
    keep_metadata: bool = False
    """Leave the document's metadata (``/Info`` and the XMP packet) as the document has it,
    for a document the caller made a moment ago for this seal, whose metadata already says
    what it is and when it was made (an issued licence: its ``/ModDate`` is the moment of
    issuance). Otherwise the sealed revision refreshes it as pyHanko does (the modification
    date, the producer, the XMP packet parsed and written again: a fifth of a licence's
    seal)."""

    def __post_init__(self) -> None:
        names = [f.name for f in self.reserve_fields]
        if self.field_name is not None:
            if not _FIELD_NAME.match(self.field_name):
                raise PlacementError(
                    "A seal field name is 1 to 64 letters, digits, '_', '.' or '-', "
                    f"not {self.field_name!r}."
                )
            names.append(self.field_name)
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

        ``visible`` is ``PAGE:X,Y``; each ``reserve`` entry is ``NAME[@PAGE:X,Y][=HOLDER]``
        (see :meth:`ReservedField.parse`).
        """
        return cls(
            level=level,
            certification=certification,
            placement=Placement.parse(visible) if visible else None,
            cross_page=cross_page,
            field_name=field_name or None,
            reserve_fields=tuple(ReservedField.parse(entry) for entry in reserve),
        )
