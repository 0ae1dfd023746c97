"""Hostile PDFs built from real sealed outputs: none comes out VALID, each gets its verdict
(or a typed error).

Every attack on a sealed file runs on ECDSA P-256 seals and on SM2 seals (SM3 digests,
SM2-with-SM3 chains, CRLs, OCSP answers and timestamps, :mod:`tests.verify.sm2pki`), and must
give the same verdict on both. The ``sm2_`` fixtures are the SM2 counterparts of
``approval_bb``, ``licence_lt`` and ``approval_lta``; :func:`sealed_with_policy` pairs each
with the policy that trusts its root.
"""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes

from keys.crl import RevokedEntry
from keys.ocsp import RevocationStatus
from signing.options import Certification, SealLevel
from tests.testpki import TestPKI
from tests.verify import forge
from tests.verify.forge import Sealed
from tests.verify.schemes import ECDSAScheme, Scheme
from tests.verify.sm2pki import SM2TestPKI
from verify.errors import MalformedPDFError, VerificationError
from verify.limits import verify_pdf_bounded
from verify.pdf import verify_pdf
from verify.policy import VerificationLimits, VerificationPolicy
from verify.registry import InMemoryRegistry
from verify.report import Indication, Report, Verdict

BB = ["approval_bb", "sm2_approval_bb"]
LT = ["licence_lt", "sm2_licence_lt"]
LTA = ["approval_lta", "sm2_approval_lta"]
SCHEMES = ["ecdsa", "sm2"]


@pytest.fixture(scope="module")
def sm2_policy(sm2_pki: SM2TestPKI) -> VerificationPolicy:
    """The SM2 root and its current CRLs, no registry."""
    return sm2_pki.policy()


@pytest.fixture(scope="module")
def sm2_licence_lt(sm2_pki: SM2TestPKI) -> Sealed:
    """A licence certified NO_CHANGES by an SM2 seal at B-LT."""
    return sm2_pki.seal(level=SealLevel.B_LT, certification=Certification.NO_CHANGES)


@pytest.fixture(scope="module")
def sm2_approval_bb(sm2_pki: SM2TestPKI) -> Sealed:
    """A document with one SM2 approval seal at B-B."""
    return sm2_pki.seal(level=SealLevel.B_B)


@pytest.fixture(scope="module")
def sm2_approval_lta(sm2_pki: SM2TestPKI) -> Sealed:
    """A document with one SM2 approval seal at B-LTA."""
    return sm2_pki.seal(level=SealLevel.B_LTA)


@pytest.fixture(params=SCHEMES)
def scheme(request: pytest.FixtureRequest, pki: TestPKI, sm2_pki: SM2TestPKI) -> Scheme:
    """The test PKI of each seal algorithm."""
    return sm2_pki if request.param == "sm2" else ECDSAScheme(pki)


def sealed_with_policy(
    request: pytest.FixtureRequest, sealed_name: str
) -> tuple[Sealed, VerificationPolicy]:
    """The sealed fixture ``sealed_name`` and the policy that trusts its root."""
    policy_name = "sm2_policy" if sealed_name.startswith("sm2_") else "policy"
    return request.getfixturevalue(sealed_name), request.getfixturevalue(policy_name)


def judge(pdf: bytes, policy: VerificationPolicy) -> Report:
    report = verify_pdf(pdf, policy=policy)
    assert report.verdict is not Verdict.VALID, report.reasons
    return report


# --- integrity ------------------------------------------------------------------------------


@pytest.mark.parametrize("sealed_name", BB)
def test_byte_flip_in_the_signed_range(sealed_name: str, request: pytest.FixtureRequest) -> None:
    sealed, policy = sealed_with_policy(request, sealed_name)
    report = judge(forge.flip_signed_byte(sealed.pdf), policy)
    assert report.verdict is Verdict.INVALID
    assert report.signatures[0].sub_indication == "HASH_FAILURE"


@pytest.mark.parametrize("sealed_name", BB + LT + LTA)
def test_appended_update_changing_page_content(
    sealed_name: str, request: pytest.FixtureRequest
) -> None:
    sealed, policy = sealed_with_policy(request, sealed_name)
    forged = forge.update(sealed.pdf, forge.add_page_content(b"BT /F1 30 Tf 100 400 Td (X) Tj ET"))
    assert judge(forged, policy).verdict is Verdict.MODIFIED


