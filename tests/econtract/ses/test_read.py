"""Reading and checking seal data made elsewhere (ofdrw) and damaged seal data."""

from __future__ import annotations

from typing import Any

import pytest

from econtract.ses import SESUnreadableError, check_ses
from econtract.ses.asn1 import SESSeal, SESSealV1, SESSignature
from tests.econtract.ses.samples import OFDRW_SAMPLES, flip, load_sample


@pytest.mark.parametrize("name", sorted(OFDRW_SAMPLES))
def test_ofdrw_samples_verify(name: str) -> None:
    report = check_ses(load_sample(name))
    assert (report.kind, report.version) == OFDRW_SAMPLES[name]
    assert report.problems == ()
    values = {en: value for _, en, value in report.fields}
    assert values["seal maker signature"] == "有效 valid (SM2/SM3)"
    assert values["Vendor id"] == "OFDR&WTest"
    assert values["Picture"].startswith("PNG, 15693 B, 40 × 40 mm")


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("ofdrw-UserV4.esl", SESSeal),
        ("ofdrw-UserV1.esl", SESSealV1),
        ("ofdrw-SignedValueV4.dat", SESSignature),
    ],
)
def test_the_shapes_read_ofdrw_samples_back_byte_for_byte(name: str, shape: Any) -> None:
    data = load_sample(name)
    assert shape.load(data).dump(force=True) == data


def test_the_signature_sample_names_what_it_signed() -> None:
    values = {
        en: value for _, en, value in check_ses(load_sample("ofdrw-SignedValueV4.dat")).fields
    }
    assert values["Data property"] == "/Doc_0/Signs/Sign_0/Signature.xml"
    assert values["Signed at"] == "2020-10-12 11:14:03 UTC"
    assert values["signer signature"] == "有效 valid (SM2/SM3)"


def test_a_changed_picture_byte_breaks_the_seal_makers_signature() -> None:
    report = check_ses(flip(load_sample("ofdrw-UserV4.esl"), 5000))
    assert not report.verified
    assert report.problems == (
        "制章者签名无效。 The seal maker's signature does not verify (SM2/SM3, user id "
        "1234567812345678).",
    )


def test_a_changed_data_hash_breaks_the_signers_signature_only() -> None:
    data = load_sample("ofdrw-SignedValueV4.dat")
    report = check_ses(flip(data, 17045))  # inside TBS_Sign's dataHash
    assert [p.split("。")[0] for p in report.problems] == ["签章者签名无效"]


def test_a_changed_v1_seal_breaks_its_signature() -> None:
    report = check_ses(flip(load_sample("ofdrw-UserV1.esl"), 5000))
    assert report.problems[0].startswith("制章者签名无效")


@pytest.mark.parametrize("data", [b"", b"garbage", b"\x30\x03\x02\x01\x04", b"\x30\x80" * 4])
def test_garbage_is_unreadable(data: bytes) -> None:
    with pytest.raises(SESUnreadableError, match="Not a readable SES_Seal or SES_Signature"):
        check_ses(data)


def test_a_truncated_seal_is_unreadable() -> None:
    with pytest.raises(SESUnreadableError):
        check_ses(load_sample("ofdrw-UserV4.esl")[:-10])


def test_an_unknown_version_is_refused_by_name() -> None:
    data = bytearray(load_sample("ofdrw-UserV4.esl"))
    assert data[16] == 4  # SES_Header's version
    data[16] = 3
    with pytest.raises(SESUnreadableError, match="Version 3 is not supported"):
        check_ses(bytes(data))
