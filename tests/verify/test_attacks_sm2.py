"""Attacks that exist only for SM2 seals: a signature computed with another SM2 user id, an SM2
signature relabelled as another algorithm, an SM2 seal that claims another digest. Every
attack on a sealed file in general runs on SM2 seals in :mod:`tests.verify.test_attacks`."""

from __future__ import annotations

from pathlib import Path

import pytest
from asn1crypto import cms

from keys.sm2 import SM2KeyHandle
from signing.options import SealLevel
from tests.keys.openssl import openssl
from tests.signing.sm2 import EmbeddedSeal, embedded_seals
from tests.verify import forge
from tests.verify.forge import Sealed
from tests.verify.sm2pki import SM2TestPKI
from verify.pdf import verify_pdf
from verify.report import Indication, Report, Verdict

# The bare SM2 signature OID of GM/T 0006 (sm2sign), with which some signers name SM2-with-SM3.
_SM2_SIGN = "1.2.156.10197.1.301.1"


@pytest.fixture(scope="module")
def sealed(sm2_pki: SM2TestPKI) -> Sealed:
    """A document with one SM2 approval seal at B-B."""
    return sm2_pki.seal(level=SealLevel.B_B)


def _seal(sealed: Sealed) -> tuple[EmbeddedSeal, cms.ContentInfo]:
    """The seal read back, and a copy of its CMS to change."""
    [seal] = embedded_seals(sealed.pdf)
    return seal, cms.ContentInfo.load(seal.content.dump())


def _with_cms(pdf: bytes, content: cms.ContentInfo) -> bytes:
    """``pdf`` with ``content`` in the first signature's ``/Contents`` (the same length)."""
    first, first_len, second, _, _ = forge.byte_range(pdf)
    start, end = first + first_len + 1, second - 1  # inside "<" … ">"
    new_hex: bytes = content.dump().hex().encode()
    assert len(new_hex) <= end - start
    return pdf[:start] + new_hex.ljust(end - start, b"0") + pdf[end:]


def _judge(pdf: bytes, sm2_pki: SM2TestPKI) -> Report:
    report = verify_pdf(pdf, policy=sm2_pki.policy())
    assert report.verdict is not Verdict.VALID, report.reasons
    return report


def test_a_signature_with_another_sm2_user_id_is_invalid(
    sm2_pki: SM2TestPKI, sealed: Sealed, tmp_path: Path
) -> None:
    # The seal's own key signs the same signed attributes, with OpenSSL's default (empty) user
    # id instead of 1234567812345678: Z_A differs, so the signature must not verify.
    seal, content = _seal(sealed)
    handle = sealed.seal.signer.handle
    assert isinstance(handle, SM2KeyHandle)
    (tmp_path / "key.der").write_bytes(handle.pkcs8_der())
    openssl("pkey", "-inform", "DER", "-in", tmp_path / "key.der", "-out", tmp_path / "key.pem")
    (tmp_path / "attrs.der").write_bytes(seal.signed_attrs_der())
    openssl("pkeyutl", "-sign", "-rawin", "-digest", "sm3", "-inkey", tmp_path / "key.pem",
            "-in", tmp_path / "attrs.der", "-out", tmp_path / "sig")  # fmt: skip
    content["content"]["signer_infos"][0]["signature"] = (tmp_path / "sig").read_bytes()
    report = _judge(_with_cms(sealed.pdf, content), sm2_pki)
    assert report.verdict is Verdict.INVALID
    signature = report.signatures[0]
    assert signature.intact
    assert not signature.valid
    assert signature.sub_indication == "SIG_CRYPTO_FAILURE"


@pytest.mark.parametrize("algorithm", ["sha256_ecdsa", "sha256_rsa"])
def test_an_sm2_signature_relabelled_as_another_algorithm_is_invalid(
    sm2_pki: SM2TestPKI, sealed: Sealed, algorithm: str
) -> None:
    _, content = _seal(sealed)
    content["content"]["signer_infos"][0]["signature_algorithm"] = {"algorithm": algorithm}
    report = _judge(_with_cms(sealed.pdf, content), sm2_pki)
    assert report.verdict is Verdict.INVALID
    assert report.signatures[0].indication is Indication.TOTAL_FAILED
    assert report.signatures[0].sub_indication == "SIG_CRYPTO_FAILURE"


def test_an_sm2_seal_that_claims_sha256_is_invalid(sm2_pki: SM2TestPKI, sealed: Sealed) -> None:
    # The message digest is SM3's; named SHA-256, it no longer matches the document.
    _, content = _seal(sealed)
    content["content"]["signer_infos"][0]["digest_algorithm"] = {"algorithm": "sha256"}
    report = _judge(_with_cms(sealed.pdf, content), sm2_pki)
    assert report.verdict is Verdict.INVALID
    assert report.signatures[0].sub_indication == "HASH_FAILURE"


def test_the_gmt_0006_sm2sign_oid_names_the_same_signature(
    sm2_pki: SM2TestPKI, sealed: Sealed
) -> None:
    # Not an attack: the same signature under the other name some signers use stays valid.
    _, content = _seal(sealed)
    content["content"]["signer_infos"][0]["signature_algorithm"] = {"algorithm": _SM2_SIGN}
    report = verify_pdf(_with_cms(sealed.pdf, content), policy=sm2_pki.policy())
    assert report.verdict is Verdict.VALID, report.reasons
