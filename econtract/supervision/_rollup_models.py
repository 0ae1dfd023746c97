"""The overview's daily roll-ups (日汇总): one row per China day and group of each figure
that counts records, written once for a day that is over (:mod:`econtract.supervision._rollup`).

A figure reads these rows for the days listed in :class:`RolledUpDay` and counts the other
days of its period live, so that at a million licences it reads a few rows a day instead of
every record of the period. They are derived data: no foreign keys, rebuilt from the records
by ``econtract supervision rollup``.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from econtract.models import Base, utcnow


class RolledUpDay(Base):
    """A China day whose counts are in the roll-up tables (all of them, written together)."""

    __tablename__ = "overview_rollup_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    rolled_at: Mapped[datetime] = mapped_column(default=utcnow)
    """When its rows were written (the last time, after a re-roll)."""
    through: Mapped[datetime | None] = mapped_column(default=None)
    """For a day rolled up in part (today so far), the instant up to which its rows count:
    the figures read its records from there on; ``None`` for a whole day (migration 0031)."""


class IssuedDay(Base):
    """Licences issued on one day by one department in one type."""

    __tablename__ = "overview_issued_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    department_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    type_code: Mapped[str] = mapped_column(String(60), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)


class StatusChangeList(Base):
    """Revocations and suspensions of one day of one department's licences (``None``: of
    every department's together), as a list: a year of a large registry holds every reason on
    every day, and one row a day reads in a fraction of the time of one row per reason."""

    __tablename__ = "overview_status_change_lists"
    __table_args__ = (
        Index("ix_overview_status_change_lists_department", "department_id", "day"),
        Index("ix_overview_status_change_lists_day", "day"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    department_id: Mapped[int | None] = mapped_column(Integer)
    changes: Mapped[str] = mapped_column(Text)
    """A JSON array of ``[new status, reason as given or null, count]``."""


class UseDay(Base):
    """Granted uses of one day by one department of another's licences."""

    __tablename__ = "overview_use_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    user_department_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer_department_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)


class ScanDay(Base):
    """QR answers of one day about one department's licences (``None``: a code that names no
    licence of the registry), by answer."""

    __tablename__ = "overview_scan_days"
    __table_args__ = (Index("ix_overview_scan_days_day", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    department_id: Mapped[int | None] = mapped_column(Integer)
    verdict: Mapped[str] = mapped_column(String(12))
    count: Mapped[int] = mapped_column(BigInteger)


class EnvelopeDay(Base):
    """Envelopes started on one day by one department that are closed with one status (a
    closed envelope never changes again): counted when their day is rolled up, or, when
    they were still open then, when the worker finds them closed."""

    __tablename__ = "overview_envelope_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    initiator_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(12), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)


class OpenEnvelope(Base):
    """An envelope of a rolled-up day that was open when the day was rolled up: the figures
    read its status live until it is counted in :class:`EnvelopeDay`."""

    __tablename__ = "overview_open_envelopes"
    __table_args__ = (Index("ix_overview_open_envelopes_day", "day"),)

    envelope_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[date] = mapped_column(Date)


class Completion(Base):
    """An envelope completed on a rolled-up day (the China day of its completion): its
    initiator, its duration from start to completion and the duration's bin
    (:func:`econtract.supervision._completions.duration_bin`), read a bin at a time."""

    __tablename__ = "overview_completions"
    __table_args__ = (Index("ix_overview_completions_day", "day"),)

    initiator_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bin: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    micros: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    """The duration in microseconds (whole: the two timestamps' own precision)."""
    envelope_id: Mapped[str] = mapped_column(String(40), primary_key=True)


class CompletionTotal(Base):
    """How many envelopes of one initiator completed on the rolled-up days up to and
    including ``day``, per bin: a period's counts per bin are the difference of two rows.
    Written for the days the initiator completed envelopes on."""

    # No index of the days alone: the planner would read it backward for a department's last
    # row, through every row for a department with none.
    __tablename__ = "overview_completion_totals"

    initiator_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    counts: Mapped[str] = mapped_column(Text)
    """A JSON array: the cumulative count of bin 0, bin 1, … up to the initiator's highest
    bin so far (Text, not JSON: both databases store and answer it the same way)."""


#: The roll-up tables that hold a day's rows, replaced when the day is rolled up (again); the
#: running totals of :class:`CompletionTotal` are rewritten from that day on.
DAY_TABLES = (
    RolledUpDay,
    IssuedDay,
    StatusChangeList,
    UseDay,
    ScanDay,
    EnvelopeDay,
    OpenEnvelope,
    Completion,
)
