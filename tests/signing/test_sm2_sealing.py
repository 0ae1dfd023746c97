"""SM2 seals in a PDF: CAdES-detached CMS with SM3 and SM2-with-SM3, judged from outside.

qpdf checks the file, pdfsig lists the seal (it cannot verify SM2), asn1crypto reads the
CMS, OpenSSL 3.0 checks the SM2 signature over DER(signed attributes), and cryptography's
SM3 recomputes the message digest over the ``/ByteRange``.
"""

from __future__ import annotations

import asyncio
import io
import subprocess
from pathlib import Path

import pytest
from asn1crypto import cms
from pyhanko.pdf_utils.reader import PdfFileReader

from keys import oids
from keys.signer import KeySigner
from signing.options import Certification, Placement, ReservedField, SealLevel, SealOptions
from signing.sealer import SealIdentity, SealingContext, seal_pdf_bytes
from tests.signing.sealing import make_pdf
from tests.signing.sm2 import (
    EmbeddedSeal,
    embedded_seals,
    openssl_verifies,
    sm2_identity,
    sm3,
)
from tests.testpki import DEPARTMENT_NAME

_VERIFIED = "Signature Verified Successfully"
_FAILED = "Signature Verification Failure"


def _seal(pdf: bytes, identity: SealIdentity, **options: object) -> tuple[bytes, EmbeddedSeal, str]:
    """Seal at B-B; the sealed bytes, the new seal read back and the engine's signed digest."""
    sealed, result = seal_pdf_bytes(
        pdf,
        identity=identity,
        options=SealOptions(level=SealLevel.B_B, **options),  # type: ignore[arg-type]
        context=SealingContext(),
    )
    [seal] = [s for s in embedded_seals(sealed) if s.field_name == result.field_name]
    return sealed, seal, result.signed_digest


@pytest.fixture(scope="module")
def identity() -> SealIdentity:
    return sm2_identity()


@pytest.fixture(scope="module")
def certified(identity: SealIdentity) -> tuple[bytes, EmbeddedSeal, str]:
    """A licence-like PDF certified (no changes) with a visible SM2 seal."""
    return _seal(
        make_pdf(2),
        identity,
        certification=Certification.NO_CHANGES,
        placement=Placement(page=1, x=450, y=150),
        field_name="IssuerSeal",
    )


def test_the_seal_is_an_etsi_cades_detached_signature_of_adobe_ppklite(
    certified: tuple[bytes, EmbeddedSeal, str],
) -> None:
    _, seal, _ = certified
    assert seal.filter == "/Adobe.PPKLite"
    assert seal.sub_filter == "/ETSI.CAdES.detached"


def test_the_cms_is_rfc_5652_signed_data_with_sm3_and_sm2_with_sm3(
    certified: tuple[bytes, EmbeddedSeal, str],
) -> None:
    _, seal, _ = certified
    assert seal.content["content_type"].dotted == "1.2.840.113549.1.7.2"  # id-signedData
    signed = seal.signed_data
    assert signed["encap_content_info"]["content_type"].dotted == "1.2.840.113549.1.7.1"
    assert signed["encap_content_info"]["content"].native is None  # detached
    assert [a["algorithm"].dotted for a in signed["digest_algorithms"]] == [oids.SM3]
    info = seal.signer_info
    assert info["digest_algorithm"]["algorithm"].dotted == oids.SM3 == "1.2.156.10197.1.401"
    signature_algorithm = info["signature_algorithm"]
    assert signature_algorithm["algorithm"].dotted == oids.SM2_WITH_SM3 == "1.2.156.10197.1.501"
    # GB/T 35276: the SM2-with-SM3 identifier has no parameters.
    assert signature_algorithm["parameters"].native is None
    assert sorted(a["type"].native for a in info["signed_attrs"]) == [
        "content_type",
        "message_digest",
        "signing_certificate_v2",
    ]
    assert seal.signer_certificate["tbs_certificate"]["signature"]["algorithm"].dotted == (
        oids.SM2_WITH_SM3
    )


def test_openssl_accepts_the_sm2_signature_over_the_signed_attributes(
    certified: tuple[bytes, EmbeddedSeal, str], tmp_path: Path
) -> None:
    _, seal, _ = certified
    assert _VERIFIED in openssl_verifies(tmp_path, seal)
    # The same signature over other attributes is refused: OpenSSL really checks it.
    changed = bytearray(seal.signed_attrs_der())
    changed[-1] ^= 0x01
    assert _FAILED in openssl_verifies(tmp_path, seal, bytes(changed))


