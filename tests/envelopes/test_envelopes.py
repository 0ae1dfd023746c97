"""Envelopes: a department and enterprises seal one document in steps, each only its own
field, in turn, before its deadline; every refusal leaves the document as it was."""

from __future__ import annotations

import io
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from sqlalchemy import select

from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.clock import FixedClock
from econtract.departments import add_department
from econtract.envelopes import (
    AlreadyActedError,
    DeadlinePassedError,
    EnvelopeClosedError,
    EnvelopeRequest,
    EnvelopeView,
    NotYourTurnError,
    PartySpec,
    StepSpec,
    cancel,
    create_envelope,
    decline,
    get_envelope,
    list_envelopes,
    seal_step,
)
from econtract.errors import InvalidInputError, NotFoundError
from econtract.models import OutboxEvent, SealedDocument, SealKind
from econtract.services import Services
from tests.envelopes.parties import (
    ENTERPRISE_A,
    Party,
    contract_request,
    make_parties,
    make_party,
)
from tests.factories import OPERATOR
from tests.pdfsig import openssl_trusts_every_seal, pdfsig_trusting
from tests.signing.sealing import make_pdf

pytestmark = pytest.mark.registry


@pytest.fixture
def parties(initialised: Services) -> dict[str, Party]:
    """The demo department (initiator and last party) and two enterprises, and one more
    enterprise that is no party."""
    return make_parties(initialised)


def _contract(services: Services, parties: dict[str, Party], *, hours: int = 48) -> EnvelopeView:
    """A contract: both enterprises seal in parallel, then the department."""
    deadline = services.clock.now() + timedelta(hours=hours)
    return create_envelope(
        services,
        source=make_pdf(),
        request=contract_request(parties["dept"].seal, deadline, deadline + timedelta(hours=24)),
        actor=parties["dept"].actor,
    )


def _pdf(services: Services, view: EnvelopeView) -> bytes:
    with services.sessions() as session:
        document = session.get(SealedDocument, view.document_id)
        assert document is not None
        key = document.blob_key
    with services.blobs.open(key) as stream:
        return stream.read()


def _check_with_pdfsig_and_qpdf(
    services: Services, pdf: bytes, path: Path, *, signatures: int
) -> None:
    """Independent checks: pdfsig finds every signature valid, openssl every seal's chain
    trusted with the service's root and nothing else, qpdf --check no fault."""
    path.write_bytes(pdf)
    report = pdfsig_trusting(services, path)
    assert report.count("Signature Validation: Signature is Valid.") == signatures, report
    assert openssl_trusts_every_seal(services, path) == signatures
    qpdf = subprocess.run(
        ["qpdf", "--check", str(path)], capture_output=True, text=True, check=False
    )
    assert qpdf.returncode == 0, qpdf.stdout + qpdf.stderr


def _seal(services: Services, view: EnvelopeView, party: Party) -> EnvelopeView:
    return seal_step(services, envelope_id=view.id, seal_id=party.seal, actor=party.actor)


def test_a_three_party_contract_completes_in_order_and_every_seal_checks(
    initialised: Services, parties: dict[str, Party], tmp_path: Path
) -> None:
    view = _contract(initialised, parties)
    assert (view.status, view.step, view.steps) == ("open", 1, 2)
    assert [p.status for p in view.parties] == ["open", "open", "waiting"]
    view = _seal(initialised, view, parties["b"])
    assert view.progress == "1 of 3 parties have sealed"
    view = _seal(initialised, view, parties["a"])
    assert (view.status, view.step) == ("open", 2)
    view = _seal(initialised, view, parties["dept"])
    assert view.status == "completed"
    assert view.progress == "3 of 3 parties have sealed"
    assert all(p.acted_at is not None and p.document_id for p in view.parties)
    # Each change is told through the outbox with the envelope's status, nothing personal.
    with initialised.sessions() as session:
        told = session.execute(
            select(OutboxEvent.type, OutboxEvent.payload)
            .where(OutboxEvent.subject_id == view.id)
            .order_by(OutboxEvent.id)
        ).all()
    assert [t for t, _ in told] == ["envelope.created"] + ["envelope.sealed"] * 3 + [
        "envelope.completed"
    ]
    assert [p["status"] for _, p in told] == ["open", "open", "open", "completed", "completed"]
    pdf = _pdf(initialised, view)
    # The certification and the three parties' seals, each covering its revision.
    reader = PdfFileReader(io.BytesIO(pdf))
    names = [s.field_name for s in reader.embedded_signatures]
    assert names[1:-1] == ["PartyB", "PartyA", "Buyer"]
    assert names[-1].startswith("DocTimeStamp")  # the completion's (test_completion.py)
    _check_with_pdfsig_and_qpdf(initialised, pdf, tmp_path / "contract.pdf", signatures=4)


