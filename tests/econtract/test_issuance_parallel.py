"""Issuance in two short transactions: numbers claimed, void numbers accounted for, retries
that converge, and the holder rule under parallel requests."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

import econtract.dual_seal
import econtract.issuance._claims
from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.departments import get_department
from econtract.errors import ConflictError
from econtract.issuance import (
    IdempotencyKey,
    IssueRequest,
    issue_certificate,
    request_hash,
)
from econtract.issuance._claims import ClaimState, IssuanceClaim, Reservation, reserve, sweep_claims
from econtract.issuance._request import validate_request
from econtract.models import AuditEvent, Certificate, IdempotencyRecord, NumberCounter
from econtract.services import Services
from econtract.translog import LogEntry, LogEntryKind, publish_sth
from econtract.translog._tables import LogLeaf
from tests.factories import OPERATOR, token_for
from tests.licences import holder_fields
from tests.live import serve

ECONTRACT = str(Path(sys.executable).with_name("econtract"))


def request(fields: dict[str, Any] | None = None) -> IssueRequest:
    return IssueRequest(type_code="business_licence", fields=fields or holder_fields())


def issue(services: Services, req: IssueRequest, key: IdempotencyKey | None = None) -> Any:
    return issue_certificate(
        services,
        department_code=DEMO_DEPARTMENT_CODE,
        request=req,
        actor=OPERATOR,
        idempotency=key,
    )


def key_for(req: IssueRequest, key: str = "order-1") -> IdempotencyKey:
    return IdempotencyKey("cli_x", key, request_hash({"fields": req.fields}))


def claim_only(services: Services, req: IssueRequest, key: IdempotencyKey | None) -> Reservation:
    """The first short transaction alone: what a process that died right after it left."""
    with services.sessions() as session:
        department = get_department(session, DEMO_DEPARTMENT_CODE)
        session.expunge_all()
    today = services.clock.today()
    claimed = reserve(
        services,
        department=department,
        request=validate_request(req, today=today),
        today=today,
        idempotency=key,
    )
    assert isinstance(claimed, Reservation)
    return claimed


def age_claims(services: Services, by: timedelta) -> None:
    with db.transaction(services.sessions) as session:
        session.execute(update(IssuanceClaim).values(created_at=services.clock.now() - by))


def assert_completed_under_one_number(services: Services) -> None:
    """Completed, not void: the sweep finds nothing, and no number was spent twice."""
    age_claims(services, timedelta(days=1))
    assert sweep_claims(services) == []
    with services.sessions() as session:
        assert session.scalars(select(NumberCounter.last_value)).one() == 1
    assert voids(services) == []


def log_entries(services: Services) -> list[LogEntry]:
    with services.sessions() as session:
        blobs = session.scalars(select(LogLeaf.entry).order_by(LogLeaf.leaf_index)).all()
    return [LogEntry.from_bytes(b) for b in blobs]


def voids(services: Services) -> list[LogEntry]:
    return [e for e in log_entries(services) if e.kind == LogEntryKind.NUMBER_VOID]


def seal_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("power cut")

    # The engine is called where sealing with or without an SM2 seal is decided.
    monkeypatch.setattr(econtract.dual_seal, "seal_pdf", broken)


def test_a_failed_seal_records_its_number_void_in_the_audit_trail_and_the_log(
    initialised: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    fields = holder_fields()
    seal_fails(monkeypatch)
    with pytest.raises(RuntimeError, match="power cut"):
        issue(initialised, request(fields))
    monkeypatch.undo()
    with initialised.sessions() as session:
        claim = session.scalars(select(IssuanceClaim)).one()
        audit = session.scalars(select(AuditEvent).where(AuditEvent.action == "number.void")).one()
    assert claim.state == ClaimState.VOID
    assert claim.reason == "issuance failed: RuntimeError"
    assert audit.target_id == claim.number
    assert audit.detail["reason"] == "issuance failed: RuntimeError"
    [entry] = voids(initialised)
    assert entry.certificate_number == claim.number
    assert entry.reason == "issuance failed: RuntimeError"
    # The log is public: nothing of the holder goes into it.
    assert fields["credit_code"] not in entry.to_bytes().decode()
    assert fields["name"] not in entry.to_bytes().decode()
    # The same holder may be issued a licence now, under the next number.
    after = issue(initialised, request(fields)).certificate
    assert claim.number is not None
    assert int(after.number[-6:]) == int(claim.number[-6:]) + 1


def test_the_sweep_voids_a_claim_abandoned_between_claim_and_registration(
    initialised: Services,
) -> None:
    abandoned = claim_only(initialised, request(), None)
    assert sweep_claims(initialised) == []  # younger than the timeout: maybe still sealing
    age_claims(initialised, timedelta(seconds=initialised.settings.issuance_claim_timeout_seconds))
    assert sweep_claims(initialised) == [abandoned.number]
    assert sweep_claims(initialised) == []
    with initialised.sessions() as session:
        claim = session.get(IssuanceClaim, abandoned.certificate_id)
        assert claim is not None
        assert claim.state == ClaimState.VOID
        assert claim.reason is not None
        assert claim.reason.startswith("abandoned: not registered within")
        assert session.get(Certificate, abandoned.certificate_id) is None
    [entry] = voids(initialised)
    assert entry.certificate_number == abandoned.number
    assert entry.reason == claim.reason
    assert int(issue(initialised, request()).certificate.number[-6:]) == 2


def test_a_retry_with_the_same_key_completes_an_abandoned_claim(initialised: Services) -> None:
    req = request()
    key = key_for(req)
    abandoned = claim_only(initialised, req, key)
    completed = issue(initialised, req, key)
    assert completed.certificate.id == abandoned.certificate_id
    assert completed.certificate.number == abandoned.number
    again = issue(initialised, req, key)
    assert again.replayed
    assert again.certificate.id == abandoned.certificate_id
    assert_completed_under_one_number(initialised)


def test_a_retry_after_a_failed_seal_gets_one_licence_under_a_new_number(
    initialised: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    req = request()
    key = key_for(req)
    seal_fails(monkeypatch)
    with pytest.raises(RuntimeError, match="power cut"):
        issue(initialised, req, key)
    monkeypatch.undo()
    first = issue(initialised, req, key)
    second = issue(initialised, req, key)
    assert not first.replayed
    assert second.replayed
    assert second.certificate.id == first.certificate.id
    assert first.certificate.number.endswith("000002")
    with initialised.sessions() as session:
        record = session.get(IdempotencyRecord, ("cli_x", "order-1"))
        assert record is not None
        assert record.certificate_id == first.certificate.id
    assert [e.certificate_number[-6:] for e in voids(initialised) if e.certificate_number] == [
        "000001"
    ]


def test_parallel_retries_of_an_abandoned_claim_converge_on_one_licence(
    initialised: Services,
) -> None:
    req = request()
    key = key_for(req)
    abandoned = claim_only(initialised, req, key)
    with ThreadPoolExecutor(max_workers=4) as pool:
        made = list(pool.map(lambda _: issue(initialised, req, key), range(4)))
    assert {m.certificate.id for m in made} == {abandoned.certificate_id}
    with initialised.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Certificate)) == 1
    assert voids(initialised) == []


def test_parallel_http_requests_for_one_holder_issue_one_licence(
    api_client: TestClient, initialised: Services
) -> None:
    token = token_for(api_client, initialised)
    body = {"type": "business_licence", "fields": holder_fields()}

    def attempt(_: int) -> tuple[int, dict[str, Any]]:
        reply = api_client.post(
            "/v1/certificates",
            json=body,
            headers={
                "Authorization": f"Bearer {token}",
                "Idempotency-Key": secrets.token_hex(8),
            },
        )
        return reply.status_code, reply.json()

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    created = [b for status, b in outcomes if status == 201]
    refused = [b for status, b in outcomes if status == 409]
    assert len(created) == 1, outcomes
    assert len(refused) == 7, outcomes
    assert {b["type"] for b in refused} == {"urn:econtract:problem:licence-exists"}
    assert all(created[0]["id"] in b["detail"] for b in refused)


def test_the_counter_lock_is_measured(api_client: TestClient, initialised: Services) -> None:
    def observed() -> float:
        for line in api_client.get("/metrics").text.splitlines():
            if line.startswith("econtract_number_lock_seconds_count"):
                return float(line.split()[-1])
        return 0.0

    before = observed()
    issue(initialised, request())
    assert observed() == before + 1


def test_the_auditor_accepts_a_log_with_a_void_number(
    initialised: Services, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    issue(initialised, request())
    seal_fails(monkeypatch)
    with pytest.raises(RuntimeError):
        issue(initialised, request())
    monkeypatch.undo()
    issue(initialised, request())
    with db.transaction(initialised.sessions) as session:
        publish_sth(session, initialised.pki.log_key, force=True)
    store = tmp_path / "store"
    with serve(initialised.settings.model_copy(update={"log_sth_seconds": 3600.0})) as base:
        for step in ("fetch", "check"):
            done = subprocess.run(
                [ECONTRACT, "audit", step, "--url", base, "--store", str(store)],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, done.stdout + done.stderr
    assert len(voids(initialised)) == 1
    served = json.dumps([e.to_json() for e in voids(initialised)])
    assert "number.void" in served


class Killed(BaseException):
    """The process's end: no handler of the service runs (as with ``kill -9``)."""


