"""Recording a change: every state change goes through one recorder, which writes the status
event, the audit event, the log entry and one outbox row in the change's transaction."""

from __future__ import annotations

import ast
import io
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import jwt
import pytest
from sqlalchemy import func, select

from econtract import db
from econtract.auth import issue_access_token
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.certificates import TRANSITIONS, change_status, supersede
from econtract.clients import create_client
from econtract.clock import CHINA, FixedClock
from econtract.errors import ConflictError
from econtract.issuance import EffectiveStatus, effective_status
from econtract.models import (
    AuditEvent,
    Certificate,
    CertificateStatus,
    OutboxEvent,
    Seal,
    SealKind,
    StatusEvent,
)
from econtract.sealing import SealLevel, SealOptions, seal_document
from econtract.seals import SealRequest, create_seal, revoke_seal, rotate_seal
from econtract.services import Services
from econtract.translog._tables import LogLeaf
from tests.factories import OPERATOR
from tests.licences import issue_example
from tests.signing.sealing import make_pdf

ROOT = Path(__file__).resolve().parents[2]

PINNED = datetime(2026, 3, 1, 2, 30, tzinfo=UTC)


def outbox(services: Services) -> list[OutboxEvent]:
    with services.sessions() as session:
        return list(session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)))


def count(services: Services, model: type[object]) -> int:
    with services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def licence_seal_id(services: Services) -> str:
    with services.sessions() as session:
        return session.scalars(select(Seal.id).where(Seal.kind == SealKind.OFFICIAL.value)).one()


# --- the outbox row -----------------------------------------------------------------------------


def test_a_revocation_writes_exactly_one_outbox_row(initialised: Services) -> None:
    certificate = issue_example(initialised)
    before = outbox(initialised)
    change_status(
        initialised,
        certificate_id=certificate.id,
        action="revoke",
        reason="吊销：经营者申请注销",
        actor=OPERATOR,
    )
    new = outbox(initialised)[len(before) :]
    assert [row.type for row in new] == ["certificate.revoked"]
    row = new[0]
    assert row.subject_id == certificate.id
    assert row.department_id == certificate.department_id
    assert row.delivered_at is None
    assert uuid.UUID(row.event_id).version == 4
    assert row.payload["from"] == "valid"
    assert row.payload["to"] == "revoked"


def test_the_outbox_payload_carries_no_personal_data(initialised: Services) -> None:
    certificate = issue_example(initialised)
    reason = "其他：持证人张三本人申请"
    change_status(
        initialised, certificate_id=certificate.id, action="suspend", reason=reason, actor=OPERATOR
    )
    text = " ".join(str(row.payload) for row in outbox(initialised))
    assert certificate.holder_name not in text
    assert certificate.holder_code is not None
    assert certificate.holder_code not in text
    assert "张三" not in text
    suspended = outbox(initialised)[-1]
    assert suspended.payload["reason_kind"] == "other"


def test_every_outbox_row_has_its_own_event_id(initialised: Services) -> None:
    issue_example(initialised)
    issue_example(initialised)
    ids = [row.event_id for row in outbox(initialised)]
    assert len(ids) == len(set(ids))


# --- one transaction ----------------------------------------------------------------------------


def test_a_rolled_back_change_leaves_no_outbox_row(initialised: Services) -> None:
    seal_id = licence_seal_id(initialised)
    counts = {m: count(initialised, m) for m in (OutboxEvent, AuditEvent, LogLeaf)}

    def revoke_then_fail() -> None:
        with db.transaction(initialised.sessions) as session:
            revoke_seal(session, seal_id=seal_id, reason="keyCompromise", actor=OPERATOR)
            raise RuntimeError("a failure after the change, before the commit")

    with pytest.raises(RuntimeError, match="after the change"):
        revoke_then_fail()
    assert {m: count(initialised, m) for m in counts} == counts
    with initialised.sessions() as session:
        assert session.get(Seal, seal_id).status == "active"  # type: ignore[union-attr]


def test_a_refused_supersede_leaves_no_outbox_row_of_the_new_licence(
    initialised: Services,
) -> None:
    old = issue_example(initialised)
    change_status(
        initialised, certificate_id=old.id, action="revoke", reason="吊销", actor=OPERATOR
    )
    before = outbox(initialised)
    # The new licence is recorded first; refusing the old one's supersession then rolls both
    # back together.
    with pytest.raises(ConflictError, match="cannot be superseded"):
        supersede(
            initialised,
            certificate_id=old.id,
            department_code=DEMO_DEPARTMENT_CODE,
            fields=None,
            valid_from=None,
            valid_until=None,
            actor=OPERATOR,
        )
    assert [row.id for row in outbox(initialised)] == [row.id for row in before]


