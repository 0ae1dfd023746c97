"""Licence types as templates: the JSON Schema of their fields and what the printed form shows.

Each :class:`LicenceTemplate` describes one certificate type (营业执照, 食品经营许可证, …): the
fields an approval system sends, as a JSON Schema (draft 2020-12) with an ``examples`` entry
of valid fields that a client can copy, and the rows of the printed form. How the form is
drawn (sizes, colours, where the QR code goes) belongs to :mod:`econtract.render`.

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

from econtract.errors import InvalidInputError, NotFoundError
from econtract.text import clean_text
from econtract.uscc import InvalidCreditCodeError, validate_credit_code
from signing.fonts import missing_characters

__all__ = [
    "CREDIT_CODE_PATTERN",
    "ID_NUMBER_PATTERN",
    "TEMPLATES",
    "FormRow",
    "LicenceTemplate",
    "get_template",
    "validate_fields",
]

CREDIT_CODE_PATTERN = r"^[0-9A-HJ-NP-RTUW-Y]{2}\d{6}[0-9A-Z]{8}[0-9X][0-9A-HJ-NP-RTUW-Y]$"
"""The shape of a unified social credit code; fields with this pattern also get the full
GB 32100 / GB 11714 check of :func:`econtract.uscc.validate_credit_code`."""

ID_NUMBER_PATTERN = r"^[1-9]\d{5}(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])\d{3}[0-9X]$"
"""The shape of a resident identity card number (GB 11643); fields with this pattern also get
its check character verified, and must be listed in :attr:`LicenceTemplate.masked_fields`."""

LONG_TERM = "长期"
"""The value of a term field that has no end date (营业期限 长期)."""

_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
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

    Templates compare by identity: each exists once, in :data:`TEMPLATES`. The ``schema``
    dictionary is shared; callers that want to change it (to publish it, say) copy it first.
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
        if self.validity_years is not None and self.validity_years < 1:
            raise ValueError(f"A validity is at least one year, not {self.validity_years}.")
        try:
            Draft202012Validator.check_schema(self.schema)
        except SchemaError as exc:
            raise ValueError(f"The schema of {self.code} is not valid: {exc.message}") from exc
        if self.schema.get("$schema") != _SCHEMA_DIALECT:
            raise ValueError(f"The schema of {self.code} must declare {_SCHEMA_DIALECT}.")
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
        elif prop.get("pattern") == ID_NUMBER_PATTERN and not _id_number_valid(value):
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


def get_template(code: str) -> LicenceTemplate:
    """The template called ``code``; :class:`~econtract.errors.NotFoundError` otherwise."""
    try:
        return TEMPLATES[code]
    except KeyError:
        known = ", ".join(sorted(TEMPLATES))
        raise NotFoundError(
            f"There is no certificate type {code!r}; the known types are {known}."
        ) from None


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


def _id_number_valid(number: str) -> bool:
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


# ---------------------------------------------------------------------------------------------
# The templates
# ---------------------------------------------------------------------------------------------


def _text(title: str, description: str, max_length: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "string",
        "title": title,
        "description": description,
        "minLength": 1,
        "maxLength": max_length,
        **extra,
    }


def _date(title: str, description: str) -> dict[str, Any]:
    return {
        "type": "string",
        "title": title,
        "description": description + " (YYYY-MM-DD).",
        "format": "date",
        "maxLength": 10,
    }


def _credit_code(title: str) -> dict[str, Any]:
    return _text(
        title,
        "Unified social credit code, 18 characters with a GB 32100 check character.",
        18,
        minLength=18,
        pattern=CREDIT_CODE_PATTERN,
    )


def _object(
    title: str, description: str, properties: dict[str, Any], required: list[str], **extra: Any
) -> dict[str, Any]:
    return {
        "$schema": _SCHEMA_DIALECT,
        "title": title,
        "description": description,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
        **extra,
    }


BUSINESS_LICENCE = LicenceTemplate(
    code="business_licence",
    name="营业执照",
    name_en="Business Licence",
    version=1,
    number_prefix="YYZZ",
    holder_name_field="name",
    holder_code_field="credit_code",
    validity_years=None,
    valid_until_field="business_term",
    past_date_fields=("established",),
    issuer_label="登记机关",
    header_fields=("credit_code",),
    schema=_object(
        "营业执照",
        "Business licence of an enterprise (营业执照), as registered by a market regulator.",
        {
            "credit_code": _credit_code("统一社会信用代码"),
            "name": _text("名称", "The enterprise's registered name.", 100),
            "kind": _text("类型", "Type of enterprise, e.g. 有限责任公司（自然人独资）.", 50),
            "legal_representative": _text(
                "法定代表人", "Legal representative (or investor, managing partner).", 50
            ),
            "registered_capital": _text("注册资本", "Registered capital, e.g. 500万元人民币.", 50),
            "established": _date("成立日期", "Date of establishment"),
            "business_term": {
                "title": "营业期限",
                "description": "Last day of the business term (YYYY-MM-DD), or 长期 for an "
                "unlimited term; 长期 when absent.",
                "type": "string",
                "maxLength": 10,
                "anyOf": [{"format": "date"}, {"const": LONG_TERM}],
                "default": LONG_TERM,
            },
            "address": _text("住所", "Registered address.", 200),
            "business_scope": _text("经营范围", "Business scope, as registered.", 500),
        },
        [
            "credit_code",
            "name",
            "kind",
            "legal_representative",
            "registered_capital",
            "established",
            "address",
            "business_scope",
        ],
        examples=[
            {
                "credit_code": "9133010052CL12THX9",
                "name": "杭州远航建设工程有限公司",
                "kind": "有限责任公司（自然人独资）",
                "legal_representative": "张丽",
                "registered_capital": "500万元人民币",
                "established": "2011-03-24",
                "business_term": LONG_TERM,
                "address": "浙江省杭州市西湖区中山路42号",
                "business_scope": "房屋建筑工程施工；市政公用工程施工（依法须经批准的项目，"
                "经相关部门批准后方可开展经营活动）",
            }
        ],
    ),
    rows=(
        FormRow(label="名称", fields=("name",)),
        FormRow(label="类型", fields=("kind",)),
        FormRow(label="法定代表人", fields=("legal_representative",)),
        FormRow(label="注册资本", fields=("registered_capital",)),
        FormRow(label="成立日期", fields=("established",)),
        FormRow(label="营业期限", fields=("established", "business_term"), text="{0}至{1}"),
        FormRow(label="住所", fields=("address",)),
        FormRow(label="经营范围", fields=("business_scope",)),
    ),
    notes=(
        "国家企业信用信息公示系统网址：https://www.gsxt.gov.cn",
        "市场主体应当于每年1月1日至6月30日通过国家企业信用信息公示系统报送公示年度报告。",
    ),
)

FOOD_BUSINESS_PERMIT = LicenceTemplate(
    code="food_business_permit",
    name="食品经营许可证",
    name_en="Food Business Permit",
    version=1,
    number_prefix="JY",
    holder_name_field="operator_name",
    holder_code_field="credit_code",
    validity_years=5,
    masked_fields=("id_number",),
    schema=_object(
        "食品经营许可证",
        "Food business permit (食品经营许可证): the operator, premises and what it may sell. "
        "Give credit_code for an organisation, id_number for an individual operator.",
        {
            "operator_name": _text("经营者名称", "The operator's name.", 100),
            "credit_code": _credit_code("统一社会信用代码"),
            "id_number": _text(
                "身份证号码",
                "Resident identity number of an individual operator (GB 11643); masked on "
                "the verification page.",
                18,
                minLength=18,
                pattern=ID_NUMBER_PATTERN,
            ),
            "legal_representative": _text(
                "法定代表人（负责人）", "Legal representative or person in charge.", 50
            ),
            "address": _text("住所", "Registered address.", 200),
            "premises": _text("经营场所", "Where the food business is carried on.", 200),
            "business_type": _text(
                "主体业态",
                "食品销售经营者, 餐饮服务经营者 or 集中用餐单位食堂, optionally followed by a "
                "sub-type in full-width brackets, e.g. 餐饮服务经营者（中型餐馆）.",
                40,
                pattern="^(食品销售经营者|餐饮服务经营者|集中用餐单位食堂)(（[^（）]{1,20}）)?$",
            ),
            "business_items": _text("经营项目", "What the operator may sell or serve.", 500),
            "supervising_authority": _text(
                "日常监督管理机构", "The office in charge of routine supervision.", 100
            ),
            "supervisors": _text("日常监督管理人员", "Inspectors in charge, if named.", 50),
            "complaint_hotline": _text(
                "投诉举报电话", "Complaints telephone number.", 20, pattern=r"^[0-9][0-9-]{2,19}$"
            ),
        },
        [
            "operator_name",
            "legal_representative",
            "address",
            "premises",
            "business_type",
            "business_items",
            "supervising_authority",
            "complaint_hotline",
        ],
        oneOf=[{"required": ["credit_code"]}, {"required": ["id_number"]}],
        examples=[
            {
                "operator_name": "嘉兴润泽餐饮管理有限公司",
                "credit_code": "9133040016D272HD32",
                "legal_representative": "陈明",
                "address": "浙江省嘉兴市南湖区湖滨路540号",
                "premises": "浙江省嘉兴市南湖区湖滨路540号一层101室",
                "business_type": "餐饮服务经营者（中型餐馆）",
                "business_items": "预包装食品销售（含冷藏冷冻食品）；热食类食品制售；"
                "冷食类食品制售；自制饮品制售",
                "supervising_authority": "嘉兴市南湖区市场监督管理局湖滨市场监督管理所",
                "supervisors": "李强、王芳",
                "complaint_hotline": "12315",
            }
        ],
    ),
    rows=(
        FormRow(label="经营者名称", fields=("operator_name",)),
        FormRow(label="统一社会信用代码", fields=("credit_code",)),
        FormRow(label="身份证号码", fields=("id_number",)),
        FormRow(label="法定代表人（负责人）", fields=("legal_representative",)),
        FormRow(label="住所", fields=("address",)),
        FormRow(label="经营场所", fields=("premises",)),
        FormRow(label="主体业态", fields=("business_type",)),
        FormRow(label="经营项目", fields=("business_items",)),
        FormRow(label="日常监督管理机构", fields=("supervising_authority",)),
        FormRow(label="日常监督管理人员", fields=("supervisors",)),
        FormRow(label="投诉举报电话", fields=("complaint_hotline",)),
    ),
    notes=(
        "本许可证有效期届满需要继续经营的，应当在有效期届满前九十个工作日至十五个工作日期间提出延续申请。",
    ),
)

CONSTRUCTION_PERMIT = LicenceTemplate(
    code="construction_permit",
    name="建筑工程施工许可证",
    name_en="Construction Permit",
    version=1,
    number_prefix="SGXK",
    holder_name_field="builder",
    holder_code_field=None,
    validity_years=None,
    preamble="根据《中华人民共和国建筑法》第八条规定，经审查，本建筑工程符合施工条件，准予施工。特发此证。",
    schema=_object(
        "建筑工程施工许可证",
        "Construction permit (建筑工程施工许可证) for one building project.",
        {
            "builder": _text("建设单位", "The client organisation building the project.", 100),
            "project_name": _text("工程名称", "The project's name.", 100),
            "site_address": _text("建设地址", "Where the project is built.", 200),
            "scale": _text("建设规模", "Size of the project, e.g. 总建筑面积35000平方米.", 200),
            "contract_price": _text(
                "合同价格",
                "Contract price in units of 10,000 yuan (万元), a decimal with up to two places.",
                12,
                pattern=r"^(0|[1-9]\d{0,8})(\.\d{1,2})?$",
            ),
            "survey_unit": _text("勘察单位", "The surveying contractor.", 100),
            "design_unit": _text("设计单位", "The design institute.", 100),
            "construction_unit": _text("施工单位", "The main construction contractor.", 100),
            "supervision_unit": _text("监理单位", "The supervising engineer's firm.", 100),
            "survey_manager": _text("勘察单位项目负责人", "Survey project manager.", 30),
            "design_manager": _text("设计单位项目负责人", "Design project manager.", 30),
            "construction_manager": _text("施工单位项目负责人", "Site project manager.", 30),
            "chief_supervisor": _text("总监理工程师", "Chief supervising engineer.", 30),
            "contract_days": {
                "type": "integer",
                "title": "合同工期",
                "description": "Contract duration in calendar days.",
                "minimum": 1,
                "maximum": 3650,
            },
            "remarks": _text("备注", "Remarks printed on the permit.", 200),
        },
        [
            "builder",
            "project_name",
            "site_address",
            "scale",
            "contract_price",
            "survey_unit",
            "design_unit",
            "construction_unit",
            "supervision_unit",
            "survey_manager",
            "design_manager",
            "construction_manager",
            "chief_supervisor",
            "contract_days",
        ],
        examples=[
            {
                "builder": "杭州远航建设工程有限公司",
                "project_name": "西湖区文三路科创园一期工程",
                "site_address": "浙江省杭州市西湖区文三路以北、学院路以东",
                "scale": "总建筑面积35200平方米，地上12层，地下2层",
                "contract_price": "12850.50",
                "survey_unit": "浙江省工程勘察设计院集团有限公司",
                "design_unit": "杭州市建筑设计研究院有限公司",
                "construction_unit": "浙江宏达建设集团有限公司",
                "supervision_unit": "杭州信达工程监理有限公司",
                "survey_manager": "赵刚",
                "design_manager": "孙丽华",
                "construction_manager": "周建国",
                "chief_supervisor": "吴明",
                "contract_days": 730,
                "remarks": "桩基工程另行发包",
            }
        ],
    ),
    rows=(
        FormRow(label="建设单位", fields=("builder",)),
        FormRow(label="工程名称", fields=("project_name",)),
        FormRow(label="建设地址", fields=("site_address",)),
        FormRow(label="建设规模", fields=("scale",)),
        FormRow(label="合同价格", fields=("contract_price",), text="{0}万元"),
        FormRow(label="勘察单位", fields=("survey_unit",)),
        FormRow(label="设计单位", fields=("design_unit",)),
        FormRow(label="施工单位", fields=("construction_unit",)),
        FormRow(label="监理单位", fields=("supervision_unit",)),
        FormRow(label="勘察单位项目负责人", fields=("survey_manager",)),
        FormRow(label="设计单位项目负责人", fields=("design_manager",)),
        FormRow(label="施工单位项目负责人", fields=("construction_manager",)),
        FormRow(label="总监理工程师", fields=("chief_supervisor",)),
        FormRow(label="合同工期", fields=("contract_days",), text="{0}天"),
        FormRow(label="备注", fields=("remarks",)),
    ),
    notes=(
        "一、本证放置施工现场，作为准予施工的凭证。二、未经发证机关许可，本证的各项内容不得变更。"
        "三、建设单位应当自领取本证之日起三个月内开工；因故不能按期开工的，应当向发证机关申请延期。"
        "四、既不开工又不申请延期或者超过延期时限的，本证自行废止。",
    ),
)

TEMPLATES: Mapping[str, LicenceTemplate] = MappingProxyType(
    {t.code: t for t in (BUSINESS_LICENCE, FOOD_BUSINESS_PERMIT, CONSTRUCTION_PERMIT)}
)
"""Every certificate type, by code."""
