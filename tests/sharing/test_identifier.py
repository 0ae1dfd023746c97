"""The licence identifier (证照标识, GB/T 36904): its check character, its parts, the CLI."""

from __future__ import annotations

import pytest

from econtract.cli import EXIT_ERROR, EXIT_USAGE, run
from econtract.licence_identifier import (
    InvalidIdentifierError,
    LicenceIdentifier,
    check_character,
    parse,
)

PUBLIC_EXAMPLE = "1.2.156.3005.2.11100000000013338W032.11220000013544541J.2430599.001.F"


def test_the_public_examples_check_character_is_f() -> None:
    assert (
        check_character("11100000000013338W032" + "11220000013544541J" + "2430599" + "001") == "F"
    )


def test_the_public_example_parses_into_its_parts_and_prints_back_the_same() -> None:
    parsed = parse(PUBLIC_EXAMPLE)
    assert (parsed.type_code, parsed.issuer_code, parsed.serial, parsed.version) == (
        "11100000000013338W032",
        "11220000013544541J",
        "2430599",
        1,
    )
    assert str(parsed) == PUBLIC_EXAMPLE


def test_create_computes_the_check_character_a_parse_accepts() -> None:
    made = LicenceIdentifier.create(
        type_code="11100000000013338W032",
        issuer_code="11220000013544541J",
        serial="YYZZ3301002026000042",
        version=2,
    )
    assert str(made).split(".")[-2] == "002"
    assert parse(str(made)) == made


def _with(**parts: str) -> str:
    fields = dict(
        zip(
            ("type_code", "issuer_code", "serial", "version", "check"),
            PUBLIC_EXAMPLE.removeprefix("1.2.156.3005.2.").split("."),
            strict=True,
        )
    )
    fields |= parts
    return "1.2.156.3005.2." + ".".join(fields.values())


@pytest.mark.parametrize(
    ("text", "part", "message"),
    [
        (PUBLIC_EXAMPLE.replace("3005.2.", "3005.3.", 1), "prefix", "starts with"),
        (PUBLIC_EXAMPLE + ".X", "prefix", "five parts"),
        (_with(type_code="11100000000013338W03"), "type_code", "21 characters"),
        (_with(type_code="11100000000013338W03A"), "type_code", "3 digits"),
        (_with(type_code="11100000000013338X032"), "type_code", "not a credit code"),
        (_with(issuer_code="11220000013544541K"), "issuer_code", "not a credit code"),
        (_with(serial="2430-599"), "serial", "0-9 and A-Z"),
        (_with(serial="ab12"), "serial", "0-9 and A-Z"),
        (_with(version="01"), "version", "3 digits"),
        (_with(version="000"), "version", "001 to 999"),
        (_with(check="G"), "check", "gives 'F'"),
        (_with(check="FF"), "check", "one character"),
    ],
)
def test_each_kind_of_wrong_identifier_is_named(text: str, part: str, message: str) -> None:
    with pytest.raises(InvalidIdentifierError, match=message) as caught:
        parse(text)
    assert caught.value.part == part


def test_a_changed_serial_breaks_the_check_character() -> None:
    with pytest.raises(InvalidIdentifierError, match="check character") as caught:
        parse(_with(serial="2430598"))
    assert caught.value.part == "check"


def test_cli_check_of_a_right_identifier_exits_0_and_prints_its_parts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["identifier", "check", PUBLIC_EXAMPLE]) == 0
    out = capsys.readouterr().out
    assert "11100000000013338W032" in out
    assert "11220000013544541J" in out
    assert "version:     001" in out


def test_cli_check_of_a_wrong_identifier_exits_1_naming_what_is_wrong_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["identifier", "check", _with(issuer_code="11220000013544541K")]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("invalid identifier (issuer_code):")


def test_cli_check_without_an_identifier_is_a_usage_error() -> None:
    assert run(["identifier", "check"]) == EXIT_USAGE