def test_a_party_out_of_turn_is_refused_and_the_document_is_unchanged(
    initialised: Services, parties: dict[str, Party]
) -> None:
    view = _contract(initialised, parties)
    with pytest.raises(NotYourTurnError, match="acts in step 2"):
        _seal(initialised, view, parties["dept"])
    assert get_envelope(initialised, view.id, actor=parties["dept"].actor).document_id == (
        view.document_id
    )


def test_a_step_is_never_sealed_twice(initialised: Services, parties: dict[str, Party]) -> None:
    view = _seal(initialised, _contract(initialised, parties), parties["a"])
    with pytest.raises(AlreadyActedError):
        _seal(initialised, view, parties["a"])
    assert get_envelope(initialised, view.id, actor=parties["a"].actor).document_id == (
        view.document_id
    )


def test_a_party_cannot_use_another_partys_seal(
    initialised: Services, parties: dict[str, Party]
) -> None:
    view = _contract(initialised, parties)
    with pytest.raises(NotFoundError, match="No seal"):
        seal_step(
            initialised, envelope_id=view.id, seal_id=parties["b"].seal, actor=parties["a"].actor
        )
    with pytest.raises(NotFoundError, match="No seal"):
        seal_step(
            initialised,
            envelope_id=view.id,
            seal_id=parties["dept"].seal,
            actor=parties["a"].actor,
        )
    assert get_envelope(initialised, view.id, actor=parties["a"].actor).progress == (
        "0 of 3 parties have sealed"
    )


def test_a_non_party_sees_nothing_and_cannot_act(
    initialised: Services, parties: dict[str, Party]
) -> None:
    view = _contract(initialised, parties)
    other = parties["other"]
    with pytest.raises(NotFoundError):
        get_envelope(initialised, view.id, actor=other.actor)
    with pytest.raises(NotFoundError):
        _seal(initialised, view, other)
    assert list_envelopes(initialised, actor=other.actor) == ([], False)
    mine, more = list_envelopes(initialised, actor=parties["a"].actor)
    assert ([e.id for e in mine], more) == ([view.id], False)


def test_a_decline_stops_the_envelope(initialised: Services, parties: dict[str, Party]) -> None:
    view = _contract(initialised, parties)
    view = decline(
        initialised, envelope_id=view.id, reason="价格条款有误", actor=parties["b"].actor
    )
    assert (view.status, view.reason) == ("declined", "价格条款有误")
    with pytest.raises(EnvelopeClosedError, match="declined"):
        _seal(initialised, view, parties["a"])


def test_only_the_initiator_cancels(initialised: Services, parties: dict[str, Party]) -> None:
    view = _contract(initialised, parties)
    with pytest.raises(NotFoundError):
        cancel(initialised, envelope_id=view.id, reason="x", actor=parties["a"].actor)
    view = cancel(initialised, envelope_id=view.id, reason="采购取消", actor=parties["dept"].actor)
    assert view.status == "cancelled"
    with pytest.raises(EnvelopeClosedError):
        _seal(initialised, view, parties["a"])


def test_a_passed_deadline_expires_the_envelope(
    initialised: Services, parties: dict[str, Party], monkeypatch: pytest.MonkeyPatch
) -> None:
    view = _contract(initialised, parties, hours=1)
    monkeypatch.setattr(
        initialised, "clock", FixedClock(initialised.clock.now() + timedelta(hours=2))
    )
    with pytest.raises(DeadlinePassedError):
        _seal(initialised, view, parties["a"])
    assert get_envelope(initialised, view.id, actor=parties["a"].actor).status == "expired"


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ((), "at least one step"),
        ((StepSpec(parties=(), deadline=datetime(2099, 1, 1, tzinfo=UTC)),), "at least one party"),
    ],
)
def test_a_bad_envelope_is_refused_before_anything_is_sealed(
    initialised: Services, parties: dict[str, Party], steps: tuple[StepSpec, ...], message: str
) -> None:
    with initialised.sessions() as session:
        before = session.query(SealedDocument).count()
    with pytest.raises(InvalidInputError, match=message):
        create_envelope(
            initialised,
            source=make_pdf(),
            request=EnvelopeRequest(title="x", seal_id=parties["dept"].seal, steps=steps),
            actor=parties["dept"].actor,
        )
    with initialised.sessions() as session:
        assert session.query(SealedDocument).count() == before


