"""Distinguished names compared once per process, as RFC 5280 says."""

from __future__ import annotations

from typing import Any

import pytest
from asn1crypto import x509 as asn1_x509

from verify import _names
from verify._names import remembered_name_comparisons


@pytest.fixture(autouse=True)
def _empty_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    # The memo lasts for the process: each test starts from an empty one.
    monkeypatch.setattr(_names, "_MEMO", _names._Memo())


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


def test_a_pair_compared_in_one_block_is_remembered_in_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compared: list[bool] = []
    library = _names._library_eq

    def counting(self: asn1_x509.Name, other: object) -> bool:
        compared.append(True)
        return library(self, other)

    monkeypatch.setattr(_names, "_library_eq", counting)
    for _ in range(3):
        with remembered_name_comparisons():
            assert _fresh(_name("Seal CA")) == _fresh(_name("seal  ca"))
    assert len(compared) == 1


def test_hashable_names_are_alike_inside_and_outside_the_block() -> None:
    names = [_name("Seal  CA"), _name("seal ca"), _name("证照专用章"), _name("Seal CA", "B")]
    outside = [_fresh(n).hashable for n in names]
    with remembered_name_comparisons():
        inside = [_fresh(n).hashable for n in names]
        again = [_fresh(n).hashable for n in names]
    assert outside[0] == outside[1] != outside[3]
    assert inside == outside == again


def test_the_memo_forgets_the_oldest_beyond_its_capacity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_names, "CAPACITY", 2)
    with remembered_name_comparisons():
        for common_name in ("A", "B", "C"):
            _ = _fresh(_name(common_name)).hashable
    assert len(_names._MEMO.hashable) == 2
    assert _name("A").dump() not in _names._MEMO.hashable
    assert _name("C").dump() in _names._MEMO.hashable


def test_a_name_longer_than_the_bound_is_compared_but_not_remembered() -> None:
    long_name = _name("Seal CA " + "x" * _names.LARGEST)
    with remembered_name_comparisons():
        assert _fresh(long_name) == _fresh(long_name)
        assert _fresh(long_name).hashable == long_name.hashable
    assert not _names._MEMO.equal
    assert not _names._MEMO.hashable
    assert all(len(value) <= _names.LARGEST for value in _names._MEMO.prepared)
