"""The template model: a licence type's JSON Schema of fields and what its printed form shows.

Each :class:`LicenceTemplate` describes one certificate type (营业执照, 食品经营许可证, …): the
fields an approval system sends, as a JSON Schema (draft 2020-12) with an ``examples`` entry
of valid fields that a client can copy, and the rows of the printed form. The types
themselves are defined in :mod:`econtract.issuance._catalogue`; how the form is drawn (sizes,
colours, where the QR code goes) belongs to :mod:`econtract.issuance._layout` and
:mod:`econtract.issuance._draw`.

:func:`validate_fields` is the one gate for field data: the schema, GB 32100 credit codes,
GB 11643 identity numbers, the free-text rules of :func:`econtract.text.clean_text`, and the
licence font's coverage. It names every bad field by JSON pointer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import MappingProxyType
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from jsonschema.exceptions import SchemaError

from econtract.errors import InvalidInputError
from econtract.text import clean_text
from econtract.uscc import InvalidCreditCodeError, validate_credit_code
from signing.fonts import missing_characters

CREDIT_CODE_PATTERN = r"^[0-9A-HJ-NP-RTUW-Y]{2}\d{6}[0-9A-Z]{8}[0-9X][0-9A-HJ-NP-RTUW-Y]$"
"""The shape of a unified social credit code; fields with this pattern also get the full
GB 32100 / GB 11714 check of :func:`econtract.uscc.validate_credit_code`."""

ID_NUMBER_PATTERN = r"^[1-9]\d{5}(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])\d{3}[0-9X]$"
"""The shape of a resident identity card number (GB 11643); fields with this pattern also get
its check character verified, and must be listed in :attr:`LicenceTemplate.masked_fields`."""

LONG_TERM = "长期"
"""The value of a term field that has no end date (营业期限 长期)."""

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
"""The JSON Schema dialect every template's schema declares."""

_NUMBER_PREFIX = re.compile(r"^[A-Z]{2,6}$")
_CODE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


@dataclass(frozen=True, kw_only=True)
class FormRow:
    """One label/value row of the printed form."""

    label: str
    """The label printed on the left, as on the paper form (e.g. 法定代表人)."""
    fields: tuple[str, ...]
    """The fields whose values make up the row; the row is left out when a field is absent
    and its schema gives no ``default``."""
    text: str = "{0}"
    """How the values are joined, as a :meth:`str.format` pattern over ``fields`` in order;
    dates are already written the Chinese way (2024年05月06日) when they are substituted."""