def die_before_the_number(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process dies after the claim committed, before the statement that numbers it."""

    def killed(*args: object, **kwargs: object) -> None:
        raise Killed

    monkeypatch.setattr(econtract.issuance._claims, "take_number", killed)


def unnumbered_claim(
    services: Services, monkeypatch: pytest.MonkeyPatch, req: IssueRequest, key: Any = None
) -> IssuanceClaim:
    die_before_the_number(monkeypatch)
    with pytest.raises(Killed):
        issue(services, req, key)
    monkeypatch.undo()
    with services.sessions() as session:
        claim = session.scalars(select(IssuanceClaim)).one()
    assert claim.state == ClaimState.PENDING
    assert claim.number is None
    return claim


def test_the_sweep_voids_a_claim_left_without_a_number_and_logs_no_number(
    initialised: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    req = request()
    key = key_for(req)
    left = unnumbered_claim(initialised, monkeypatch, req, key)
    assert sweep_claims(initialised) == []  # maybe still about to take its number
    age_claims(initialised, timedelta(seconds=initialised.settings.issuance_claim_timeout_seconds))
    # No number was handed out: nothing to void in the audit trail or the log.
    assert sweep_claims(initialised) == []
    with initialised.sessions() as session:
        claim = session.get(IssuanceClaim, left.id)
        assert claim is not None
        assert claim.state == ClaimState.VOID
        assert claim.number is None
        assert claim.reason is not None
        assert claim.reason.startswith("abandoned: not registered within")
        assert session.scalars(select(NumberCounter)).all() == []
        assert session.get(IdempotencyRecord, ("cli_x", "order-1")) is None
        assert not session.scalars(
            select(AuditEvent).where(AuditEvent.action == "number.void")
        ).all()
    assert voids(initialised) == []
    # The holder and the key are free again, and no number was skipped.
    assert issue(initialised, req, key).certificate.number.endswith("000001")


def test_a_retry_with_the_same_key_numbers_a_claim_left_without_a_number(
    initialised: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    req = request()
    key = key_for(req)
    left = unnumbered_claim(initialised, monkeypatch, req, key)
    completed = issue(initialised, req, key)
    assert not completed.replayed
    assert completed.certificate.id == left.id
    assert completed.certificate.number.endswith("000001")
    assert_completed_under_one_number(initialised)


def test_parallel_retries_of_a_claim_without_a_number_take_one_number(
    initialised: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    req = request()
    key = key_for(req)
    left = unnumbered_claim(initialised, monkeypatch, req, key)
    with ThreadPoolExecutor(max_workers=4) as pool:
        made = list(pool.map(lambda _: issue(initialised, req, key), range(4)))
    assert {m.certificate.id for m in made} == {left.id}
    assert_completed_under_one_number(initialised)


def test_a_used_up_counter_refuses_and_leaves_nothing_claimed(initialised: Services) -> None:
    issue(initialised, request())
    with db.transaction(initialised.sessions) as session:
        session.execute(update(NumberCounter).values(last_value=999_999))
    fields = holder_fields()
    with pytest.raises(ConflictError, match="used up"):
        issue(initialised, request(fields))
    with initialised.sessions() as session:
        claim = session.scalars(
            select(IssuanceClaim).where(IssuanceClaim.holder_code == fields["credit_code"])
        ).one()
        assert session.scalars(select(NumberCounter.last_value)).one() == 999_999
    assert claim.state == ClaimState.VOID
    assert claim.number is None
    assert voids(initialised) == []


def test_a_failed_numbering_voids_its_claim_at_once(
    initialised: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("connection lost")

    monkeypatch.setattr(econtract.issuance._claims, "take_number", broken)
    fields = holder_fields()
    with pytest.raises(RuntimeError, match="connection lost"):
        issue(initialised, request(fields))
    monkeypatch.undo()
    with initialised.sessions() as session:
        claim = session.scalars(select(IssuanceClaim)).one()
    assert claim.state == ClaimState.VOID
    assert claim.reason == "numbering failed: RuntimeError"
    # The holder is free at once, not after the sweep's timeout.
    assert issue(initialised, request(fields)).certificate.number.endswith("000001")
