"""Hostile PDFs built from real sealed outputs: none comes out VALID, each gets its verdict
(or a typed error) in bounded time."""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from keys.crl import RevokedEntry
from keys.ocsp import RevocationStatus
from signing.options import Certification, SealLevel
from tests.signing.sealing import identity
from tests.testpki import TestPKI, build_look_alike_pki
from tests.verify import forge
from tests.verify.forge import Sealed
from verify.errors import MalformedPDFError, VerificationError
from verify.limits import verify_pdf_bounded
from verify.pdf import verify_pdf
from verify.policy import VerificationLimits, VerificationPolicy
from verify.registry import InMemoryRegistry
from verify.report import Indication, Report, Verdict

# Every attack must be judged within this many seconds.
BOUND_SECONDS = 20.0


@pytest.fixture
def timed() -> Iterator[None]:
    started = time.monotonic()
    yield
    assert time.monotonic() - started < BOUND_SECONDS


def judge(pdf: bytes, policy: VerificationPolicy) -> Report:
    report = verify_pdf(pdf, policy=policy)
    assert report.verdict is not Verdict.VALID, report.reasons
    return report


# --- integrity ------------------------------------------------------------------------------


@pytest.mark.usefixtures("timed")
def test_byte_flip_in_the_signed_range(policy: VerificationPolicy, approval_bb: Sealed) -> None:
    report = judge(forge.flip_signed_byte(approval_bb.pdf), policy)
    assert report.verdict is Verdict.INVALID
    assert report.signatures[0].sub_indication == "HASH_FAILURE"


@pytest.mark.usefixtures("timed")
@pytest.mark.parametrize("sealed_name", ["approval_bb", "licence_lt", "approval_lta"])
def test_appended_update_changing_page_content(
    policy: VerificationPolicy, sealed_name: str, request: pytest.FixtureRequest
) -> None:
    sealed: Sealed = request.getfixturevalue(sealed_name)
    forged = forge.update(sealed.pdf, forge.add_page_content(b"BT /F1 30 Tf 100 400 Td (X) Tj ET"))
    assert judge(forged, policy).verdict is Verdict.MODIFIED


@pytest.mark.usefixtures("timed")
@pytest.mark.parametrize("sealed_name", ["licence_lt", "approval_lta"])
def test_objects_appended_without_cross_reference_section(
    policy: VerificationPolicy, sealed_name: str, request: pytest.FixtureRequest
) -> None:
    sealed: Sealed = request.getfixturevalue(sealed_name)
    forged = sealed.pdf + b"99 0 obj\n<< /Type /Page /Evil true >>\nendobj\n"
    report = judge(forged, policy)
    assert report.verdict is Verdict.MODIFIED
    assert not report.structure.clean


@pytest.mark.usefixtures("timed")
def test_garbage_after_eof(policy: VerificationPolicy, licence_lt: Sealed) -> None:
    report = judge(licence_lt.pdf + b"garbage that is not a PDF object\n", policy)
    assert report.verdict is Verdict.MODIFIED
    assert "stray bytes" in report.structure.problems[0]


def test_line_ends_after_eof_are_allowed(policy: VerificationPolicy, licence_lt: Sealed) -> None:
    assert verify_pdf(licence_lt.pdf + b"\r\n\n", policy=policy).verdict is Verdict.VALID


@pytest.mark.usefixtures("timed")
def test_byte_range_missing(policy: VerificationPolicy, approval_bb: Sealed) -> None:
    forged = approval_bb.pdf.replace(b"/ByteRange", b"/ByteRangX", 1)
    report = judge(forged, policy)
    assert report.verdict is Verdict.INVALID


@pytest.mark.usefixtures("timed")
@pytest.mark.parametrize("case", ["zeros", "overlapping", "out-of-file"])
def test_byte_range_forged(policy: VerificationPolicy, approval_bb: Sealed, case: str) -> None:
    a, b, c, d, _ = forge.byte_range(approval_bb.pdf)
    text = {
        "zeros": b"0 0 0 0",
        "overlapping": f"{a} {b} {b - 200} {d + 200}".encode(),
        "out-of-file": f"{a} {b} {c} {d + 50}".encode(),
    }[case]
    report = judge(forge.set_byte_range(approval_bb.pdf, text), policy)
    assert report.verdict is Verdict.INVALID
    assert report.signatures[0].indication is Indication.TOTAL_FAILED or (
        report.signatures[0].coverage == "UNCLEAR"
    )


