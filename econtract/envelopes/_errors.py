"""What an envelope refuses, each with its own problem code."""

from __future__ import annotations

from econtract.errors import ConflictError


class EnvelopeClosedError(ConflictError):
    """The envelope is completed, declined, cancelled or expired: nothing more is done."""

    code = "envelope-closed"
    title = "The envelope is closed."


class NotYourTurnError(ConflictError):
    """The party's step is not open yet (an earlier step has not finished)."""

    code = "envelope-not-your-turn"
    title = "This party's step is not open yet."


class AlreadyActedError(ConflictError):
    """The party has sealed (or declined) already; a step is never done twice."""

    code = "envelope-already-acted"
    title = "This party has already acted on the envelope."


class DeadlinePassedError(ConflictError):
    """The step's deadline (办理时限) has passed: the envelope is expired."""

    code = "envelope-expired"
    title = "The step's deadline has passed; the envelope is expired."
