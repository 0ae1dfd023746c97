"""GB 32100 unified social credit codes, checked against the sample holders."""

from __future__ import annotations

import pytest

from econtract.uscc import InvalidCreditCodeError, check_character, validate_credit_code
from tests.data import load_holders


@pytest.mark.parametrize("row", load_holders("holders.csv"), ids=lambda r: r["credit_code"])
def test_sample_codes_are_valid(row: dict[str, str]) -> None:
    assert validate_credit_code(row["credit_code"]) == row["credit_code"]


def test_sample_bad_check_character_is_refused() -> None:
    code = load_holders("holders-bad.csv")[0]["credit_code"]
    with pytest.raises(
        InvalidCreditCodeError, match="wrong check character '0'; GB 32100 gives '9'"
    ):
        validate_credit_code(code)


def test_sample_wrong_length_is_refused() -> None:
    code = load_holders("holders-bad.csv")[1]["credit_code"]
    with pytest.raises(InvalidCreditCodeError, match="18 characters; '91330100ABC' has 11"):
        validate_credit_code(code)


def test_letters_outside_the_alphabet_are_refused() -> None:
    # I, O, Z, S and V are not in GB 32100's alphabet.
    with pytest.raises(InvalidCreditCodeError, match="alphabet"):
        validate_credit_code("9O33010052CL12THX9")


def test_organisation_code_check_character_is_checked() -> None:
    good = "9133010052CL12THX9"
    body = good[:16] + ("0" if good[16] != "0" else "1")
    bad = body + check_character(body)
    with pytest.raises(InvalidCreditCodeError, match="GB 11714"):
        validate_credit_code(bad)


def test_both_wrong_check_characters_are_named_at_once() -> None:
    good = "9133010052CL12THX9"
    # A typing error in the organisation code's check character breaks the code's too.
    typed = good[:16] + "0" + good[17]
    with pytest.raises(InvalidCreditCodeError, match="GB 32100 gives") as info:
        validate_credit_code(typed)
    expected = check_character(typed[:17])
    assert [(w.position, w.given, w.expected, w.standard) for w in info.value.wrong] == [
        (18, "9", expected, "GB 32100"),
        (17, "0", "X", "GB 11714"),
    ]
    message = str(info.value)
    assert f"wrong check character '9'; GB 32100 gives {expected!r}" in message
    assert "organisation code check character '0' (position 17); GB 11714 gives 'X'" in message


def test_a_single_wrong_check_character_is_named_alone() -> None:
    with pytest.raises(InvalidCreditCodeError, match="wrong check character '0'") as info:
        validate_credit_code("9133010052CL12THX0")
    assert [w.position for w in info.value.wrong] == [18]
    assert "GB 11714" not in str(info.value)
