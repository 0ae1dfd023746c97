"""Genuine sealed documents come out VALID, with and without the registry."""

from __future__ import annotations

import dataclasses
import io

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation.dss import DocumentSecurityStore

from keys.signer import to_asn1
from signing.options import (
    Certification,
    FieldHolder,
    Placement,
    ReservedField,
    SealLevel,
    SealOptions,
)
from signing.sealer import seal_pdf_bytes
from tests.signing.sealing import context, identity, make_pdf
from tests.testpki import TestPKI, build_look_alike_pki
from tests.verify.forge import Sealed, seal
from verify.pdf import verify_pdf
from verify.policy import VerificationPolicy
from verify.registry import InMemoryRegistry
from verify.report import Indication, Report, Verdict


@pytest.fixture(scope="module", params=list(SealLevel), ids=lambda lv: lv.value)
def level_report(
    request: pytest.FixtureRequest, pki: TestPKI, policy: VerificationPolicy
) -> tuple[SealLevel, Report]:
    """A licence certified NO_CHANGES at each level, verified with its registry record."""
    level: SealLevel = request.param
    sealed = seal(pki, level=level, certification=Certification.NO_CHANGES)
    registry = InMemoryRegistry([sealed.record()])
    return level, verify_pdf(sealed.pdf, policy=dataclasses.replace(policy, registry=registry))


def test_every_level_is_valid_with_the_registry_match(
    level_report: tuple[SealLevel, Report],
) -> None:
    _, report = level_report
    assert report.verdict is Verdict.VALID, report.reasons
    assert report.registry.matched_by == "file"


def test_every_level_passes_and_is_reported_at_its_level(
    level_report: tuple[SealLevel, Report],
) -> None:
    level, report = level_report
    assert report.signatures[0].indication is Indication.TOTAL_PASSED
    assert report.signatures[0].pades_level == level.value


def test_the_signer_is_read_as_the_department_and_its_seal_kind(
    level_report: tuple[SealLevel, Report],
) -> None:
    _, report = level_report
    signer = report.signatures[0].signer
    assert signer is not None
    assert signer.department_code == "9133010052CL12THX9"
    assert signer.seal_kind == "licence"


def test_the_certification_level_is_reported(level_report: tuple[SealLevel, Report]) -> None:
    _, report = level_report
    assert report.signatures[0].certification_level == "NO_CHANGES"


def test_only_b_lta_carries_a_document_timestamp(level_report: tuple[SealLevel, Report]) -> None:
    level, report = level_report
    timestamps = report.signatures[1:]
    assert len(timestamps) == (1 if level is SealLevel.B_LTA else 0)


def test_a_genuine_file_has_a_clean_structure(level_report: tuple[SealLevel, Report]) -> None:
    _, report = level_report
    assert report.structure.clean


@pytest.mark.parametrize("level", [SealLevel.B_LT, SealLevel.B_LTA], ids=lambda lv: lv.value)
def test_long_term_levels_are_valid_offline_from_embedded_data(
    pki: TestPKI, offline_policy: VerificationPolicy, level: SealLevel
) -> None:
    report = verify_pdf(seal(pki, level=level).pdf, policy=offline_policy)
    assert report.verdict is Verdict.VALID, report.reasons
    assert report.signatures[0].revocation.sources == ("embedded",)
    assert report.signatures[0].revocation.state == "good"


def test_a_file_not_issued_here_keeps_its_cryptographic_verdict(
    pki: TestPKI, policy: VerificationPolicy, licence_lt: Sealed
) -> None:
    other = seal(pki)
    registry = InMemoryRegistry([other.record()])
    report = verify_pdf(licence_lt.pdf, policy=dataclasses.replace(policy, registry=registry))
    assert report.verdict is Verdict.VALID
    assert report.registry.consulted
    assert not report.registry.matched
    assert report.reasons[-1].code == "not-issued-here"