@pytest.mark.usefixtures("timed")
def test_contents_emptied(policy: VerificationPolicy, approval_bb: Sealed) -> None:
    report = judge(forge.empty_contents(approval_bb.pdf), policy)
    assert report.verdict is Verdict.INVALID
    assert report.signatures[0].sub_indication == "FORMAT_FAILURE"


@pytest.mark.usefixtures("timed")
def test_signature_wrapping(policy: VerificationPolicy, approval_bb: Sealed) -> None:
    report = judge(forge.wrap_signature(approval_bb.pdf), policy)
    assert report.verdict is Verdict.INVALID
    assert report.signatures[0].coverage == "UNCLEAR"


# --- shadow attacks and other updates ---------------------------------------------------------


@pytest.mark.usefixtures("timed")
@pytest.mark.parametrize("variant", ["hide", "replace", "hide-and-replace"])
def test_shadow_attacks(policy: VerificationPolicy, approval_lta: Sealed, variant: str) -> None:
    change = {
        "hide": forge.add_page_content(b"1 1 1 rg 60 740 400 40 re f"),
        "replace": forge.replace_page_content(b"BT /F1 12 Tf 72 760 Td (Forged text) Tj ET"),
        "hide-and-replace": forge.hide_and_replace,
    }[variant]
    assert judge(forge.update(approval_lta.pdf, change), policy).verdict is Verdict.MODIFIED


@pytest.mark.usefixtures("timed")
@pytest.mark.parametrize("sealed_name", ["approval_bb", "licence_lt"])
def test_evil_annotation(
    policy: VerificationPolicy, sealed_name: str, request: pytest.FixtureRequest
) -> None:
    sealed: Sealed = request.getfixturevalue(sealed_name)
    report = judge(forge.update(sealed.pdf, forge.evil_annotation), policy)
    assert report.verdict is Verdict.MODIFIED


@pytest.mark.usefixtures("timed")
def test_sneaky_second_signature(pki: TestPKI, policy: VerificationPolicy) -> None:
    genuine = forge.seal(pki, level=SealLevel.B_T)
    changed = forge.update(genuine.pdf, forge.add_page_content(b"BT (Forged) Tj ET"))
    fake = forge.look_alike(pki, genuine.seal)
    sneaky = forge.seal(pki, changed, level=SealLevel.B_B, seal_identity=fake)
    report = judge(sneaky.pdf, policy)
    assert report.verdict is Verdict.INVALID
    assert report.signatures[1].sub_indication == "NO_CERTIFICATE_CHAIN_FOUND"
    assert report.signatures[0].modification_level == "OTHER"


@pytest.mark.usefixtures("timed")
def test_seal_field_value_deleted(policy: VerificationPolicy, licence_lt: Sealed) -> None:
    report = judge(forge.update(licence_lt.pdf, forge.delete_seal_value), policy)
    assert report.verdict is Verdict.INVALID
    assert report.reasons[0].code == "no-seal"


# --- forged and foreign seals -----------------------------------------------------------------


@pytest.mark.usefixtures("timed")
def test_look_alike_self_signed_seal(pki: TestPKI, policy: VerificationPolicy) -> None:
    genuine = identity(pki)
    fake = forge.look_alike(pki, genuine)
    assert fake.certificate.subject == genuine.certificate.subject
    forged = forge.seal(pki, level=SealLevel.B_B, seal_identity=fake)
    report = judge(forged.pdf, policy)
    assert report.verdict is Verdict.INVALID
    assert report.signatures[0].sub_indication == "NO_CERTIFICATE_CHAIN_FOUND"
    assert report.signatures[0].trust_anchor is None


@pytest.mark.usefixtures("timed")
def test_image_only_fake_seal(policy: VerificationPolicy) -> None:
    report = judge(forge.image_only_seal(), policy)
    assert report.verdict is Verdict.INVALID
    assert report.signatures == ()


