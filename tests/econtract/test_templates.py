"""Licence templates: their schemas, and the one gate every set of fields passes."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from econtract.errors import InvalidInputError, NotFoundError
from econtract.issuance import (
    ID_NUMBER_PATTERN,
    TEMPLATES,
    FormRow,
    LicenceTemplate,
    get_template,
    validate_fields,
)
from signing.fonts import missing_characters
from tests.data import load_holders

BUSINESS = TEMPLATES["business_licence"]
FOOD = TEMPLATES["food_business_permit"]
CONSTRUCTION = TEMPLATES["construction_permit"]


def pointers(template: LicenceTemplate, fields: Any) -> list[str]:
    """The JSON pointers that validation refuses ``fields`` with."""
    with pytest.raises(InvalidInputError) as info:
        validate_fields(template, fields)
    return [pointer for pointer, _ in info.value.errors]


# -- the schemas ------------------------------------------------------------------------------


def test_required_templates_exist() -> None:
    assert {"business_licence", "food_business_permit", "construction_permit"} <= set(TEMPLATES)


@pytest.mark.parametrize("template", TEMPLATES.values(), ids=lambda t: t.code)
def test_schema_example_is_valid(template: LicenceTemplate) -> None:
    example = template.schema["examples"][0]
    assert validate_fields(template, example) == example


@pytest.mark.parametrize("template", TEMPLATES.values(), ids=lambda t: t.code)
def test_schema_is_draft_2020_12_and_closed(template: LicenceTemplate) -> None:
    schema = template.schema
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    json.dumps(schema)  # publishable as is by GET /v1/certificate-types


@pytest.mark.parametrize("template", TEMPLATES.values(), ids=lambda t: t.code)
def test_every_string_field_has_a_max_length(template: LicenceTemplate) -> None:
    for name, prop in template.properties.items():
        if prop.get("type") == "string":
            assert prop["maxLength"] <= 500, name
    assert template.properties[template.holder_name_field]["maxLength"] <= 100


@pytest.mark.parametrize("template", TEMPLATES.values(), ids=lambda t: t.code)
def test_dates_are_format_date(template: LicenceTemplate) -> None:
    for prop in template.properties.values():
        if "日期" in prop.get("title", ""):
            assert prop["format"] == "date"


@pytest.mark.parametrize("template", TEMPLATES.values(), ids=lambda t: t.code)
def test_printed_text_is_in_the_font(template: LicenceTemplate) -> None:
    printed = "".join(
        [template.name, template.name_en, template.preamble, template.issuer_label]
        + [row.label + row.text for row in template.rows]
        + list(template.notes)
        + [str(p.get("title", "")) for p in template.properties.values()]
    )
    assert missing_characters(printed) == ""


def test_identity_numbers_are_masked() -> None:
    assert FOOD.masked_fields == ("id_number",)
    for template in TEMPLATES.values():
        for name, prop in template.properties.items():
            if prop.get("pattern") == ID_NUMBER_PATTERN:
                assert name in template.masked_fields


def test_template_with_unmasked_identity_number_is_refused() -> None:
    schema = dict(FOOD.schema)
    with pytest.raises(ValueError, match=r"id_number .* list it in masked_fields"):
        LicenceTemplate(
            code="food_copy",
            name="食品经营许可证",
            name_en="Copy",
            version=1,
            schema=schema,
            holder_name_field="operator_name",
            holder_code_field="credit_code",
            validity_years=5,
            number_prefix="JY",
            national_type_code=FOOD.national_type_code,
            rows=(FormRow(label="名称", fields=("operator_name",)),),
        )


def test_template_rows_must_name_schema_fields() -> None:
    with pytest.raises(ValueError, match="refers to 'nickname'"):
        LicenceTemplate(
            code="business_copy",
            name="营业执照",
            name_en="Copy",
            version=1,
            schema=BUSINESS.schema,
            holder_name_field="name",
            holder_code_field="credit_code",
            validity_years=None,
            number_prefix="YYZZ",
            national_type_code=BUSINESS.national_type_code,
            rows=(FormRow(label="别名", fields=("nickname",)),),
        )


def test_unknown_template_names_the_known_codes() -> None:
    with pytest.raises(NotFoundError, match="business_licence, construction_permit"):
        get_template("driving_licence")


def test_get_template_by_code() -> None:
    assert get_template("business_licence") is BUSINESS


# -- validate_fields: the sample holders ------------------------------------------------------


@pytest.mark.parametrize("row", load_holders("holders.csv"), ids=lambda r: r["credit_code"])
def test_sample_holder_is_a_valid_business_licence(row: dict[str, str]) -> None:
    assert validate_fields(BUSINESS, row) == row


def test_wrong_check_character_points_at_credit_code() -> None:
    row = load_holders("holders-bad.csv")[0]
    with pytest.raises(InvalidInputError, match="wrong check character") as info:
        validate_fields(BUSINESS, row)
    assert [p for p, _ in info.value.errors] == ["/credit_code"]


def test_credit_code_of_wrong_length_points_at_credit_code() -> None:
    assert pointers(BUSINESS, load_holders("holders-bad.csv")[1]) == ["/credit_code"]


def test_empty_name_points_at_name() -> None:
    assert pointers(BUSINESS, load_holders("holders-bad.csv")[2]) == ["/name"]


# -- validate_fields: one rule each -----------------------------------------------------------


def test_2000_character_name_is_refused() -> None:
    fields = BUSINESS.example | {"name": "远" * 2000}
    with pytest.raises(InvalidInputError, match="2000 characters; at most 100") as info:
        validate_fields(BUSINESS, fields)
    assert info.value.errors[0][0] == "/name"


def test_right_to_left_override_is_refused() -> None:
    fields = BUSINESS.example | {"address": "浙江省杭州市\u202e号24路山中"}
    with pytest.raises(InvalidInputError, match="U\\+202E") as info:
        validate_fields(BUSINESS, fields)
    assert [p for p, _ in info.value.errors] == ["/address"]


def test_control_character_is_refused() -> None:
    assert pointers(BUSINESS, BUSINESS.example | {"kind": "有限\x00公司"}) == ["/kind"]


def test_unknown_field_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="not a field of this certificate type") as info:
        validate_fields(BUSINESS, BUSINESS.example | {"nickname": "远航"})
    assert [p for p, _ in info.value.errors] == ["/nickname"]


def test_missing_required_field_is_refused_by_pointer() -> None:
    fields = BUSINESS.example
    del fields["legal_representative"]
    with pytest.raises(InvalidInputError, match="is required") as info:
        validate_fields(BUSINESS, fields)
    assert [p for p, _ in info.value.errors] == ["/legal_representative"]


def test_every_bad_field_is_named() -> None:
    fields = BUSINESS.example | {
        "credit_code": "9133010052CL12THX0",
        "name": "",
        "established": "2011-02-30",
        "business_term": "明年",
        "extra": 1,
    }
    del fields["address"]
    assert pointers(BUSINESS, fields) == [
        "/credit_code",
        "/name",
        "/established",
        "/business_term",
        "/address",
        "/extra",
    ]


def test_character_outside_the_font_is_refused_naming_the_field() -> None:
    fields = BUSINESS.example | {"legal_representative": "张\U00020000"}
    with pytest.raises(InvalidInputError, match="U\\+20000") as info:
        validate_fields(BUSINESS, fields)
    assert [p for p, _ in info.value.errors] == ["/legal_representative"]


def test_impossible_date_is_refused() -> None:
    assert pointers(BUSINESS, BUSINESS.example | {"established": "2011-02-30"}) == ["/established"]


def test_date_must_be_iso() -> None:
    assert pointers(BUSINESS, BUSINESS.example | {"established": "2011年3月24日"}) == [
        "/established"
    ]


@pytest.mark.parametrize("term", ["长期", "2041-03-23"])
def test_business_term_is_a_date_or_long_term(term: str) -> None:
    validate_fields(BUSINESS, BUSINESS.example | {"business_term": term})


def test_wrong_type_is_refused() -> None:
    assert pointers(CONSTRUCTION, CONSTRUCTION.example | {"contract_days": "730"}) == [
        "/contract_days"
    ]


def test_text_is_normalised_and_stripped() -> None:
    fields = validate_fields(BUSINESS, BUSINESS.example | {"name": "  杭州远航建设工程有限公司 "})
    assert fields["name"] == "杭州远航建设工程有限公司"


def test_fields_must_be_an_object() -> None:
    with pytest.raises(InvalidInputError, match="must be a JSON object"):
        validate_fields(BUSINESS, ["name"])


def test_food_permit_needs_a_credit_code_or_an_identity_number() -> None:
    fields = FOOD.example
    del fields["credit_code"]
    with pytest.raises(InvalidInputError, match="exactly one of credit_code, id_number"):
        validate_fields(FOOD, fields)


def test_food_permit_of_an_individual_takes_an_identity_number() -> None:
    fields = FOOD.example
    del fields["credit_code"]
    fields["id_number"] = "11010519491231002X"
    assert validate_fields(FOOD, fields)["id_number"] == "11010519491231002X"


def test_identity_number_with_wrong_check_character_is_refused() -> None:
    fields = FOOD.example
    del fields["credit_code"]
    fields["id_number"] = "110105194912310021"
    assert pointers(FOOD, fields) == ["/id_number"]


def test_food_business_type_follows_the_form() -> None:
    assert pointers(FOOD, FOOD.example | {"business_type": "小吃店"}) == ["/business_type"]


# -- validity ---------------------------------------------------------------------------------


def test_business_licence_runs_to_its_business_term() -> None:
    fields = BUSINESS.example | {"business_term": "2041-03-23"}
    assert BUSINESS.valid_until(fields, date(2024, 5, 6)) == date(2041, 3, 23)


def test_business_licence_without_term_has_no_end() -> None:
    fields = BUSINESS.example
    del fields["business_term"]
    assert BUSINESS.valid_until(fields, date(2024, 5, 6)) is None


def test_food_permit_runs_five_years_less_a_day() -> None:
    assert FOOD.valid_until(FOOD.example, date(2024, 5, 6)) == date(2029, 5, 5)


def test_validity_from_29_february() -> None:
    assert FOOD.valid_until(FOOD.example, date(2024, 2, 29)) == date(2029, 2, 28)


def test_construction_permit_has_no_default_end() -> None:
    assert CONSTRUCTION.valid_until(CONSTRUCTION.example, date(2024, 5, 6)) is None


TODAY = date(2024, 5, 6)


def test_an_establishment_date_after_today_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="after today, 2024-05-06") as info:
        validate_fields(BUSINESS, BUSINESS.example | {"established": "2024-05-07"}, today=TODAY)
    assert [p for p, _ in info.value.errors] == ["/established"]
    # Today itself is fine, and without a today the clock is not consulted.
    validate_fields(BUSINESS, BUSINESS.example | {"established": "2024-05-06"}, today=TODAY)
    validate_fields(BUSINESS, BUSINESS.example | {"established": "2099-01-01"})


def test_pointers_name_the_fields_where_the_caller_sent_them() -> None:
    fields = BUSINESS.example | {"name": "", "established": "2099-01-01"}
    with pytest.raises(InvalidInputError) as info:
        validate_fields(BUSINESS, fields, at="/fields", today=TODAY)
    assert [p for p, _ in info.value.errors] == ["/fields/name", "/fields/established"]
    assert "/fields/name: " in info.value.message
    with pytest.raises(InvalidInputError) as whole:
        validate_fields(BUSINESS, "fields", at="/fields")
    assert whole.value.errors == [("/fields", "must be an object")]


def validity_pointers(template: LicenceTemplate, fields: Any, **dates: date | None) -> list[str]:
    with pytest.raises(InvalidInputError) as info:
        template.validity(
            fields,
            valid_from=dates.get("valid_from"),
            valid_until=dates.get("valid_until"),
            today=TODAY,
            at="/fields",
        )
    return [p for p, _ in info.value.errors]


def test_a_business_term_ending_before_the_start_names_the_business_term() -> None:
    fields = BUSINESS.example | {"business_term": "2024-06-01"}
    assert validity_pointers(BUSINESS, fields, valid_from=date(2024, 7, 1)) == [
        "/fields/business_term"
    ]


def test_a_business_term_ending_before_today_names_the_business_term() -> None:
    fields = BUSINESS.example | {"business_term": "2024-05-05"}
    assert validity_pointers(BUSINESS, fields, valid_from=date(2024, 1, 1)) == [
        "/fields/business_term"
    ]


def test_a_validity_entirely_in_the_past_names_valid_until() -> None:
    assert validity_pointers(
        FOOD, FOOD.example, valid_from=date(2020, 1, 1), valid_until=date(2021, 1, 1)
    ) == ["/valid_until"]


def test_an_end_before_the_start_names_valid_until() -> None:
    assert validity_pointers(
        FOOD, FOOD.example, valid_from=date(2024, 7, 1), valid_until=date(2024, 6, 30)
    ) == ["/valid_until"]


def test_a_validity_from_today_has_its_default_end() -> None:
    assert BUSINESS.validity(BUSINESS.example, valid_from=None, valid_until=None, today=TODAY) == (
        TODAY,
        None,
    )
    assert FOOD.validity(FOOD.example, valid_from=None, valid_until=None, today=TODAY) == (
        TODAY,
        date(2029, 5, 5),
    )
    # A validity that began in the past and runs on is accepted (a renewal, say).
    assert FOOD.validity(
        FOOD.example, valid_from=date(2023, 1, 1), valid_until=None, today=TODAY
    ) == (date(2023, 1, 1), date(2027, 12, 31))