@pytest.mark.parametrize("sealed_name", LT + LTA)
def test_objects_appended_without_cross_reference_section(
    sealed_name: str, request: pytest.FixtureRequest
) -> None:
    sealed, policy = sealed_with_policy(request, sealed_name)
    forged = sealed.pdf + b"99 0 obj\n<< /Type /Page /Evil true >>\nendobj\n"
    report = judge(forged, policy)
    assert report.verdict is Verdict.MODIFIED
    assert not report.structure.clean


@pytest.mark.parametrize("sealed_name", LT)
def test_garbage_after_eof(sealed_name: str, request: pytest.FixtureRequest) -> None:
    sealed, policy = sealed_with_policy(request, sealed_name)
    report = judge(sealed.pdf + b"garbage that is not a PDF object\n", policy)
    assert report.verdict is Verdict.MODIFIED
    assert "stray bytes" in report.structure.problems[0]


@pytest.mark.parametrize("sealed_name", LT)
def test_line_ends_after_eof_are_allowed(sealed_name: str, request: pytest.FixtureRequest) -> None:
    sealed, policy = sealed_with_policy(request, sealed_name)
    assert verify_pdf(sealed.pdf + b"\r\n\n", policy=policy).verdict is Verdict.VALID


@pytest.mark.parametrize("sealed_name", BB)
def test_byte_range_missing(sealed_name: str, request: pytest.FixtureRequest) -> None:
    sealed, policy = sealed_with_policy(request, sealed_name)
    forged = sealed.pdf.replace(b"/ByteRange", b"/ByteRangX", 1)
    report = judge(forged, policy)
    assert report.verdict is Verdict.INVALID


@pytest.mark.parametrize("sealed_name", BB)
@pytest.mark.parametrize("case", ["zeros", "overlapping", "out-of-file"])
def test_byte_range_forged(sealed_name: str, case: str, request: pytest.FixtureRequest) -> None:
    sealed, policy = sealed_with_policy(request, sealed_name)
    a, b, c, d, _ = forge.byte_range(sealed.pdf)
    text = {
        "zeros": b"0 0 0 0",
        "overlapping": f"{a} {b} {b - 200} {d + 200}".encode(),
        "out-of-file": f"{a} {b} {c} {d + 50}".encode(),
    }[case]
    report = judge(forge.set_byte_range(sealed.pdf, text), policy)
    assert report.verdict is Verdict.INVALID
    assert report.signatures[0].indication is Indication.TOTAL_FAILED or (
        report.signatures[0].coverage == "UNCLEAR"
    )


@pytest.mark.parametrize("sealed_name", BB)
def test_contents_emptied(sealed_name: str, request: pytest.FixtureRequest) -> None:
    sealed, policy = sealed_with_policy(request, sealed_name)
    report = judge(forge.empty_contents(sealed.pdf), policy)
    assert report.verdict is Verdict.INVALID
    assert report.signatures[0].sub_indication == "FORMAT_FAILURE"


@pytest.mark.parametrize("sealed_name", BB)
def test_signature_wrapping(sealed_name: str, request: pytest.FixtureRequest) -> None:
    sealed, policy = sealed_with_policy(request, sealed_name)
    report = judge(forge.wrap_signature(sealed.pdf), policy)
    assert report.verdict is Verdict.INVALID
    assert report.signatures[0].coverage == "UNCLEAR"


# --- shadow attacks and other updates ---------------------------------------------------------


@pytest.mark.parametrize("sealed_name", LTA)
@pytest.mark.parametrize("variant", ["hide", "replace", "hide-and-replace"])
def test_shadow_attacks(sealed_name: str, variant: str, request: pytest.FixtureRequest) -> None:
    sealed, policy = sealed_with_policy(request, sealed_name)
    change = {
        "hide": forge.add_page_content(b"1 1 1 rg 60 740 400 40 re f"),
        "replace": forge.replace_page_content(b"BT /F1 12 Tf 72 760 Td (Forged text) Tj ET"),
        "hide-and-replace": forge.hide_and_replace,
    }[variant]
    assert judge(forge.update(sealed.pdf, change), policy).verdict is Verdict.MODIFIED


@pytest.mark.parametrize("sealed_name", BB + LT)
def test_evil_annotation(sealed_name: str, request: pytest.FixtureRequest) -> None:
    sealed, policy = sealed_with_policy(request, sealed_name)
    report = judge(forge.update(sealed.pdf, forge.evil_annotation), policy)
    assert report.verdict is Verdict.MODIFIED