@pytest.mark.usefixtures("timed")
def test_genuine_seal_of_another_department(
    pki: TestPKI, policy: VerificationPolicy, approval_bb: Sealed
) -> None:
    other = identity(pki, department_name="台州市建设局", department_code="9133100015J1YG617W")
    forged = forge.replace_contents(approval_bb.pdf, other.signer)
    registry = InMemoryRegistry([approval_bb.record()])
    report = judge(forged, dataclasses.replace(policy, registry=registry))
    assert report.verdict is Verdict.INVALID
    assert report.registry.matched_by == "signed-bytes"
    assert report.registry.signer_is_recorded_seal is False
    # Cryptographically the other department's seal holds; the registry tells it apart.
    assert report.signatures[0].indication is Indication.TOTAL_PASSED


@pytest.mark.usefixtures("timed")
def test_seal_revoked_before_signing_by_crl(pki: TestPKI) -> None:
    sealed = forge.seal(pki, level=SealLevel.B_T)
    revoked_at = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    crls = forge.service_crls(
        pki, (RevokedEntry(sealed.seal.certificate.serial_number, revoked_at),)
    )
    policy = VerificationPolicy(trust_roots=(pki.root.certificate,), crls=crls)
    report = judge(sealed.pdf, policy)
    assert report.verdict is Verdict.REVOKED
    assert report.signatures[0].indication is Indication.TOTAL_FAILED
    assert report.signatures[0].sub_indication == "REVOKED"
    assert report.signatures[0].revocation.state == "revoked"


@pytest.mark.usefixtures("timed")
def test_seal_revoked_before_signing_by_ocsp(pki: TestPKI) -> None:
    sealed = forge.seal(pki, level=SealLevel.B_T)
    serial = sealed.seal.certificate.serial_number
    revoked_at = datetime.datetime.now(datetime.UTC).replace(microsecond=0) - datetime.timedelta(
        minutes=5
    )
    responder = pki.ocsp_responder({serial: RevocationStatus("revoked", revoked_at=revoked_at)})
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(sealed.seal.certificate, pki.issuing.certificate, hashes.SHA256())
        .build()
        .public_bytes(Encoding.DER)
    )
    policy = VerificationPolicy(
        trust_roots=(pki.root.certificate,),
        crls=forge.service_crls(pki)[:1],  # the root's CRL, for the issuing CA
        ocsp_responses=(responder.respond(request).der,),
    )
    report = judge(sealed.pdf, policy)
    assert report.verdict is Verdict.REVOKED
    assert "ocsp" in report.signatures[0].revocation.sources


@pytest.mark.usefixtures("timed")
def test_sha1_signature_fails_crypto_constraints(pki: TestPKI, policy: VerificationPolicy) -> None:
    report = judge(forge.sha1_signed(pki), policy)
    assert report.verdict is Verdict.INVALID
    assert report.signatures[0].sub_indication in (
        "CRYPTO_CONSTRAINTS_FAILURE",
        "CRYPTO_CONSTRAINTS_FAILURE_NO_POE",
    )
    assert report.signatures[0].algorithms is not None
    assert not report.signatures[0].algorithms.acceptable


# --- resource attacks ----------------------------------------------------------------------


@pytest.mark.usefixtures("timed")
def test_flate_bomb(policy: VerificationPolicy, approval_bb: Sealed) -> None:
    bomb = forge.update(approval_bb.pdf, forge.flate_bomb)
    bounded = dataclasses.replace(
        policy, limits=VerificationLimits(wall_seconds=15, memory_bytes=1536 * 1024 * 1024)
    )
    try:
        report = verify_pdf_bounded(bomb, policy=bounded)
    except VerificationError:
        return
    assert report.verdict is not Verdict.VALID


@pytest.mark.usefixtures("timed")
def test_deep_nesting_is_refused_before_parsing(policy: VerificationPolicy) -> None:
    with pytest.raises(MalformedPDFError, match="nests"):
        verify_pdf(forge.deep_nesting(100_000), policy=policy)


