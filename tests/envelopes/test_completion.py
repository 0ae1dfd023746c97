"""An envelope's completion: the final revision's document timestamp, the completion
certificate sealed by the platform, the log entries of every step and of the completion, and
the licence a case issues; once only, even when asked twice or after a crash."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko_certvalidator import ValidationContext
from sqlalchemy import func, select, update

from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.envelopes import (
    Envelope,
    EnvelopeRequest,
    EnvelopeView,
    IssueLicence,
    PartySpec,
    StepSpec,
    complete,
    create_envelope,
    finish_completions,
    get_envelope,
)
from econtract.errors import InvalidInputError
from econtract.models import Certificate, Department, Seal, SealedDocument, SealKind
from econtract.services import Services
from econtract.translog import (
    LogEntry,
    LogEntryKind,
    b64decode,
    inclusion_proof,
    leaf_hash,
    subject_entries,
    verify_inclusion,
)
from econtract.translog._heads import latest_sth
from tests.envelopes.parties import Party
from tests.envelopes.test_envelope_api import _seal as _seal_over_http
from tests.envelopes.test_envelope_api import _setup, _start
from tests.envelopes.test_envelopes import _contract, _seal, parties
from tests.licences import holder_fields
from tests.signing.sealing import make_pdf

pytestmark = pytest.mark.registry
__all__ = ["parties"]  # the fixture, shared with the envelope tests

_HEX64 = re.compile(r"\b[0-9a-f]{64}\b")


def _blob(services: Services, document_id: str) -> bytes:
    with services.sessions() as session:
        document = session.get(SealedDocument, document_id)
        assert document is not None
        key = document.blob_key
    with services.blobs.open(key) as stream:
        return stream.read()


def _text(pdf: bytes, path: Path) -> str:
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def _pdfsig(pdf: bytes, path: Path) -> str:
    path.write_bytes(pdf)
    return subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, check=False).stdout


def _trust(services: Services) -> ValidationContext:
    root = asn1_x509.Certificate.load(services.pki.root.certificate.public_bytes(Encoding.DER))
    return ValidationContext(trust_roots=[root], allow_fetching=False)


def _completion_documents(services: Services) -> int:
    with services.sessions() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(SealedDocument)
                .where(SealedDocument.file_name.like("%-completion.pdf"))
            )
            or 0
        )


def _platform_seal_status(services: Services, status: str) -> None:
    with db.transaction(services.sessions) as session:
        platform = session.scalars(
            select(Department).where(Department.code == services.settings.platform_code)
        ).one()
        session.execute(
            update(Seal)
            .where(Seal.department_id == platform.id, Seal.kind == SealKind.PLATFORM.value)
            .values(status=status)
        )


def _completed_without_certificate(services: Services, parties: dict[str, Party]) -> EnvelopeView:
    """An envelope whose last seal committed but whose completion failed (the platform seal
    unusable at that moment), as a crash between the two leaves it."""
    view = _contract(services, parties)
    for who in ("a", "b"):
        view = _seal(services, view, parties[who])
    _platform_seal_status(services, "retired")
    try:
        view = _seal(services, view, parties["dept"])
    finally:
        _platform_seal_status(services, "active")
    assert (view.status, view.completion_certificate) == ("completed", None)
    return view


def test_a_completed_contract_has_a_timestamped_final_revision_a_valid_certificate_and_proofs(
    api_client: TestClient, initialised: Services, tmp_path: Path
) -> None:
    world = _setup(api_client, initialised)
    envelope = _start(api_client, initialised, world, "contract-done").json()
    before = api_client.get(
        f"/v1/envelopes/{envelope['id']}/certificate", headers=world["headers"]["a"]
    )
    assert before.status_code == 404
    for who in ("b", "a"):
        _seal_over_http(api_client, world, envelope["id"], who)
    done = _seal_over_http(api_client, world, envelope["id"], "dept").json()
    # The last party's answer already shows the completion.
    assert done["status"] == "completed"
    assert done["completed_at"] is not None
    assert done["completion_certificate"].startswith("doc_")
    assert done["licence"] is None

    final = api_client.get(f"/v1/envelopes/{envelope['id']}/pdf", headers=world["headers"]["b"])
    signatures = PdfFileReader(io.BytesIO(final.content)).embedded_signatures
    assert signatures[-1].field_name.startswith("DocTimeStamp")
    # pdfsig lists the document timestamp (and leaves its checking to pyHanko, below).
    listed = _pdfsig(final.content, tmp_path / "final.pdf")
    assert f"Signature Field Name: {signatures[-1].field_name}" in listed
    assert "Timestamp Authority" in listed.rsplit("Signature #", 1)[1]
    stamp = validate_pdf_timestamp(signatures[-1], validation_context=_trust(initialised))
    assert (stamp.intact, stamp.valid, stamp.trusted) == (True, True, True)
    # The seals before it: intact, valid, trusted, and nothing beyond form filling since.
    checked = [validate_pdf_signature(s, _trust(initialised)) for s in signatures[:-1]]
    assert all(c.bottom_line and c.docmdp_ok for c in checked)
    assert max(c.modification_level or ModificationLevel.OTHER for c in checked) <= (
        ModificationLevel.FORM_FILLING
    )

    answer = api_client.get(
        f"/v1/envelopes/{envelope['id']}/certificate", headers=world["headers"]["a"]
    )
    assert answer.headers["content-type"] == "application/pdf"
    assert "Signature is Valid." in _pdfsig(answer.content, tmp_path / "certificate.pdf")
    text = _text(answer.content, tmp_path / "certificate.pdf")
    for party in done["parties"]:
        assert party["name"] in text
        assert party["code"] in text
        assert party["client_id"] in text
    # The SHA-256 of every revision in order: certified, each party's, the final.
    with initialised.sessions() as session:
        row = session.get(Envelope, envelope["id"])
        assert row is not None
        certified = row.certified_document_id
    revisions = [certified] + [
        p["document_id"] for p in sorted(done["parties"], key=lambda p: p["acted_at"])
    ]
    hashes = [hashlib.sha256(_blob(initialised, d)).hexdigest() for d in revisions]
    assert hashes[-1] == hashlib.sha256(final.content).hexdigest()
    assert _HEX64.findall(text)[: len(hashes)] == hashes

    # The log has an entry for each step and one for the completion, each proven against the
    # signed tree head the certificate names.
    with initialised.sessions() as session:
        sth = latest_sth(session)
        assert sth is not None
        found = subject_entries(session, envelope["id"])
        entries = [LogEntry.from_bytes(blob) for _, blob in found]
        assert [(e.kind, e.step) for e in entries] == [
            (LogEntryKind.ENVELOPE_STEP, "1"),
            (LogEntryKind.ENVELOPE_STEP, "1"),
            (LogEntryKind.ENVELOPE_STEP, "2"),
            (LogEntryKind.ENVELOPE_COMPLETE, None),
        ]
        assert entries[-1].pdf_sha256 == hashes[-1]
        assert f"tree size {sth.tree_size}" in text
        for index, blob in found:
            assert index < sth.tree_size
            proof = inclusion_proof(session, index, sth.tree_size)
            verify_inclusion(leaf_hash(blob), index, sth.tree_size, proof, sth.root_hash)
            assert f"Entry {index} " in text
            for node in proof:
                assert b64decode(_b64(node)) == node
                assert _b64(node) in text


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_completing_again_or_twice_at_once_makes_one_certificate(
    initialised: Services, parties: dict[str, Party]
) -> None:
    view = _completed_without_certificate(initialised, parties)
    results: list[bool] = []

    def run() -> None:
        results.append(complete(initialised, view.id))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, True]
    assert complete(initialised, view.id) is False
    assert _completion_documents(initialised) == 1
    shown = get_envelope(initialised, view.id, actor=parties["a"].actor)
    assert shown.completion_certificate is not None


def test_the_sweep_finishes_a_completion_a_crash_left_undone(
    initialised: Services, parties: dict[str, Party]
) -> None:
    view = _completed_without_certificate(initialised, parties)
    assert finish_completions(initialised) == 1
    shown = get_envelope(initialised, view.id, actor=parties["dept"].actor)
    assert shown.completion_certificate is not None
    assert shown.completed_at is not None
    assert finish_completions(initialised) == 0
    assert _completion_documents(initialised) == 1


def _case(services: Services, party: Party, fields: dict[str, Any], type_code: str) -> Any:
    return create_envelope(
        services,
        source=make_pdf(),
        request=EnvelopeRequest(
            title="企业投资项目并联审批",
            seal_id=party.seal,
            steps=(
                StepSpec(
                    parties=(PartySpec(code=DEMO_DEPARTMENT_CODE, field="Window"),),
                    deadline=services.clock.now().replace(year=2031),
                ),
            ),
            on_complete=IssueLicence(type_code=type_code, fields=fields),
        ),
        actor=party.actor,
    )


def test_a_case_issues_exactly_one_licence_with_the_named_fields(
    initialised: Services, parties: dict[str, Party]
) -> None:
    fields = holder_fields()
    view = _seal(
        initialised,
        _case(initialised, parties["dept"], fields, "business_licence"),
        parties["dept"],
    )
    assert view.status == "completed"
    assert view.licence is not None
    with db.transaction(initialised.sessions) as session:
        # As a crash after the licence and before the certificate leaves it.
        session.execute(
            update(Envelope)
            .where(Envelope.id == view.id)
            .values(completion_document_id=None, completion_claimed_at=None)
        )
    assert finish_completions(initialised) == 1
    with initialised.sessions() as session:
        issued = session.scalars(
            select(Certificate).where(Certificate.national_holder_code == fields["credit_code"])
        ).all()
        assert [c.id for c in issued] == [view.licence]
        assert issued[0].fields["name"] == fields["name"]
        again = session.get(Envelope, view.id)
        assert again is not None
        assert again.licence_id == view.licence


@pytest.mark.parametrize(
    ("type_code", "fields", "pointer"),
    [
        ("no_such_type", {}, "/on_complete/issue/type"),
        ("business_licence", {"name": ""}, "/on_complete/issue/fields/"),
    ],
)
def test_a_bad_completion_action_is_refused_before_anything_is_sealed(
    initialised: Services,
    parties: dict[str, Party],
    type_code: str,
    fields: dict[str, Any],
    pointer: str,
) -> None:
    with initialised.sessions() as session:
        sealed = session.scalar(select(func.count()).select_from(SealedDocument))
    with pytest.raises(InvalidInputError) as refused:
        _case(initialised, parties["dept"], fields, type_code)
    assert any(p.startswith(pointer) for p, _ in refused.value.errors)
    with initialised.sessions() as session:
        assert session.scalar(select(func.count()).select_from(SealedDocument)) == sealed
        assert session.scalar(select(func.count()).select_from(Envelope)) == 0


def test_a_bad_completion_action_over_http_is_a_422_with_its_pointer(
    api_client: TestClient, initialised: Services
) -> None:
    world = _setup(api_client, initialised)
    envelope = {
        "title": "企业投资项目并联审批",
        "seal": world["seals"]["dept"],
        "steps": [
            {
                "deadline": "2031-01-10T18:00:00+08:00",
                "parties": [{"code": DEMO_DEPARTMENT_CODE, "field": "Window"}],
            }
        ],
        "on_complete": {"issue": {"type": "no_such_type", "fields": {}}},
    }
    answer = api_client.post(
        "/v1/envelopes",
        files={"file": ("case.pdf", make_pdf(), "application/pdf")},
        data={"envelope": json.dumps(envelope)},
        headers=world["headers"]["dept"] | {"Idempotency-Key": "case-bad"},
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert [e["pointer"] for e in answer.json()["errors"]] == ["/on_complete/issue/type"]
