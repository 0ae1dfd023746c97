"""Free text reaching the registry: control characters and bidi overrides are refused."""

from __future__ import annotations

import pytest

from econtract.errors import InvalidInputError
from econtract.text import clean_text


def test_text_is_normalised_and_stripped() -> None:
    assert (
        clean_text("  杭州市市场监督管理局 ", field="name", max_length=20) == "杭州市市场监督管理局"
    )


def test_right_to_left_override_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="bidirectional control character U\\+202E"):
        clean_text("abc\u202edef", field="name", max_length=20)


def test_control_character_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="control character U\\+0007"):
        clean_text("abc\x07", field="name", max_length=20)


def test_over_long_text_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="2000 characters; at most 200"):
        clean_text("名" * 2000, field="name", max_length=200)


def test_empty_text_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="must not be empty"):
        clean_text("   ", field="name", max_length=10)
