"""Validating an issuing request: one step that hands the later steps all they need."""

from __future__ import annotations

from datetime import date

import pytest

from econtract.errors import InvalidInputError
from econtract.issuance import TEMPLATES, IssueRequest
from econtract.issuance._request import validate_request

TODAY = date(2026, 3, 2)
FOOD = TEMPLATES["food_business_permit"]


def test_a_validated_request_carries_the_cleaned_fields_validity_and_holder() -> None:
    fields = FOOD.example | {"operator_name": "  嘉兴润泽餐饮管理有限公司 "}
    valid = validate_request(
        IssueRequest(type_code=FOOD.code, fields=fields, supersedes="crt_old"), today=TODAY
    )
    assert valid.template is FOOD
    assert valid.fields["operator_name"] == "嘉兴润泽餐饮管理有限公司"
    assert (valid.valid_from, valid.valid_until) == (TODAY, date(2031, 3, 1))
    assert valid.holder_name == "嘉兴润泽餐饮管理有限公司"
    assert valid.holder_code == FOOD.example["credit_code"]
    assert valid.supersedes == "crt_old"


def test_an_individual_operator_has_no_holder_code() -> None:
    fields = {k: v for k, v in FOOD.example.items() if k != "credit_code"}
    fields["id_number"] = "11010519491231002X"
    valid = validate_request(IssueRequest(type_code=FOOD.code, fields=fields), today=TODAY)
    assert valid.holder_code is None


def test_an_unknown_type_is_named_at_the_type_pointer() -> None:
    with pytest.raises(InvalidInputError, match="no certificate type 'fishing_licence'") as info:
        validate_request(IssueRequest(type_code="fishing_licence", fields={}), today=TODAY)
    assert info.value.errors == [("/type", "unknown certificate type")]


def test_a_validity_that_ended_before_today_is_refused_when_validating() -> None:
    request = IssueRequest(
        type_code=FOOD.code,
        fields=FOOD.example,
        valid_from=date(2025, 1, 1),
        valid_until=date(2026, 3, 1),
    )
    with pytest.raises(InvalidInputError, match="lies entirely in the past") as info:
        validate_request(request, today=TODAY)
    assert [pointer for pointer, _ in info.value.errors] == ["/valid_until"]