def test_a_deadline_in_the_past_is_refused(
    initialised: Services, parties: dict[str, Party]
) -> None:
    with pytest.raises(InvalidInputError, match="deadline must be in the future"):
        create_envelope(
            initialised,
            source=make_pdf(),
            request=EnvelopeRequest(
                title="x",
                seal_id=parties["dept"].seal,
                steps=(
                    StepSpec(
                        parties=(PartySpec(code=ENTERPRISE_A, field="A"),),
                        deadline=initialised.clock.now() - timedelta(minutes=1),
                    ),
                ),
            ),
            actor=parties["dept"].actor,
        )


def test_parties_of_one_step_sealing_at_once_lose_no_step(
    initialised: Services, parties: dict[str, Party]
) -> None:
    views = [_contract(initialised, parties) for _ in range(3)]
    errors: list[BaseException] = []

    def act(view: EnvelopeView, party: Party) -> None:
        try:
            _seal(initialised, view, party)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [
        threading.Thread(target=act, args=(view, parties[name]))
        for view in views
        for name in ("a", "b")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    for view in views:
        now = get_envelope(initialised, view.id, actor=parties["dept"].actor)
        assert (now.status, now.step) == ("open", 2)
        assert [p.status for p in now.parties] == ["sealed", "sealed", "open"]
        # Both seals are in the current revision: neither was built on a stale one.
        reader = PdfFileReader(io.BytesIO(_pdf(initialised, now)))
        assert sorted(s.field_name for s in reader.embedded_signatures[1:]) == [
            "PartyA",
            "PartyB",
        ]


def test_a_retry_with_the_same_key_answers_the_first_envelope(
    initialised: Services, parties: dict[str, Party]
) -> None:
    deadline = initialised.clock.now() + timedelta(hours=4)
    request = EnvelopeRequest(
        title="并联审批",
        seal_id=parties["dept"].seal,
        steps=(StepSpec(parties=(PartySpec(code=ENTERPRISE_A, field="A"),), deadline=deadline),),
    )
    with initialised.sessions() as session:
        before = session.query(SealedDocument).count()
    first, again = (
        create_envelope(
            initialised,
            source=make_pdf(),
            request=request,
            actor=parties["dept"].actor,
            idempotency_key="case-2026-001",
        )
        for _ in range(2)
    )
    assert again == first
    with initialised.sessions() as session:
        assert session.query(SealedDocument).count() == before + 1


def test_a_parallel_approval_of_four_departments_completes_and_every_check_passes(
    initialised: Services, tmp_path: Path
) -> None:
    lead = make_party(initialised, DEMO_DEPARTMENT_CODE, SealKind.OFFICIAL)
    others: list[Party] = []
    for code, name in (
        ("913302000937LLJ16T", "市自然资源和规划局"),
        ("9133100099C171HU6J", "市住房和城乡建设局"),
        ("9133050024D4H3J92N", "市生态环境局"),
    ):
        with db.transaction(initialised.sessions) as session:
            add_department(session, code=code, name=name, region=None, actor=OPERATOR)
        others.append(make_party(initialised, code, SealKind.OFFICIAL))
    view = create_envelope(
        initialised,
        source=make_pdf(),
        request=EnvelopeRequest(
            title="建设项目并联审批",
            seal_id=lead.seal,
            steps=(
                StepSpec(
                    parties=tuple(
                        PartySpec(code=p.code, field=f"Dept{n}", x=120 + 130 * n)
                        for n, p in enumerate(others, start=1)
                    ),
                    deadline=initialised.clock.now() + timedelta(days=5),
                ),
            ),
        ),
        actor=lead.actor,
    )
    for party in reversed(others):  # any order within the step
        view = _seal(initialised, view, party)
    assert view.status == "completed"
    pdf = _pdf(initialised, view)
    _check_with_pdfsig_and_qpdf(initialised, pdf, tmp_path / "approval.pdf", signatures=4)
    trust = asn1_x509.Certificate.load(initialised.pki.root.certificate.public_bytes(Encoding.DER))
    signatures = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    assert [s.field_name for s in signatures[1:-1]] == ["Dept3", "Dept2", "Dept1"]
    for signature in signatures[:-1]:  # the last is the completion's document timestamp
        status = validate_pdf_signature(
            signature, ValidationContext(trust_roots=[trust], allow_fetching=False)
        )
        assert (status.intact, status.valid, status.trusted, status.docmdp_ok) == (
            True,
            True,
            True,
            True,
        )
        assert status.modification_level is not None
        assert status.modification_level <= ModificationLevel.FORM_FILLING