def test_the_message_digest_is_sm3_over_the_byte_range(
    certified: tuple[bytes, EmbeddedSeal, str],
) -> None:
    pdf, seal, signed_digest = certified
    digest = sm3(seal.covered_bytes(pdf))
    assert seal.message_digest == digest
    # The registry knows the seal by the same SM3 digest.
    assert signed_digest == digest.hex()
    assert seal.byte_range[0] == 0
    assert seal.byte_range[2] + seal.byte_range[3] == len(pdf)


def test_a_byte_changed_in_the_signed_range_breaks_the_digest(
    certified: tuple[bytes, EmbeddedSeal, str],
) -> None:
    pdf, seal, _ = certified
    changed = bytearray(pdf)
    # The version in the header, "%PDF-1.x": inside the first covered range.
    offset = pdf.index(b"%PDF-") + 5
    assert offset < seal.byte_range[1]
    changed[offset] ^= 0x01
    assert sm3(seal.covered_bytes(bytes(changed))) != seal.message_digest


def test_qpdf_finds_no_error(certified: tuple[bytes, EmbeddedSeal, str], tmp_path: Path) -> None:
    pdf, _, _ = certified
    path = tmp_path / "sealed.pdf"
    path.write_bytes(pdf)
    result = subprocess.run(["qpdf", "--check", path], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No syntax or stream encoding errors found" in result.stdout


def test_pdfsig_lists_the_seal_but_cannot_verify_sm2(
    certified: tuple[bytes, EmbeddedSeal, str], tmp_path: Path
) -> None:
    pdf, _, _ = certified
    path = tmp_path / "sealed.pdf"
    path.write_bytes(pdf)
    result = subprocess.run(["pdfsig", path], capture_output=True, text=True, check=False)
    out = result.stdout + result.stderr
    assert "Signature #1:" in out
    assert "Signature Field Name: IssuerSeal" in out
    assert f"Signer Certificate Common Name: {DEPARTMENT_NAME}证照专用章" in out
    assert "Signature Type: ETSI.CAdES.detached" in out
    assert "Total document signed" in out
    # poppler's NSS backend knows neither SM3 nor SM2: it says so rather than failing quietly.
    assert "Signing Hash Algorithm: unknown" in out
    assert "Unrecognized Hash ID" in out
    assert "Signature Validation: Signature is Valid." not in out


def test_the_certified_seal_forbids_changes_in_its_docmdp(
    certified: tuple[bytes, EmbeddedSeal, str],
) -> None:
    pdf, _, _ = certified
    reader = PdfFileReader(io.BytesIO(pdf))
    perms = reader.root["/Perms"]
    assert "/DocMDP" in perms
    [reference] = perms["/DocMDP"]["/Reference"]
    assert reference["/TransformParams"]["/P"] == 1


def test_an_approval_seal_fills_the_field_an_sm2_certification_reserved(
    identity: SealIdentity, tmp_path: Path
) -> None:
    first, certifying, _ = _seal(
        make_pdf(1),
        identity,
        certification=Certification.FORM_FILLING,
        reserve_fields=(ReservedField(name="Dept2", placement=Placement(page=1, x=280, y=150)),),
    )
    second_identity = sm2_identity("公章")
    sealed, approval, _ = _seal(first, second_identity, field_name="Dept2")
    assert [s.field_name for s in embedded_seals(sealed)] == [certifying.field_name, "Dept2"]
    for seal in (certifying, approval):
        assert _VERIFIED in openssl_verifies(tmp_path, seal)
    assert approval.message_digest == sm3(approval.covered_bytes(sealed))
    # The certifying seal still covers its revision, byte for byte.
    assert certifying.message_digest == sm3(certifying.covered_bytes(sealed))


def test_pyhankos_own_cms_assembly_signs_sm2_the_same_way(
    identity: SealIdentity, tmp_path: Path
) -> None:
    # A CMS that is not plain PAdES goes through pyHanko's Signer, which adds its own
    # attributes (CMS algorithm protection); it must name and compute the same algorithms.
    signer = identity.signer
    assert isinstance(signer, KeySigner)
    document_digest = sm3(b"an SM2 CMS through pyHanko")
    content = asyncio.run(signer.async_sign(document_digest, "sm3", use_pades=False))
    assert isinstance(content, cms.ContentInfo)
    seal = EmbeddedSeal.of_cms(cms.ContentInfo.load(content.dump()))
    assert seal.signer_info["digest_algorithm"]["algorithm"].dotted == oids.SM3
    assert seal.signer_info["signature_algorithm"]["algorithm"].dotted == oids.SM2_WITH_SM3
    assert seal.message_digest == document_digest
    protection = seal.attribute("cms_algorithm_protection")
    assert isinstance(protection, dict)
    assert protection["digest_algorithm"]["algorithm"] == "sm3"
    assert protection["signature_algorithm"]["algorithm"] == "sm2_sm3"
    assert _VERIFIED in openssl_verifies(tmp_path, seal)