def test_sneaky_second_signature(scheme: Scheme) -> None:
    genuine = scheme.seal(level=SealLevel.B_T)
    changed = forge.update(genuine.pdf, forge.add_page_content(b"BT (Forged) Tj ET"))
    fake = scheme.look_alike_seal(genuine.seal)
    sneaky = scheme.seal(changed, level=SealLevel.B_B, seal_identity=fake)
    report = judge(sneaky.pdf, scheme.policy())
    assert report.verdict is Verdict.INVALID
    assert report.signatures[1].sub_indication == "NO_CERTIFICATE_CHAIN_FOUND"
    assert report.signatures[0].modification_level == "OTHER"


@pytest.mark.parametrize("sealed_name", LT)
def test_seal_field_value_deleted(sealed_name: str, request: pytest.FixtureRequest) -> None:
    sealed, policy = sealed_with_policy(request, sealed_name)
    report = judge(forge.update(sealed.pdf, forge.delete_seal_value), policy)
    assert report.verdict is Verdict.INVALID
    assert report.reasons[0].code == "no-seal"


# --- forged and foreign seals -----------------------------------------------------------------


def test_look_alike_seal(scheme: Scheme) -> None:
    # ECDSA: a self-signed seal certificate; SM2: a seal of an impostor's SM2 CA with our names.
    genuine = scheme.identity()
    fake = scheme.look_alike_seal(genuine)
    assert fake.certificate.subject == genuine.certificate.subject
    forged = scheme.seal(level=SealLevel.B_B, seal_identity=fake)
    report = judge(forged.pdf, scheme.policy())
    assert report.verdict is Verdict.INVALID
    assert report.signatures[0].sub_indication == "NO_CERTIFICATE_CHAIN_FOUND"
    assert report.signatures[0].trust_anchor is None


def test_image_only_fake_seal(policy: VerificationPolicy) -> None:
    report = judge(forge.image_only_seal(), policy)
    assert report.verdict is Verdict.INVALID
    assert report.signatures == ()


def test_genuine_seal_of_another_department(scheme: Scheme) -> None:
    sealed = scheme.seal(level=SealLevel.B_B)
    other = scheme.identity(department_name="台州市建设局", department_code="9133100015J1YG617W")
    forged = scheme.replace_contents(sealed.pdf, other.signer)
    registry = InMemoryRegistry([sealed.record()])
    report = judge(forged, dataclasses.replace(scheme.policy(), registry=registry))
    assert report.verdict is Verdict.INVALID
    assert report.registry.matched_by == "signed-bytes"
    assert report.registry.signer_is_recorded_seal is False
    # Cryptographically the other department's seal holds; the registry tells it apart.
    assert report.signatures[0].indication is Indication.TOTAL_PASSED


def test_seal_revoked_before_signing_by_crl(scheme: Scheme) -> None:
    sealed = scheme.seal(level=SealLevel.B_T)
    revoked_at = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    revoked = (RevokedEntry(sealed.seal.certificate.serial_number, revoked_at),)
    report = judge(sealed.pdf, scheme.policy(revoked))
    assert report.verdict is Verdict.REVOKED
    assert report.signatures[0].indication is Indication.TOTAL_FAILED
    assert report.signatures[0].sub_indication == "REVOKED"
    assert report.signatures[0].revocation.state == "revoked"


def test_seal_revoked_before_signing_by_ocsp(scheme: Scheme) -> None:
    sealed = scheme.seal(level=SealLevel.B_T)
    serial = sealed.seal.certificate.serial_number
    revoked_at = datetime.datetime.now(datetime.UTC).replace(microsecond=0) - datetime.timedelta(
        minutes=5
    )
    answer = scheme.ocsp_response(
        sealed.seal.certificate, {serial: RevocationStatus("revoked", revoked_at=revoked_at)}
    )
    policy = VerificationPolicy(
        trust_roots=(scheme.root_certificate,),
        crls=scheme.crls()[:1],  # the root's CRL, for the issuing CA
        ocsp_responses=(answer,),
    )
    report = judge(sealed.pdf, policy)
    assert report.verdict is Verdict.REVOKED
    assert "ocsp" in report.signatures[0].revocation.sources