@pytest.mark.usefixtures("timed")
def test_deep_nesting_appended_to_a_sealed_file(
    policy: VerificationPolicy, approval_bb: Sealed
) -> None:
    forged = forge.append_deep_update(approval_bb.pdf)
    with pytest.raises(MalformedPDFError, match="nests"):
        verify_pdf(forged, policy=policy)


@pytest.mark.usefixtures("timed")
def test_cross_reference_prev_loop(policy: VerificationPolicy, licence_lt: Sealed) -> None:
    with pytest.raises(MalformedPDFError, match="cannot be read"):
        verify_pdf(forge.prev_loop(licence_lt.pdf), policy=policy)


@pytest.mark.usefixtures("timed")
@pytest.mark.parametrize(
    ("data", "failure"),
    [
        (b"", "it has no %PDF- header"),
        (b"PK\x03\x04 a zip file", "it has no %PDF- header"),
        (b"%PDF-1.7\nno cross-reference at all", "it has no %%EOF marker"),
    ],
    ids=["empty", "zip", "no-eof"],
)
def test_not_a_pdf(policy: VerificationPolicy, data: bytes, failure: str) -> None:
    with pytest.raises(MalformedPDFError, match=failure):
        verify_pdf(data, policy=policy)


def test_attack_files_can_be_kept_for_inspection(tmp_path: Path, approval_bb: Sealed) -> None:
    # The forged bytes are well-formed enough for other tools to open (a sanity check that
    # the attacks test the verifier, not the forger's bugs).
    path = tmp_path / "wrapped.pdf"
    path.write_bytes(forge.wrap_signature(approval_bb.pdf))
    assert forge.reader(path.read_bytes()).root["/AcroForm"] is not None
    assert forge.reader(forge.update(approval_bb.pdf, forge.evil_annotation)).root is not None
    _ = Certification


@pytest.mark.usefixtures("timed")
def test_an_older_good_ocsp_answer_in_the_file_does_not_hide_a_revocation(pki: TestPKI) -> None:
    # A B-LT seal carries an authentic "good" OCSP answer (valid for hours) in its DSS; the
    # service's current CRL lists the seal as revoked before the seal was made, as for a
    # document forged with a stolen key after its seal was revoked.
    sealed = forge.seal(pki, level=SealLevel.B_LT)
    assert b"/OCSPs" in sealed.pdf
    revoked_at = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    crls = forge.service_crls(
        pki, (RevokedEntry(sealed.seal.certificate.serial_number, revoked_at),)
    )
    report = judge(sealed.pdf, VerificationPolicy(trust_roots=(pki.root.certificate,), crls=crls))
    assert report.verdict is Verdict.REVOKED
    assert report.signatures[0].revocation.state == "revoked"


@pytest.fixture
def look_alike_later(pki: TestPKI, policy: VerificationPolicy) -> Report:
    """A genuine B-T seal, then a seal from a PKI with our CA names, judged together."""
    # The second signature carries an impostor chain with our CA names; the signatures of a
    # document share one validation context, so its certificates must not touch the first.
    genuine = forge.seal(pki, level=SealLevel.B_T)
    impostor = build_look_alike_pki(pki)
    assert impostor.issuing.certificate.subject == pki.issuing.certificate.subject
    later = forge.seal(impostor, genuine.pdf, level=SealLevel.B_T, seal_identity=identity(impostor))
    return judge(later.pdf, policy)


@pytest.mark.usefixtures("timed")
def test_a_later_seal_from_a_look_alike_pki_leaves_the_first_seal_alone(
    pki: TestPKI, look_alike_later: Report
) -> None:
    first = look_alike_later.signatures[0]
    assert first.indication is Indication.TOTAL_PASSED
    assert first.trusted
    assert first.trust_anchor is not None
    root_sha256 = pki.root.certificate.fingerprint(hashes.SHA256()).hex()
    assert first.trust_anchor.sha256 == root_sha256


@pytest.mark.usefixtures("timed")
def test_a_later_seal_from_a_look_alike_pki_is_untrusted_and_the_file_invalid(
    look_alike_later: Report,
) -> None:
    assert not look_alike_later.signatures[1].trusted
    assert look_alike_later.verdict is Verdict.INVALID