def test_a_later_lta_update_is_matched_by_the_signed_bytes(
    pki: TestPKI, policy: VerificationPolicy
) -> None:
    sealed = seal(pki, level=SealLevel.B_LTA)
    registry = InMemoryRegistry([dataclasses.replace(sealed.record(), pdf_sha256="0" * 64)])
    report = verify_pdf(sealed.pdf, policy=dataclasses.replace(policy, registry=registry))
    assert report.verdict is Verdict.VALID
    assert report.registry.matched_by == "signed-bytes"
    assert report.registry.signer_is_recorded_seal


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        ("revoked", Verdict.REVOKED),
        ("suspended", Verdict.SUSPENDED),
        ("superseded", Verdict.SUPERSEDED),
        ("expired", Verdict.EXPIRED),
    ],
)
def test_registry_status_is_the_verdict(
    policy: VerificationPolicy, licence_lt: Sealed, status: str, verdict: Verdict
) -> None:
    registry = InMemoryRegistry([licence_lt.record(status=status)])
    report = verify_pdf(licence_lt.pdf, policy=dataclasses.replace(policy, registry=registry))
    assert report.verdict is verdict


def test_parallel_approval_of_three_departments_is_valid(
    pki: TestPKI, policy: VerificationPolicy
) -> None:
    first = identity(pki)
    second = identity(pki, department_name="台州市建设局", department_code="9133100015J1YG617W")
    third = identity(
        pki, department_name="嘉兴市住房和城乡建设局", department_code="9133040016D272HD32"
    )
    pdf, _ = seal_pdf_bytes(
        make_pdf(),
        identity=first,
        options=SealOptions(
            level=SealLevel.B_T,
            certification=Certification.FORM_FILLING,
            field_name="Dept1",
            placement=Placement(page=1, x=100, y=150),
            reserve_fields=(
                ReservedField(
                    name="Dept2",
                    placement=Placement(page=1, x=280, y=150),
                    holder=FieldHolder(department_code="9133100015J1YG617W"),
                ),
                ReservedField(
                    name="Dept3",
                    placement=Placement(page=1, x=460, y=150),
                    holder=FieldHolder(department_code="9133040016D272HD32"),
                ),
            ),
        ),
        context=context(pki, first),
    )
    for name, who in (("Dept2", second), ("Dept3", third)):
        pdf, _ = seal_pdf_bytes(
            pdf,
            identity=who,
            options=SealOptions(level=SealLevel.B_T, field_name=name),
            context=context(pki, who),
        )
    report = verify_pdf(pdf, policy=policy)
    assert report.verdict is Verdict.VALID, report.reasons
    assert [s.field_name for s in report.signatures] == ["Dept1", "Dept2", "Dept3"]
    assert report.signatures[0].modification_level == "FORM_FILLING"
    assert all(s.indication is Indication.TOTAL_PASSED for s in report.signatures)


def test_b_b_without_revocation_data_is_indeterminate(
    offline_policy: VerificationPolicy, approval_bb: Sealed
) -> None:
    report = verify_pdf(approval_bb.pdf, policy=offline_policy)
    assert report.verdict is Verdict.INDETERMINATE
    assert report.signatures[0].indication is Indication.INDETERMINATE


def test_impostor_ca_certificates_in_the_dss_leave_a_genuine_seal_alone(
    pki: TestPKI, policy: VerificationPolicy
) -> None:
    # A long-term-validation update that adds an impostor's CA certificates (our CA names,
    # other keys) to the document security store, where path building finds them first.
    genuine = seal(pki, level=SealLevel.B_T)
    impostor = build_look_alike_pki(pki)
    stream = io.BytesIO(genuine.pdf)
    sig_contents = bytes(PdfFileReader(stream).embedded_signatures[0].pkcs7_content)
    DocumentSecurityStore.add_dss(
        stream,
        sig_contents,
        certs=[to_asn1(impostor.issuing.certificate), to_asn1(impostor.root.certificate)],
        embed_roots=True,
    )
    dss = DocumentSecurityStore.read_dss(PdfFileReader(io.BytesIO(stream.getvalue())))
    embedded = {ref.get_object().data for ref in dss.certs.values()}
    assert to_asn1(impostor.issuing.certificate).dump() in embedded
    report = verify_pdf(stream.getvalue(), policy=policy)
    assert report.signatures[0].indication is Indication.TOTAL_PASSED
    assert report.verdict is Verdict.VALID
