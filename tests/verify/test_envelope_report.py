"""The report gives an envelope's account from the file alone: every party whose field the
certification reserves, in the file's order, whether it has sealed and with whose seal; a
document not every party has sealed is INCOMPLETE, a seal by someone else in a bound field
INVALID."""

from __future__ import annotations

import io
import json
import subprocess
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign.signers.pdf_signer import PdfSigner

from econtract import audit
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.cli import run
from econtract.envelopes import (
    EnvelopeView,
    create_envelope,
    seal_step,
)
from econtract.models import SealedDocument
from econtract.services import Services
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
from tests.envelopes.parties import contract_request, make_parties
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


def test_a_bound_field_removed_after_the_certification_is_still_a_partys(
    pki: TestPKI, policy: VerificationPolicy
) -> None:
    # C's field is taken out of the form before A and B seal: the file then looks like two
    # of two. The certification's revision still names C, so the account does too.
    stream = io.BytesIO(_certified(pki))
    writer = IncrementalPdfFileWriter(stream)
    acroform = writer.root["/AcroForm"]
    acroform["/Fields"] = generic.ArrayObject(
        ref for ref in acroform["/Fields"] if ref.get_object().get("/T") != "PartyC"
    )
    writer.update_container(acroform)
    writer.write_in_place()  # type: ignore[no-untyped-call]
    pdf = _sealed_by(pki, _sealed_by(pki, stream.getvalue(), CODE_B, "PartyB"), CODE_A, "PartyA")
    report = verify_pdf(pdf, policy=policy)
    assert report.verdict is not Verdict.VALID
    assert report.envelope is not None
    assert report.envelope.progress.en == "2 of 3 parties have sealed"
    assert [(p.field, p.status) for p in report.envelope.parties][-1] == ("PartyC", "unsealed")


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


def test_econtract_verify_prints_the_progress_line(
    two_of_three: bytes, pki: TestPKI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "contract.pdf").write_bytes(two_of_three)
    (tmp_path / "root.pem").write_bytes(pki.root.certificate.public_bytes(Encoding.PEM))
    capsys.readouterr()
    status = run(
        ["verify", "--trust-root", str(tmp_path / "root.pem"), str(tmp_path / "contract.pdf")]
    )
    lines = capsys.readouterr().out.splitlines()
    assert status == 1
    assert lines[0] == "INCOMPLETE 未完成签署"
    assert "  签署进度 Progress: 3 方中已有 2 方签章 / 2 of 3 parties have sealed" in lines
    assert f"    签署方 3 Party 3: {CODE_C}" in lines


# --- the service: the envelope engine's documents, verified over HTTP with the registry ---


def _document(services: Services, view: EnvelopeView) -> bytes:
    """The envelope's document as it stands."""
    with services.sessions() as session:
        document = session.get(SealedDocument, view.document_id)
        assert document is not None
        key = document.blob_key
    with services.blobs.open(key) as stream:
        return stream.read()


def _verify_over_http(client: TestClient, pdf: bytes, accept: str = "application/json") -> bytes:
    response = client.post(
        "/v1/verify",
        files={"file": ("contract.pdf", pdf, "application/pdf")},
        headers={"Accept": accept},
    )
    assert response.status_code == 200, response.text
    return bytes(response.content)


def _pdf_text(pdf: bytes, tmp_path: Path) -> str:
    (tmp_path / "report.pdf").write_bytes(pdf)
    text = subprocess.run(
        ["pdftotext", str(tmp_path / "report.pdf"), "-"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return " ".join(text.split())


@pytest.fixture
def contract(initialised: Services) -> tuple[EnvelopeView, audit.Actor, str]:
    """A contract made by the envelope engine, A and B sealed (step 1), the demo department's
    field (step 2) open; with the department's actor and seal, for the last seal."""
    services = initialised
    parties = make_parties(services, other=False)
    dept = parties["dept"]
    deadline = services.clock.now() + timedelta(hours=48)
    view = create_envelope(
        services,
        source=make_pdf(),
        request=contract_request(dept.seal, deadline, deadline + timedelta(hours=24)),
        actor=dept.actor,
    )
    for party in (parties["b"], parties["a"]):
        view = seal_step(services, envelope_id=view.id, seal_id=party.seal, actor=party.actor)
    return view, dept.actor, dept.seal


def test_an_envelope_over_http_is_incomplete_then_valid_with_the_registrys_record(
    initialised: Services,
    api_client: TestClient,
    contract: tuple[EnvelopeView, audit.Actor, str],
) -> None:
    services = initialised
    view, actor, seal_id = contract
    report = json.loads(_verify_over_http(api_client, _document(services, view)))
    assert report["verdict"] == "INCOMPLETE", report["reasons"]
    envelope = report["envelope"]
    assert isinstance(envelope, dict)
    assert envelope["progress"]["en"] == "2 of 3 parties have sealed"
    assert envelope["record"] == {"id": view.id, "title": "政府采购合同", "status": "open"}
    assert [(p["field"], p["step"], p["status"]) for p in envelope["parties"]] == [
        ("PartyA", 1, "sealed"),
        ("PartyB", 1, "sealed"),
        ("Buyer", 2, "unsealed"),
    ]
    [reason] = [r for r in report["reasons"] if r["code"] == "envelope-incomplete"]
    buyer = next(p for p in envelope["parties"] if p["field"] == "Buyer")
    assert f"{buyer['name']} ({DEMO_DEPARTMENT_CODE}), field 'Buyer'" in reason["en"]

    view = seal_step(services, envelope_id=view.id, seal_id=seal_id, actor=actor)
    report = json.loads(_verify_over_http(api_client, _document(services, view)))
    assert report["verdict"] == "VALID", report["reasons"]
    envelope = report["envelope"]
    assert isinstance(envelope, dict)
    assert envelope["complete"] is True
    assert envelope["record"]["status"] == "completed"
    assert envelope["progress"]["zh"] == "3 方中已有 3 方签章"
    assert [p["signer_is_party"] for p in envelope["parties"]] == [True, True, True]


def test_the_verify_page_and_the_printable_report_show_the_parties_and_the_progress(
    initialised: Services,
    api_client: TestClient,
    contract: tuple[EnvelopeView, audit.Actor, str],
    tmp_path: Path,
) -> None:
    pdf = _document(initialised, contract[0])
    html = _verify_over_http(api_client, pdf, "text/html").decode()
    assert '<div class="zh">未完成签署</div>' in html
    start = html.index('<h2>签署方 <span class="en">Parties</span></h2>')
    section = html[start : html.index("</table>", start)]
    assert "政府采购合同" in section
    assert "3 方中已有 2 方签章 / 2 of 3 parties have sealed" in section
    assert section.index("PartyA") < section.index("PartyB") < section.index("Buyer")
    assert "第 2 步 step 2" in section
    assert section.count("未签章 not sealed") == 1
    printed = _pdf_text(_verify_over_http(api_client, pdf, "application/pdf"), tmp_path)
    assert "未完成签署 INCOMPLETE" in printed
    assert "3 方中已有 2 方签章 / 2 of 3 parties have sealed" in printed
    assert DEMO_DEPARTMENT_CODE in printed
