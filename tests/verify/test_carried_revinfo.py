"""Revocation data carried inside a signature (not in the DSS) is read: Acrobat's signed
attribute adbe-revocationInfoArchival and the CMS ``crls`` field, CRLs and OCSP responses."""

from __future__ import annotations

import datetime

from cryptography import x509

from keys.ocsp import RevocationStatus
from tests.testpki import TestPKI, build_look_alike_pki
from tests.verify.forge import (
    Sealed,
    adobe_revinfo_signed,
    ocsp_answer,
    service_crls,
    with_cms_revinfo,
)
from verify.pdf import verify_pdf
from verify.policy import VerificationPolicy
from verify.report import Indication, Verdict


def ocsp_for(pki: TestPKI, cert: x509.Certificate, status: RevocationStatus) -> bytes:
    """The test OCSP responder's answer on ``cert``."""
    responder = pki.ocsp_responder({cert.serial_number: status})
    return ocsp_answer(responder, cert, pki.issuing.certificate)


def root_crl(pki: TestPKI) -> bytes:
    """The root's CRL (the issuing CA's status)."""
    return service_crls(pki)[0]


def test_acrobat_style_revinfo_in_the_signed_attributes(
    pki: TestPKI, offline_policy: VerificationPolicy
) -> None:
    report = verify_pdf(adobe_revinfo_signed(pki), policy=offline_policy)
    seal = report.signatures[0]
    assert report.verdict is Verdict.VALID, report.reasons
    assert seal.indication is Indication.TOTAL_PASSED
    assert seal.revocation.state == "good"
    assert seal.revocation.sources == ("embedded",)


def test_without_any_revinfo_the_same_kind_of_file_is_indeterminate(
    offline_policy: VerificationPolicy, approval_bb: Sealed
) -> None:
    report = verify_pdf(approval_bb.pdf, policy=offline_policy)
    assert report.verdict is Verdict.INDETERMINATE
    assert report.signatures[0].revocation.sources == ()


def test_crl_and_ocsp_in_the_cms_crls_field(
    pki: TestPKI, offline_policy: VerificationPolicy, approval_bb: Sealed
) -> None:
    good = ocsp_for(pki, approval_bb.seal.certificate, RevocationStatus("good"))
    pdf = with_cms_revinfo(approval_bb.pdf, [root_crl(pki)], [good])
    report = verify_pdf(pdf, policy=offline_policy)
    seal = report.signatures[0]
    assert seal.intact
    assert report.verdict is Verdict.VALID, report.reasons
    assert seal.revocation.state == "good"
    assert seal.revocation.sources == ("embedded",)


def test_a_revoked_answer_carried_in_the_cms_is_heeded(
    pki: TestPKI, offline_policy: VerificationPolicy, approval_bb: Sealed
) -> None:
    revoked = ocsp_for(
        pki,
        approval_bb.seal.certificate,
        RevocationStatus(
            "revoked",
            revoked_at=datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1),
            reason=x509.ReasonFlags.key_compromise,
        ),
    )
    pdf = with_cms_revinfo(approval_bb.pdf, [root_crl(pki)], [revoked])
    report = verify_pdf(pdf, policy=offline_policy)
    assert report.verdict is not Verdict.VALID
    assert report.signatures[0].revocation.state == "revoked"
    assert report.signatures[0].revocation.reason == "key_compromise"


def test_revinfo_from_a_look_alike_pki_is_not_believed(
    pki: TestPKI, offline_policy: VerificationPolicy, approval_bb: Sealed
) -> None:
    # Another PKI with the same names but other keys signs "good" answers for our seal.
    other = build_look_alike_pki(pki)
    assert other.issuing.certificate != pki.issuing.certificate
    assert other.issuing.certificate.subject == pki.issuing.certificate.subject
    fake_good = ocsp_for(other, approval_bb.seal.certificate, RevocationStatus("good"))
    pdf = with_cms_revinfo(approval_bb.pdf, list(service_crls(other)), [fake_good])
    report = verify_pdf(pdf, policy=offline_policy)
    assert report.verdict in (Verdict.INDETERMINATE, Verdict.INVALID)
    assert report.signatures[0].revocation.state != "good"
