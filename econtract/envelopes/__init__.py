"""Envelopes (并联审批, e-contracts): one document sealed by departments and enterprises in
steps, each party only its own field, tracked from the first seal to completion."""

from econtract.envelopes._completion import (
    IssueLicence,
    complete,
    completion_certificate,
    finish_completions,
)
from econtract.envelopes._deadlines import sweep_deadlines
from econtract.envelopes._envelopes import (
    EnvelopeRequest,
    PartySpec,
    StepSpec,
    cancel,
    create_envelope,
    decline,
    get_envelope,
    list_envelopes,
    seal_step,
)
from econtract.envelopes._errors import (
    AlreadyActedError,
    DeadlinePassedError,
    EnvelopeClosedError,
    NotYourTurnError,
)
from econtract.envelopes._models import Envelope, EnvelopeParty, EnvelopeStatus, PartyStatus
from econtract.envelopes._views import EnvelopeView, PartyView

# Where the initiator's own seal goes is told as in every sealing request; offered here so
# that the HTTP face depends on the domain, not on signing.
from signing.options import Placement

__all__ = [
    "AlreadyActedError",
    "DeadlinePassedError",
    "Envelope",
    "EnvelopeClosedError",
    "EnvelopeParty",
    "EnvelopeRequest",
    "EnvelopeStatus",
    "EnvelopeView",
    "IssueLicence",
    "NotYourTurnError",
    "PartySpec",
    "PartyStatus",
    "PartyView",
    "Placement",
    "StepSpec",
    "cancel",
    "complete",
    "completion_certificate",
    "create_envelope",
    "decline",
    "finish_completions",
    "get_envelope",
    "list_envelopes",
    "seal_step",
    "sweep_deadlines",
]
