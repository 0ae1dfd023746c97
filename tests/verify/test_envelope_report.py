"""The report gives an envelope's account from the file alone: every party whose field the
certification reserves, in the file's order, whether it has sealed and with whose seal; a
document not every party has sealed is INCOMPLETE, a seal by someone else in a bound field
INVALID."""

from __future__ import annotations

import jsonschema
import pytest
from pyhanko.sign.signers.pdf_signer import PdfSigner

from signing import preparation
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
from tests.testpki import TestPKI
from verify.html import render_html
from verify.pdf import verify_pdf
from verify.policy import VerificationPolicy
from verify.report import Verdict, report_schema

INITIATOR = "91330000002482735T"
CODE_A = "9133010052CL12THX9"
CODE_B = "9133100015J1YG617W"
CODE_C = "9133040016D272HD32"
NAMES = {
    CODE_A: "杭州远航建设工程有限公司",
    CODE_B: "台州瑞丰科技有限公司",
    CODE_C: "嘉兴润泽餐饮管理有限公司",
}
FIELDS = {CODE_A: "PartyA", CODE_B: "PartyB", CODE_C: "PartyC"}


def _certified(pki: TestPKI) -> bytes:
    """The initiator's certification, reserving a field for each of three parties."""
    initiator = identity(pki, department_code=INITIATOR)
    pdf, _ = seal_pdf_bytes(
        make_pdf(),
        identity=initiator,
        options=SealOptions(
            level=SealLevel.B_T,
            certification=Certification.FORM_FILLING,
            field_name="Initiator",
            reserve_fields=tuple(
                ReservedField(
                    name=FIELDS[code],
                    placement=Placement(page=1, x=120 + 160 * n, y=150),
                    holder=FieldHolder(department_code=code),
                )
                for n, code in enumerate((CODE_A, CODE_B, CODE_C))
            ),
        ),
        context=context(pki, initiator),
    )
    return pdf


def _sealed_by(pki: TestPKI, pdf: bytes, code: str, field: str) -> bytes:
    """``pdf`` with a seal of the party ``code`` in ``field``, made with signing/ directly."""
    party = identity(pki, department_name=NAMES[code], department_code=code)
    sealed, _ = seal_pdf_bytes(
        pdf,
        identity=party,
        options=SealOptions(level=SealLevel.B_T, field_name=field),
        context=context(pki, party),
    )
    return sealed


@pytest.fixture(scope="module")
def two_of_three(pki: TestPKI) -> bytes:
    """Parties B and A have sealed, C not yet."""
    pdf = _sealed_by(pki, _certified(pki), CODE_B, "PartyB")
    return _sealed_by(pki, pdf, CODE_A, "PartyA")


def test_two_of_three_parties_is_incomplete_naming_the_missing_party(
    two_of_three: bytes, policy: VerificationPolicy
) -> None:
    report = verify_pdf(two_of_three, policy=policy)
    assert report.verdict is Verdict.INCOMPLETE, report.reasons
    assert report.reasons[0].code == "envelope-incomplete"
    assert "2 of 3 parties have sealed" in report.reasons[0].en
    assert f"{CODE_C}, field 'PartyC'" in report.reasons[0].en
    assert "3 方中已有 2 方签章" in report.reasons[0].zh
    envelope = report.envelope
    assert envelope is not None
    assert (envelope.counts.sealed, envelope.counts.parties, envelope.complete) == (2, 3, False)
    assert envelope.progress.en == "2 of 3 parties have sealed"
    assert envelope.progress.zh == "3 方中已有 2 方签章"


def test_the_parties_are_listed_in_the_files_order_with_their_seals(
    two_of_three: bytes, policy: VerificationPolicy
) -> None:
    envelope = verify_pdf(two_of_three, policy=policy).envelope
    assert envelope is not None
    rows = [(p.field, p.code, p.status, p.signer_code, p.signer_is_party) for p in envelope.parties]
    assert rows == [
        ("PartyA", CODE_A, "sealed", CODE_A, True),
        ("PartyB", CODE_B, "sealed", CODE_B, True),
        ("PartyC", CODE_C, "unsealed", None, None),
    ]
    sealed_a, sealed_b, _ = envelope.parties
    assert sealed_a.name == NAMES[CODE_A]
    assert sealed_a.sealed_at is not None
    assert sealed_b.sealed_at is not None
    assert sealed_b.sealed_at <= sealed_a.sealed_at
    # Only the file was read: the steps are the registry's to tell.
    assert all(p.step is None for p in envelope.parties)
    assert envelope.record is None