@dataclass(frozen=True, kw_only=True, eq=False)
class LicenceTemplate:
    """A certificate type: its fields' schema and what its printed form shows.

    Templates compare by identity: each exists once, in :data:`~econtract.issuance.TEMPLATES`.
    The ``schema`` dictionary is shared; callers that want to change it (to publish it, say)
    copy it first.
    """

    code: str
    """The stable machine name, e.g. ``business_licence``."""
    name: str
    """The Chinese name printed as the form's title, e.g. 营业执照."""
    name_en: str
    """The English name, printed under the title."""
    version: int
    """The version of the schema and form; a change that old data would not satisfy bumps it."""
    schema: dict[str, Any]
    """The JSON Schema (draft 2020-12) of the fields, with one complete valid example in
    ``examples``."""
    holder_name_field: str
    """The field naming the holder (the business, the operator, the builder)."""
    holder_code_field: str | None
    """The field with the holder's unified social credit code, or ``None`` when the form has
    none; it may be absent for a holder who is a person (then the identity number is used)."""
    validity_years: int | None
    """The default validity when the fields give no end date: years from the start, ending the
    day before the anniversary (2024-05-06 → 2029-05-05); ``None`` for no end."""
    number_prefix: str
    """A short type code (2 to 6 capital letters) that starts the licence numbers."""
    national_type_code: str
    """The national type code (证照类型代码, GB/T 36904) in every licence identifier of the
    type: the defining authority's unified social credit code and 3 digits."""
    rows: tuple[FormRow, ...]
    """The form's label/value rows, top to bottom."""
    masked_fields: tuple[str, ...] = ()
    """Fields holding personal identity numbers: the QR verification page masks them."""
    header_fields: tuple[str, ...] = ()
    """Fields printed in the top left corner under their schema ``title`` (the business
    licence's 统一社会信用代码) rather than as rows."""
    valid_until_field: str | None = None
    """The field giving the end of validity (a date, or 长期), when the form carries one."""
    past_date_fields: tuple[str, ...] = ()
    """Date fields that cannot lie after the day of issue (成立日期: a business is not
    established in the future)."""
    issuer_label: str = "发证机关"
    """What the issuing department is called on the form (登记机关 on a business licence)."""
    preamble: str = ""
    """A sentence printed under the title, before the rows."""
    notes: tuple[str, ...] = ()
    """Small print at the foot of the page, one paragraph each."""
    _validator: Draft202012Validator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not _CODE.match(self.code):
            raise ValueError(f"A template code is lower-case snake_case, not {self.code!r}.")
        if not _NUMBER_PREFIX.match(self.number_prefix):
            raise ValueError(
                f"A number prefix is 2 to 6 capital letters, not {self.number_prefix!r}."
            )
        if self.version < 1:
            raise ValueError(f"Template versions count from 1, not {self.version}.")
        if not (len(self.national_type_code) == 21 and self.national_type_code[18:].isdigit()):
            raise ValueError(
                "A national type code is a credit code and 3 digits, "
                f"not {self.national_type_code!r}."
            )
        try:
            validate_credit_code(self.national_type_code[:18])
        except InvalidCreditCodeError as exc:
            raise ValueError(f"The national type code of {self.code}: {exc}") from None
        if self.validity_years is not None and self.validity_years < 1:
            raise ValueError(f"A validity is at least one year, not {self.validity_years}.")
        try:
            Draft202012Validator.check_schema(self.schema)
        except SchemaError as exc:
            raise ValueError(f"The schema of {self.code} is not valid: {exc.message}") from exc
        if self.schema.get("$schema") != SCHEMA_DIALECT:
            raise ValueError(f"The schema of {self.code} must declare {SCHEMA_DIALECT}.")
        if self.schema.get("additionalProperties") is not False:
            raise ValueError(f"The schema of {self.code} must forbid unknown fields.")
        if not self.schema.get("examples"):
            raise ValueError(f"The schema of {self.code} needs an example for clients to copy.")
        properties = self.properties
        for name, prop in properties.items():
            if _is_text(prop) and "maxLength" not in prop:
                raise ValueError(f"The field {name} of {self.code} needs a maxLength.")
        named = [
            self.holder_name_field,
            *([self.holder_code_field] if self.holder_code_field else []),
            *self.masked_fields,
            *self.header_fields,
            *([self.valid_until_field] if self.valid_until_field else []),
            *(f for row in self.rows for f in row.fields),
        ]
        for name in named:
            if name not in properties:
                raise ValueError(f"{self.code} refers to {name!r}, which its schema lacks.")
        for name in self.past_date_fields:
            if properties.get(name, {}).get("format") != "date":
                raise ValueError(f"{name} of {self.code} is not a date field of its schema.")
        if properties[self.holder_name_field].get("maxLength", 0) > 100:
            raise ValueError("A holder's name is at most 100 characters.")
        for name, prop in properties.items():
            if prop.get("pattern") == ID_NUMBER_PATTERN and name not in self.masked_fields:
                raise ValueError(
                    f"{name} of {self.code} is an identity number; list it in masked_fields."
                )
        object.__setattr__(
            self,
            "_validator",
            Draft202012Validator(self.schema, format_checker=FormatChecker()),
        )

    @property
    def properties(self) -> Mapping[str, Mapping[str, Any]]:
        """The schema of each field, by name, in the order the schema lists them."""
        props: dict[str, Mapping[str, Any]] = self.schema["properties"]
        return MappingProxyType(props)

    @property
    def id_number_fields(self) -> tuple[str, ...]:
        """The fields holding a resident identity number (GB 11643), in schema order."""
        return tuple(
            name
            for name, prop in self.properties.items()
            if prop.get("pattern") == ID_NUMBER_PATTERN
        )

    @property
    def example(self) -> dict[str, Any]:
        """A copy of the schema's first example: a complete set of valid fields."""
        first: dict[str, Any] = self.schema["examples"][0]
        return dict(first)

    def valid_until(self, fields: Mapping[str, Any], valid_from: date) -> date | None:
        """The last day of validity of a licence with these (validated) ``fields``.

        The end date field wins when the template has one (``None`` for 长期); otherwise
        ``validity_years`` from ``valid_from``; otherwise there is no end (``None``).
        """
        if self.valid_until_field is not None:
            default = self.properties[self.valid_until_field].get("default")
            value = fields.get(self.valid_until_field, default)
            if value is None or value == LONG_TERM:
                return None
            return date.fromisoformat(str(value))
        if self.validity_years is None:
            return None
        return _add_years(valid_from, self.validity_years) - timedelta(days=1)

    def validity(
        self,
        fields: Mapping[str, Any],
        *,
        valid_from: date | None,
        valid_until: date | None,
        today: date,
        at: str = "",
    ) -> tuple[date, date | None]:
        """The first and last day of validity of a licence with these (validated) ``fields``.

        ``valid_from`` is today unless given; ``valid_until``, when not given, comes from
        :meth:`valid_until`. A validity that ends before it starts, or before ``today`` (a
        licence that would never be valid), is refused with an
        :class:`~econtract.errors.InvalidInputError` that points at what set the end: the
        request's ``/valid_until``, or the end-date field under ``at`` (the pointer of the
        fields in the caller's request, e.g. ``/fields``).
        """
        start = valid_from or today
        end = valid_until or self.valid_until(fields, start)
        if valid_until is not None or self.valid_until_field is None:
            pointer, what = "/valid_until", "valid_until"
        else:
            title = self.properties[self.valid_until_field].get("title", "")
            pointer = at + _pointer(self.valid_until_field)
            what = f"{self.valid_until_field} ({title})" if title else self.valid_until_field
        if end is not None and end < start:
            raise InvalidInputError(
                f"The validity ends before it starts: {what} is {end}, the validity starts on "
                f"{start}.",
                errors=[(pointer, f"{end} is before the start of validity, {start}")],
            )
        if end is not None and end < today:
            raise InvalidInputError(
                f"The validity lies entirely in the past: {what} is {end}, before today "
                f"({today}); such a licence would never be valid.",
                errors=[(pointer, f"{end} is before today, {today}")],
            )
        return start, end

    def validate(self, fields: object) -> dict[str, Any]:
        """Shorthand for :func:`validate_fields` with this template."""
        return validate_fields(self, fields)


