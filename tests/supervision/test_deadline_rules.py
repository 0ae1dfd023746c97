"""The deadline rules: an open step's party that has not acted is warned of once when its
deadline is near (WR-DEADLINE-NEAR) and once when it has passed (WR-DEADLINE-PAST); a party
that acted, or whose step is not open yet, is not."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from econtract.clock import CHINA, FixedClock
from econtract.envelopes import (
    EnvelopeView,
    create_envelope,
    seal_step,
)
from econtract.services import Services
from econtract.supervision import WarningView, evaluate_warnings, list_warnings
from tests.envelopes.parties import Party, contract_request, make_parties
from tests.signing.sealing import make_pdf

pytestmark = pytest.mark.registry

# A Wednesday, 10:00 in China.
NOW = datetime(2026, 11, 18, 10, 0, tzinfo=CHINA)


@pytest.fixture
def envelope(initialised: Services) -> tuple[EnvelopeView, dict[str, Party]]:
    """A contract opened at NOW: both enterprises seal by NOW + 30 hours, then the demo
    department by NOW + 60 hours."""
    initialised.clock = FixedClock(NOW)
    parties = make_parties(initialised, other=False)
    deadline = NOW + timedelta(hours=30)
    view = create_envelope(
        initialised,
        source=make_pdf(),
        request=contract_request(parties["dept"].seal, deadline, deadline + timedelta(hours=30)),
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
