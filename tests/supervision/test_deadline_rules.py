"""The deadline rules: an open step's party that has not acted is warned of once when its
deadline is near (WR-DEADLINE-NEAR) and once when it has passed (WR-DEADLINE-PAST); a party
that acted, or whose step is not open yet, is not."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from econtract import audit, db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.clock import CHINA, FixedClock
from econtract.enterprises import add_enterprise
from econtract.envelopes import (
    EnvelopeRequest,
    EnvelopeView,
    PartySpec,
    StepSpec,
    create_envelope,
    seal_step,
)
from econtract.models import Department, SealKind
from econtract.seals import SealRequest, create_seal
from econtract.services import Services
from econtract.supervision import WarningView, evaluate_warnings, list_warnings
from tests.factories import OPERATOR
from tests.signing.sealing import make_pdf

pytestmark = pytest.mark.registry

# A Wednesday, 10:00 in China.
NOW = datetime(2026, 11, 18, 10, 0, tzinfo=CHINA)
ENTERPRISE_A = "9133010052CL12THX9"
ENTERPRISE_B = "9133100015J1YG617W"


@dataclass(frozen=True)
class Party:
    """A party as the tests drive it: its actor and its seal."""

    actor: audit.Actor
    seal: str


def _party(services: Services, code: str, name: str | None, kind: SealKind) -> Party:
    """A party with a seal of ``kind`` (an enterprise, added first, when named)."""
    with db.transaction(services.sessions) as session:
        if name is not None:
            add_enterprise(session, code=code, name=name, actor=OPERATOR)
        seal = create_seal(
            session,
            request=SealRequest(department_code=code, kind=kind),
            key_store=services.key_store,
            pki=services.pki,
            actor=OPERATOR,
            clock=services.clock,
        )
        body = session.scalars(select(Department).where(Department.code == code)).one()
        return Party(audit.Actor(name=f"client:{code}", department_id=body.id), seal.id)


@pytest.fixture
def envelope(initialised: Services) -> tuple[EnvelopeView, dict[str, Party]]:
    """A contract opened at NOW: both enterprises seal by NOW + 30 hours, then the demo
    department by NOW + 60 hours."""
    initialised.clock = FixedClock(NOW)
    parties = {
        "dept": _party(initialised, DEMO_DEPARTMENT_CODE, None, SealKind.OFFICIAL),
        "a": _party(initialised, ENTERPRISE_A, "杭州远航建设工程有限公司", SealKind.CONTRACT),
        "b": _party(initialised, ENTERPRISE_B, "台州瑞丰科技有限公司", SealKind.CONTRACT),
    }
    deadline = NOW + timedelta(hours=30)
    view = create_envelope(
        initialised,
        source=make_pdf(),
        request=EnvelopeRequest(
            title="政府采购合同",
            seal_id=parties["dept"].seal,
            steps=(
                StepSpec(
                    parties=(
                        PartySpec(code=ENTERPRISE_A, field="PartyA", x=150),
                        PartySpec(code=ENTERPRISE_B, field="PartyB", x=300),
                    ),
                    deadline=deadline,
                ),
                StepSpec(
                    parties=(PartySpec(code=DEMO_DEPARTMENT_CODE, field="Buyer", x=450),),
                    deadline=deadline + timedelta(hours=30),
                ),
            ),
        ),
        actor=parties["dept"].actor,
    )
    return view, parties


def _deadline_warnings(services: Services) -> list[WarningView]:
    return sorted(
        (w for w in list_warnings(services) if w.rule_id.startswith("WR-DEADLINE")),
        key=lambda w: (w.rule_id, w.subject_id),
    )


def test_a_deadline_far_off_raises_no_warning(
    initialised: Services, envelope: tuple[EnvelopeView, dict[str, Party]]
) -> None:
    evaluate_warnings(initialised)
    assert _deadline_warnings(initialised) == []


def test_a_near_deadline_raises_one_warning_per_party_that_has_not_acted(
    initialised: Services, envelope: tuple[EnvelopeView, dict[str, Party]]
) -> None:
    view, parties = envelope
    # Twenty hours before the step's deadline, within the 24 hours of the setting.
    initialised.clock = FixedClock(NOW + timedelta(hours=10))
    assert evaluate_warnings(initialised) == 2
    assert evaluate_warnings(initialised) == 0
    warnings = _deadline_warnings(initialised)
    assert [(w.rule_id, w.subject_id, w.department_id) for w in warnings] == [
        ("WR-DEADLINE-NEAR", f"{view.id}/PartyA", parties["a"].actor.department_id),
        ("WR-DEADLINE-NEAR", f"{view.id}/PartyB", parties["b"].actor.department_id),
    ]
    # One window per deadline (in UTC); the description gives it in China time.
    assert {w.window for w in warnings} == {"2026-11-19T08:00:00+00:00"}
    assert all("2026-11-19 16:00" in w.description_zh for w in warnings)


def test_a_passed_deadline_raises_one_warning_for_the_party_that_did_not_act(
    initialised: Services, envelope: tuple[EnvelopeView, dict[str, Party]]
) -> None:
    view, parties = envelope
    initialised.clock = FixedClock(NOW + timedelta(hours=10))
    evaluate_warnings(initialised)
    seal_step(
        initialised,
        envelope_id=view.id,
        seal_id=parties["a"].seal,
        actor=parties["a"].actor,
    )
    initialised.clock = FixedClock(NOW + timedelta(hours=31))
    assert evaluate_warnings(initialised) == 1
    assert evaluate_warnings(initialised) == 0
    # The next step's deadline is 29 hours off and its party is not open yet: nothing.
    assert [(w.rule_id, w.subject_id) for w in _deadline_warnings(initialised)] == [
        ("WR-DEADLINE-NEAR", f"{view.id}/PartyA"),
        ("WR-DEADLINE-NEAR", f"{view.id}/PartyB"),
        ("WR-DEADLINE-PAST", f"{view.id}/PartyB"),
    ]