def validate_fields(
    template: LicenceTemplate, fields: object, *, at: str = "", today: date | None = None
) -> dict[str, Any]:
    """Return ``fields`` checked against ``template``, with text NFC-normalised and stripped.

    Raises :class:`~econtract.errors.InvalidInputError` listing every bad field as a
    ``(json_pointer, message)`` pair, one reason per field (the most basic first): text that
    :func:`~econtract.text.clean_text` refuses (empty, too long, control characters,
    bidirectional overrides), then credit codes and identity numbers (GB 32100, GB 11643),
    then the schema (required, unknown, pattern, length, date…), then dates after ``today``
    in :attr:`~LicenceTemplate.past_date_fields` (when ``today`` is given), then characters
    the licence font cannot draw. Pointers are relative to the fields, prefixed with ``at``:
    the pointer of the fields in what the caller sent (``/fields`` in an issuing request).
    """
    if not isinstance(fields, dict):
        raise InvalidInputError(
            f"The fields of a {template.name} ({template.code}) must be a JSON object, "
            f"not {type(fields).__name__}.",
            errors=[(at, "must be an object")],
        )
    properties = template.properties
    errors: list[tuple[str, str]] = []
    cleaned: dict[str, Any] = dict(fields)
    for name, value in fields.items():
        prop = properties.get(name)
        if prop is None or not isinstance(value, str) or "maxLength" not in prop:
            continue  # unknown fields and wrong types are the schema's to report
        try:
            cleaned[name] = clean_text(value, field=name, max_length=prop["maxLength"])
        except InvalidInputError as exc:
            errors.extend((pointer, exc.message.rstrip(".")) for pointer, _ in exc.errors)

    # Check characters first: their messages say more than the schema's pattern does.
    for name, prop in properties.items():
        value = cleaned.get(name)
        if not isinstance(value, str):
            continue
        if prop.get("pattern") == CREDIT_CODE_PATTERN:
            try:
                validate_credit_code(value)
            except InvalidCreditCodeError as exc:
                errors.append((_pointer(name), str(exc)))
        elif prop.get("pattern") == ID_NUMBER_PATTERN and not is_valid_id_number(value):
            errors.append((_pointer(name), "is not a resident identity number (GB 11643)"))

    for error in template._validator.iter_errors(cleaned):
        errors.extend(_schema_errors(error, properties))

    if today is not None:
        for name in template.past_date_fields:
            day = _date_or_none(cleaned.get(name))
            if day is not None and day > today:
                title = properties[name].get("title", name)
                errors.append((_pointer(name), f"{day} ({title}) is after today, {today}"))

    for name in properties:
        value = cleaned.get(name)
        if not isinstance(value, str):
            continue
        missing = missing_characters(value)
        if missing:
            listed = ", ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in missing)
            errors.append(
                (_pointer(name), f"{name} has characters the licence font cannot draw: {listed}")
            )

    if errors:
        order = {_pointer(name): i for i, name in enumerate(properties)}
        first: dict[str, str] = {}
        for pointer, message in errors:
            first.setdefault(pointer, message)
        bad = [
            (at + pointer, message)
            for pointer, message in sorted(
                first.items(), key=lambda item: (order.get(item[0], len(order)), item[0])
            )
        ]
        raise InvalidInputError(
            f"{len(bad)} field(s) of a {template.name} ({template.code}) are not valid: "
            + "; ".join(f"{pointer or '(the fields)'}: {message}" for pointer, message in bad)
            + ".",
            errors=bad,
        )
    return cleaned