# --- every state change goes through the recorder -----------------------------------------------


def test_each_kind_of_change_writes_its_event_type(initialised: Services) -> None:
    start = len(outbox(initialised))
    first = issue_example(initialised)
    for action in ("suspend", "reinstate"):
        change_status(
            initialised, certificate_id=first.id, action=action, reason="其他", actor=OPERATOR
        )
    second = supersede(
        initialised,
        certificate_id=first.id,
        department_code=DEMO_DEPARTMENT_CODE,
        fields=None,
        valid_from=None,
        valid_until=None,
        actor=OPERATOR,
    ).certificate
    change_status(
        initialised, certificate_id=second.id, action="revoke", reason="吊销", actor=OPERATOR
    )
    with db.transaction(initialised.sessions) as session:
        seal = create_seal(
            session,
            request=SealRequest(department_code=DEMO_DEPARTMENT_CODE, kind=SealKind.CONTRACT),
            key_store=initialised.key_store,
            pki=initialised.pki,
            actor=OPERATOR,
        )
    with db.transaction(initialised.sessions) as session:
        rotated = rotate_seal(
            session,
            seal_id=seal.id,
            key_store=initialised.key_store,
            pki=initialised.pki,
            actor=OPERATOR,
        )
    with db.transaction(initialised.sessions) as session:
        revoke_seal(session, seal_id=rotated.id, reason="superseded", actor=OPERATOR)
    seal_document(
        initialised,
        source=io.BytesIO(make_pdf()),
        seal_id=licence_seal_id(initialised),
        options=SealOptions(level=SealLevel.B_B),
        actor=OPERATOR,
    )
    assert [row.type for row in outbox(initialised)[start:]] == [
        "certificate.issued",
        "certificate.suspended",
        "certificate.reinstated",
        "certificate.issued",
        "certificate.superseded",
        "certificate.revoked",
        "seal.created",
        "seal.created",
        "seal.retired",
        "seal.revoked",
        "document.sealed",
    ]


def test_every_change_that_the_log_keeps_has_one_outbox_row(initialised: Services) -> None:
    certificate = issue_example(initialised)
    change_status(
        initialised, certificate_id=certificate.id, action="revoke", reason="吊销", actor=OPERATOR
    )
    # Since start-up every log entry was written by the recorder; a seal's retirement is the
    # one change the log does not keep, and none happened here.
    assert count(initialised, LogLeaf) == count(initialised, OutboxEvent)


#: Where the recorder's parts may be called directly, and why.
DIRECT_CALLS_ALLOWED = {
    # The recorder itself.
    ("econtract/events.py", "append_entry"),
    ("econtract/events.py", "audit.record"),
    ("econtract/events.py", "StatusEvent"),
    ("econtract/events.py", "OutboxEvent"),
    # The log's own layers: one entry is a batch of one, a batch is encoded entries.
    ("econtract/translog/_store.py", "append_entries"),
    ("econtract/translog/_store.py", "append_encoded"),
    # Administration of who may act (departments, API clients): audited, not logged and not
    # told to subscribers.
    ("econtract/departments.py", "audit.record"),
    ("econtract/clients.py", "audit.record"),
    # People's console accounts and their sign-ins, sign-outs and lockouts: audited, never
    # logged nor told to subscribers (a supervisor belongs to no department).
    ("econtract/console/_accounts.py", "audit.record"),
    # Usage records are their own record: each is committed to by a log entry of digests
    # only, and is neither audited (it is the audit) nor told to subscribers.
    ("econtract/sharing/_usage.py", "append_entries"),
    # A fresh 亮证码 for a consent changes nothing anyone else sees: audited only.
    ("econtract/sharing/_consents.py", "audit.record"),
    # A licence's expiry is no change of the registry (the status is derived from the dates);
    # the sweep only tells subscribers, once per licence.
    ("econtract/webhooks/_fanout.py", "OutboxEvent"),
    # A licence number that was claimed and never issued is declared void in the audit trail
    # and the log; no licence changed, so no subscriber is told.
    ("econtract/issuance/_claims.py", "audit.record"),
    ("econtract/issuance/_claims.py", "append_entry"),
}

RECORDER_PARTS = {
    "append_entry",
    "append_entries",
    "append_encoded",
    "audit.record",
    "StatusEvent",
    "OutboxEvent",
}