def test_every_party_sealed_is_valid(
    two_of_three: bytes, pki: TestPKI, policy: VerificationPolicy
) -> None:
    report = verify_pdf(_sealed_by(pki, two_of_three, CODE_C, "PartyC"), policy=policy)
    assert report.verdict is Verdict.VALID, report.reasons
    assert report.envelope is not None
    assert report.envelope.complete
    assert report.envelope.progress.en == "3 of 3 parties have sealed"
    assert [p.status for p in report.envelope.parties] == ["sealed"] * 3


def test_a_bound_field_sealed_by_another_party_is_invalid_naming_the_field(
    two_of_three: bytes, pki: TestPKI, policy: VerificationPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # B's seal in C's field: a conforming signer refuses it (the field's seed value).
    forged = _forged_into(pki, two_of_three, CODE_B, "PartyC", monkeypatch)
    report = verify_pdf(forged, policy=policy)
    assert report.verdict is Verdict.INVALID, report.reasons
    reason = next(r for r in report.reasons if r.code == "envelope-wrong-party")
    assert reason.en == f"Field 'PartyC' is reserved for party {CODE_C}, but {CODE_B} sealed it."
    assert report.envelope is not None
    assert report.envelope.parties[2].signer_is_party is False


def test_a_document_without_reserved_parties_has_no_envelope_section(
    pki: TestPKI, policy: VerificationPolicy
) -> None:
    one = identity(pki)
    pdf, _ = seal_pdf_bytes(
        make_pdf(),
        identity=one,
        options=SealOptions(level=SealLevel.B_T),
        context=context(pki, one),
    )
    report = verify_pdf(pdf, policy=policy)
    assert report.envelope is None
    assert report.to_json()["envelope"] is None


def test_the_envelope_section_follows_the_report_schema(
    two_of_three: bytes, policy: VerificationPolicy
) -> None:
    document = verify_pdf(two_of_three, policy=policy).to_json()
    jsonschema.validate(document, report_schema())
    assert document["verdict"] == "INCOMPLETE"
    assert document["envelope"]["counts"] == {"sealed": 2, "parties": 3}
    assert document["envelope"]["progress"]["en"] == "2 of 3 parties have sealed"


def test_the_html_report_lists_the_parties_and_the_progress(
    two_of_three: bytes, policy: VerificationPolicy
) -> None:
    html = render_html(verify_pdf(two_of_three, policy=policy))
    assert '<div class="zh">未完成签署</div>' in html
    start = html.index('<h2>签署方 <span class="en">Parties</span></h2>')
    section = html[start : html.index("</table>", start)]
    assert "3 方中已有 2 方签章 / 2 of 3 parties have sealed" in section
    assert section.index("PartyA") < section.index("PartyB") < section.index("PartyC")
    for code in (CODE_A, CODE_B, CODE_C):
        assert code in section
    assert f"{NAMES[CODE_A]} ({CODE_A})" in section
    assert section.count("已签章 sealed") == 2
    assert section.count("未签章 not sealed") == 1


def _forged_into(
    pki: TestPKI, pdf: bytes, code: str, field: str, monkeypatch: pytest.MonkeyPatch
) -> bytes:
    """A seal of ``code`` in ``field`` whatever the field's seed value says: both checks that
    refuse it (the sealer's and pyHanko's) are switched off, as a forger's own tool would."""
    monkeypatch.setattr(preparation, "_check_holder", lambda *args: None)
    monkeypatch.setattr(PdfSigner, "_retrieve_seed_value_spec", lambda self, field: None)
    return _sealed_by(pki, pdf, code, field)
