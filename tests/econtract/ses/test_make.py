"""Our own SESeal and SES_Signature: made, read back, judged by OpenSSL too."""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509

from econtract.ses import check_ses, make_ses_signature
from econtract.ses.asn1 import SESSeal, SESSealV1, SESSignature, SESSignatureV1, TBSSignV1
from tests.econtract.ses.samples import flip, load_sample, now, our_seal
from tests.keys.openssl import sm2_verify_raw

DATA_HASH = hashlib.new("sm3", b"%PDF-1.7 sealed bytes").digest()


def _signature(timestamp: bytes | None = None) -> bytes:
    seal = our_seal()
    return make_ses_signature(
        seal.der,
        seal.signer,
        DATA_HASH,
        "licence.pdf",
        now() + datetime.timedelta(hours=1),
        (lambda signature: timestamp) if timestamp is not None else None,
    )


def test_our_seal_holds_what_gb_t_38540_asks() -> None:
    seal = SESSeal.load(our_seal().der)
    info = seal["e_seal_info"]
    assert info["header"].native == {"id": "ES", "version": 4, "vid": "eContract"}
    assert info["property"]["cert_list_type"].native == 1
    assert info["picture"]["type"].native == "PNG"
    assert info["picture"]["data"].native.startswith(b"\x89PNG\r\n\x1a\n")
    assert seal["sign_alg_id"].dotted == "1.2.156.10197.1.501"


def test_our_seal_verifies_with_its_chain_to_the_sm2_root() -> None:
    seal = our_seal()
    report = check_ses(seal.der, anchors=seal.anchors)
    assert report.problems == ()
    values = {en: value for _, en, value in report.fields}
    assert values["seal maker chain"] == "至本服务 SM2 根 to the service's SM2 root"
    assert values["Seal type"] == "2"


def test_openssl_accepts_the_makers_signature_over_der_seal_info(tmp_path: Path) -> None:
    seal = SESSeal.load(our_seal().der)
    maker = asn1_x509.Certificate.load(seal["cert"].native)
    verdict = sm2_verify_raw(
        tmp_path,
        maker.public_key.dump(),
        seal["e_seal_info"].dump(),
        seal["signed_value"].native,
    )
    assert "Signature Verified Successfully" in verdict


def test_our_signature_round_trips_and_openssl_accepts_it(tmp_path: Path) -> None:
    der = _signature()
    report = check_ses(der, anchors=our_seal().anchors)
    assert (report.kind, report.version, report.problems) == ("SES_Signature", 4, ())
    values = {en: value for _, en, value in report.fields}
    assert values["Data hash"] == DATA_HASH.hex()
    assert values["signer chain"] == "至本服务 SM2 根 to the service's SM2 root"
    parsed = SESSignature.load(der)
    signer = asn1_x509.Certificate.load(parsed["cert"].native)
    verdict = sm2_verify_raw(
        tmp_path, signer.public_key.dump(), parsed["to_sign"].dump(), parsed["signature"].native
    )
    assert "Signature Verified Successfully" in verdict


def test_the_timestamp_is_kept_as_explicit_tag_0() -> None:
    der = _signature(timestamp=b"\x30\x03\x02\x01\x00")
    parsed = SESSignature.load(der)
    assert parsed["time_stamp"].native == b"\x30\x03\x02\x01\x00"
    assert parsed.children[4].explicit == ((2, 0),)  # context class, tag 0
    assert "Timestamp" in {en for _, en, _ in check_ses(der).fields}


def test_a_changed_byte_of_our_signature_fails_it() -> None:
    der = _signature()
    offset = der.index(DATA_HASH)
    report = check_ses(flip(der, offset))
    assert [p.split("。")[0] for p in report.problems] == ["签章者签名无效"]


def test_a_signature_outside_its_certificates_validity_is_named() -> None:
    seal = our_seal()
    der = make_ses_signature(
        seal.der, seal.signer, DATA_HASH, "late.pdf", now() + datetime.timedelta(days=400)
    )
    (problem,) = check_ses(der).problems
    assert "The signer's certificate was not valid at" in problem


def test_a_certificate_not_issued_by_the_anchors_is_not_called_ours() -> None:
    report = check_ses(our_seal().der, anchors=[our_seal().signer.certificate_der])
    values = {en: value for _, en, value in report.fields}
    assert values["seal maker chain"] == "非本服务 not ours"


def test_a_data_hash_that_is_no_sm3_digest_is_refused() -> None:
    seal = our_seal()
    with pytest.raises(ValueError, match="SM3 digest of 32 bytes, not 20"):
        make_ses_signature(seal.der, seal.signer, b"\x00" * 20, "x", now())


def test_a_naive_time_is_refused() -> None:
    seal = our_seal()
    with pytest.raises(ValueError, match="time zone"):
        make_ses_signature(seal.der, seal.signer, DATA_HASH, "x", now().replace(tzinfo=None))


def test_a_v1_signature_is_read_and_checked() -> None:
    # No v1 SES_Signature sample is published; this one carries ofdrw's v1 seal, signed here.
    seal = our_seal()
    tbs = TBSSignV1(
        {
            "version": 1,
            "eseal": SESSealV1.load(load_sample("ofdrw-UserV1.esl")),
            "time_info": now().strftime("%Y%m%d%H%M%SZ").encode(),
            "data_hash": DATA_HASH,
            "property_info": "contract.pdf",
            "cert": seal.signer.certificate_der,
            "signature_algorithm": "1.2.156.10197.1.501",
        }
    )
    signature = seal.signer.handle.sign(tbs.dump(), "sm3")
    der = SESSignatureV1({"to_sign": tbs, "signature": signature}).dump()
    report = check_ses(der)
    assert (report.kind, report.version, report.problems) == ("SES_Signature", 1, ())
    values = {en: value for _, en, value in report.fields}
    assert values["Signed at"] == now().strftime("%Y-%m-%d %H:%M:%S UTC")
    assert check_ses(flip(der, der.index(DATA_HASH))).problems[0].startswith("签章者签名无效")