def _called_name(call: ast.Call) -> str | None:
    match call.func:
        case ast.Name(id=name):
            return name
        case ast.Attribute(value=ast.Name(id=owner), attr=attr):
            return f"{owner}.{attr}"
        case ast.Attribute(attr=attr):
            return attr
    return None


def test_state_changes_are_recorded_only_through_the_recorder() -> None:
    sources = [
        *sorted((ROOT / "econtract").rglob("*.py")),
        *sorted((ROOT / "routes").rglob("*.py")),
        ROOT / "api.py",
    ]
    found = set()
    for path in sources:
        if "migrations" in path.parts:
            continue
        relative = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = _called_name(node)
                if name in RECORDER_PARTS:
                    found.add((relative, name))
    assert found - DIRECT_CALLS_ALLOWED == set()
    assert ("econtract/events.py", "OutboxEvent") in found


# --- the clock ----------------------------------------------------------------------------------


def test_a_status_change_takes_its_time_from_the_services_clock(initialised: Services) -> None:
    certificate = issue_example(initialised)
    initialised.clock = FixedClock(PINNED)
    change_status(
        initialised, certificate_id=certificate.id, action="suspend", reason="其他", actor=OPERATOR
    )
    with initialised.sessions() as session:
        event = session.scalars(
            select(StatusEvent)
            .where(StatusEvent.certificate_id == certificate.id)
            .order_by(StatusEvent.id.desc())
        ).first()
        audit_event = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.target_id == certificate.id)
            .order_by(AuditEvent.id.desc())
        ).first()
    assert event is not None
    assert audit_event is not None
    assert event.created_at == PINNED
    assert audit_event.created_at == PINNED
    assert outbox(initialised)[-1].created_at == PINNED


def test_issuance_dates_a_licence_by_the_services_clock(initialised: Services) -> None:
    pinned_day = date(2026, 3, 1)
    initialised.clock = FixedClock.on(pinned_day)
    certificate = issue_example(initialised)
    assert certificate.issued_at == initialised.clock.now()
    assert certificate.valid_from == pinned_day
    assert certificate.number[-10:-6] == "2026"
    assert outbox(initialised)[-1].created_at == certificate.issued_at


def test_a_fixed_clock_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        FixedClock(datetime(2026, 3, 1, 12))


def test_a_fixed_clock_dates_by_china_time() -> None:
    # 20:00 UTC is already the next day in China.
    clock = FixedClock(datetime(2026, 3, 1, 20, tzinfo=UTC))
    assert clock.today() == date(2026, 3, 2)
    assert clock.now().tzinfo == UTC
    assert FixedClock.on(date(2026, 3, 2)).now().astimezone(CHINA).date() == date(2026, 3, 2)


# --- one vocabulary -----------------------------------------------------------------------------


def test_the_effective_status_of_a_licence_not_valid_yet_is_named_by_the_enum(
    initialised: Services,
) -> None:
    certificate = issue_example(initialised)
    day_before = certificate.valid_from.toordinal() - 1
    status = effective_status(certificate, date.fromordinal(day_before))
    assert status is EffectiveStatus.NOT_YET_VALID
    assert f"{status}" == "not-yet-valid"


def test_every_registry_status_is_an_effective_status() -> None:
    assert {s.value for s in CertificateStatus} <= {s.value for s in EffectiveStatus}


def test_transitions_name_registry_statuses_by_the_enum() -> None:
    for allowed_from, target in TRANSITIONS.values():
        assert isinstance(target, CertificateStatus)
        assert all(isinstance(s, CertificateStatus) for s in allowed_from)


def test_a_registry_row_reads_back_as_its_effective_status(initialised: Services) -> None:
    certificate = issue_example(initialised)
    with initialised.sessions() as session:
        row = session.get(Certificate, certificate.id)
        assert row is not None
        assert effective_status(row, row.valid_from) is EffectiveStatus.VALID


def test_an_access_token_takes_its_time_from_the_clock(initialised: Services) -> None:
    with db.transaction(initialised.sessions) as session:
        api_client, secret = create_client(
            session,
            department_code=DEMO_DEPARTMENT_CODE,
            name="审批系统",
            scopes="read",
            actor=OPERATOR,
        )
    with initialised.sessions() as session:
        issued = issue_access_token(
            session,
            key=initialised.pki.token_signer,
            settings=initialised.settings,
            client_id=api_client.id,
            client_secret=secret,
            scope=None,
            clock=FixedClock(PINNED),
        )
    claims = jwt.decode(issued.token, options={"verify_signature": False})
    assert claims["iat"] == int(PINNED.timestamp())