# ---------------------------------------------------------------------------------------------
# Schema errors as pointers
# ---------------------------------------------------------------------------------------------


def _pointer(*parts: object) -> str:
    """A JSON pointer (RFC 6901) to ``parts``."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _schema_errors(
    error: ValidationError, properties: Mapping[str, Mapping[str, Any]]
) -> list[tuple[str, str]]:
    """``(pointer, message)`` pairs for one jsonschema error, pointing at the field at fault."""
    path = list(error.absolute_path)
    where = _pointer(*path)
    instance = error.instance
    kind = error.validator
    if kind == "required" and isinstance(instance, dict):
        required: list[str] = list(error.validator_value)
        return [(_pointer(*path, n), "is required") for n in required if n not in instance]
    if kind == "additionalProperties" and isinstance(instance, dict):
        return [
            (_pointer(*path, n), "is not a field of this certificate type")
            for n in instance
            if n not in properties
        ]
    if kind in ("oneOf", "anyOf") and all(
        set(sub) == {"required"} for sub in error.validator_value
    ):
        names = [n for sub in error.validator_value for n in sub["required"]]
        return [(where, "give exactly one of " + ", ".join(names))]
    messages = {
        "maxLength": lambda: f"is longer than {error.validator_value} characters",
        "minLength": lambda: (
            "must not be empty"
            if error.validator_value == 1
            else f"is shorter than {error.validator_value} characters"
        ),
        "pattern": lambda: _shape_message(path, properties),
        "format": lambda: f"is not a valid {error.validator_value} (YYYY-MM-DD)",
        "type": lambda: f"must be of type {error.validator_value}",
        "enum": lambda: "must be one of " + ", ".join(map(str, error.validator_value)),
        "minimum": lambda: f"must be at least {error.validator_value}",
        "maximum": lambda: f"must be at most {error.validator_value}",
        "anyOf": lambda: "must be " + " or ".join(_describe(s) for s in error.validator_value),
    }
    describe = messages.get(str(kind))
    if describe is not None:
        return [(where, describe())]
    # Anything rarer keeps jsonschema's wording, cut short: the value may be huge.
    return [(where, error.message[:200])]


def _shape_message(path: list[Any], properties: Mapping[str, Mapping[str, Any]]) -> str:
    prop = properties.get(str(path[0]), {}) if path else {}
    if prop.get("pattern") == CREDIT_CODE_PATTERN:
        return "is not a unified social credit code (18 characters, GB 32100)"
    if prop.get("pattern") == ID_NUMBER_PATTERN:
        return "is not a resident identity number (18 characters, GB 11643)"
    return f"does not have the form {prop.get('pattern', 'required')}"


def _describe(schema: Mapping[str, Any]) -> str:
    if "const" in schema:
        return repr(schema["const"])
    if schema.get("format") == "date":
        return "a date (YYYY-MM-DD)"
    return str(schema.get("title") or schema.get("type") or "another form")


def _is_text(prop: Mapping[str, Any]) -> bool:
    if prop.get("type") == "string":
        return True
    return any(_is_text(sub) for sub in prop.get("anyOf", ()))


def _date_or_none(value: object) -> date | None:
    """``value`` as a date when it is an ISO date (YYYY-MM-DD); the schema reports the rest."""
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def is_valid_id_number(number: str) -> bool:
    """Whether ``number`` is a resident identity number with the right check character."""
    if not re.match(ID_NUMBER_PATTERN, number):
        return False
    total = sum(int(c) * w for c, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return number[17] == "10X98765432"[total % 11]


def _add_years(start: date, years: int) -> date:
    """The anniversary of ``start`` after ``years``."""
    try:
        return start.replace(year=start.year + years)
    except ValueError:
        # 29 February's anniversary in a common year is 1 March, so the term ends on 28 February.
        return date(start.year + years, 3, 1)
