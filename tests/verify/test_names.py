"""Distinguished names compared once per verification, as RFC 5280 says."""

from __future__ import annotations

from typing import Any

import pytest
from asn1crypto import x509 as asn1_x509

from verify import _names
from verify._names import remembered_name_comparisons


def _name(common_name: str, organization: str = "某市市场监督管理局") -> asn1_x509.Name:
    return asn1_x509.Name.build({"common_name": common_name, "organization_name": organization})


def _fresh(name: asn1_x509.Name) -> asn1_x509.Name:
    # A copy parsed from the bytes: nothing prepared yet, as pyHanko's copies are.
    return asn1_x509.Name.load(name.dump())


def test_names_compare_alike_inside_and_outside_the_block() -> None:
    pairs = [
        (_name("Seal  CA"), _name("seal ca")),
        (_name("Seal CA"), _name("Seal CB")),
        (_name("证照专用章"), _name("证照专用章")),
        (_name("Seal CA", "A"), _name("Seal CA", "B")),
    ]
    outside = [_fresh(a) == _fresh(b) for a, b in pairs]
    with remembered_name_comparisons():
        inside = [_fresh(a) == _fresh(b) for a, b in pairs]
    assert outside == [True, False, True, False]
    assert inside == outside


def test_each_value_is_prepared_once_inside_the_block(monkeypatch: pytest.MonkeyPatch) -> None:
    prepared: list[str] = []
    library = _names._library_prep

    def counting(self: Any, string: str) -> str:
        prepared.append(string)
        return library(self, string)

    monkeypatch.setattr(_names, "_library_prep", counting)
    with remembered_name_comparisons():
        for _ in range(3):
            assert _fresh(_name("Seal CA")) == _fresh(_name("Seal CA"))
    assert sorted(prepared) == sorted(["Seal CA", "某市市场监督管理局"])


def test_each_pair_is_compared_once_inside_the_block(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[str, str]] = []
    library = _names._library_eq

    def counting(self: asn1_x509.Name, other: object) -> bool:
        assert isinstance(other, asn1_x509.Name)
        compared.append((self.human_friendly, other.human_friendly))
        return library(self, other)

    monkeypatch.setattr(_names, "_library_eq", counting)
    with remembered_name_comparisons():
        for _ in range(3):
            assert _fresh(_name("Seal CA")) == _fresh(_name("seal  ca"))
            assert _fresh(_name("Seal CA")) != _fresh(_name("Root CA"))
    assert len(compared) == 2


def test_values_are_prepared_every_time_outside_the_block(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prepared: list[str] = []
    library = _names._library_prep

    def counting(self: Any, string: str) -> str:
        prepared.append(string)
        return library(self, string)

    monkeypatch.setattr(_names, "_library_prep", counting)
    with remembered_name_comparisons():
        pass
    for _ in range(2):
        assert _fresh(_name("Seal CA")) == _fresh(_name("Seal CA"))
    assert prepared.count("Seal CA") == 4


def test_refused_value_raises_every_time_inside_the_block() -> None:
    # U+FFFD is prohibited by RFC 4518 string preparation.
    bad = _name("Seal \ufffd CA")
    with remembered_name_comparisons():
        for _ in range(2):
            with pytest.raises(ValueError):
                _ = _fresh(bad) == _fresh(bad)