def test_sha1_signature_fails_crypto_constraints(pki: TestPKI, policy: VerificationPolicy) -> None:
    # ECDSA only: SM2 is defined with SM3 alone, and an SM2 key refuses another digest.
    report = judge(forge.sha1_signed(pki), policy)
    assert report.verdict is Verdict.INVALID
    assert report.signatures[0].sub_indication in (
        "CRYPTO_CONSTRAINTS_FAILURE",
        "CRYPTO_CONSTRAINTS_FAILURE_NO_POE",
    )
    assert report.signatures[0].algorithms is not None
    assert not report.signatures[0].algorithms.acceptable


# --- resource attacks ----------------------------------------------------------------------


@pytest.mark.parametrize("sealed_name", BB)
def test_flate_bomb(sealed_name: str, request: pytest.FixtureRequest) -> None:
    sealed, policy = sealed_with_policy(request, sealed_name)
    bomb = forge.update(sealed.pdf, forge.flate_bomb)
    bounded = dataclasses.replace(
        policy, limits=VerificationLimits(wall_seconds=15, memory_bytes=1536 * 1024 * 1024)
    )
    try:
        report = verify_pdf_bounded(bomb, policy=bounded)
    except VerificationError:
        return
    assert report.verdict is not Verdict.VALID


def test_deep_nesting_is_refused_before_parsing(policy: VerificationPolicy) -> None:
    with pytest.raises(MalformedPDFError, match="nests"):
        verify_pdf(forge.deep_nesting(100_000), policy=policy)


@pytest.mark.parametrize("sealed_name", BB)
def test_deep_nesting_appended_to_a_sealed_file(
    sealed_name: str, request: pytest.FixtureRequest
) -> None:
    sealed, policy = sealed_with_policy(request, sealed_name)
    forged = forge.append_deep_update(sealed.pdf)
    with pytest.raises(MalformedPDFError, match="nests"):
        verify_pdf(forged, policy=policy)


@pytest.mark.parametrize("sealed_name", LT)
def test_cross_reference_prev_loop(sealed_name: str, request: pytest.FixtureRequest) -> None:
    sealed, policy = sealed_with_policy(request, sealed_name)
    with pytest.raises(MalformedPDFError, match="cannot be read"):
        verify_pdf(forge.prev_loop(sealed.pdf), policy=policy)


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


def test_an_older_good_ocsp_answer_in_the_file_does_not_hide_a_revocation(
    scheme: Scheme,
) -> None:
    # A B-LT seal carries an authentic "good" OCSP answer (valid for hours) in its DSS; the
    # service's current CRL lists the seal as revoked before the seal was made, as for a
    # document forged with a stolen key after its seal was revoked.
    sealed = scheme.seal(level=SealLevel.B_LT)
    assert b"/OCSPs" in sealed.pdf
    revoked_at = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    revoked = (RevokedEntry(sealed.seal.certificate.serial_number, revoked_at),)
    report = judge(
        sealed.pdf,
        VerificationPolicy(trust_roots=(scheme.root_certificate,), crls=scheme.crls(revoked)),
    )
    assert report.verdict is Verdict.REVOKED
    assert report.signatures[0].revocation.state == "revoked"


@pytest.fixture
def look_alike_later(scheme: Scheme) -> Report:
    """A genuine B-T seal, then a seal from a PKI with our CA names, judged together."""
    # The second signature carries an impostor chain with our CA names; the signatures of a
    # document share one validation context, so its certificates must not touch the first.
    genuine = scheme.seal(level=SealLevel.B_T)
    impostor = scheme.look_alike()
    assert impostor.root_certificate.subject == scheme.root_certificate.subject
    later = impostor.seal(genuine.pdf, level=SealLevel.B_T)
    return judge(later.pdf, scheme.policy())


def test_a_later_seal_from_a_look_alike_pki_leaves_the_first_seal_alone(
    scheme: Scheme, look_alike_later: Report
) -> None:
    first = look_alike_later.signatures[0]
    assert first.indication is Indication.TOTAL_PASSED
    assert first.trusted
    assert first.trust_anchor is not None
    root_sha256 = scheme.root_certificate.fingerprint(hashes.SHA256()).hex()
    assert first.trust_anchor.sha256 == root_sha256


def test_a_later_seal_from_a_look_alike_pki_is_untrusted_and_the_file_invalid(
    look_alike_later: Report,
) -> None:
    assert not look_alike_later.signatures[1].trusted
    # The impostor's issuing CA names our root, whose key did not sign it.
    assert look_alike_later.signatures[1].sub_indication == "CERTIFICATE_CHAIN_GENERAL_FAILURE"
    assert look_alike_later.verdict is Verdict.INVALID
