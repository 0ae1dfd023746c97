"""Supervision's tables: the early warnings (预警) and the daily counts of scans by answer."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from econtract.models import Base, utcnow


class WarningStatus(StrEnum):
    """Where a warning stands: raised (open), seen by a supervisor, or dealt with."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


class SupervisionWarning(Base):
    """One early warning (监察预警, GB/T 39046): the rule that raised it, its type, the
    department concerned, the subject, when, a description, and how it was handled.

    Unique per rule, subject and window, so that a rule evaluated again (or by two workers at
    once) raises one warning per subject and window.
    """

    __tablename__ = "supervision_warnings"
    __table_args__ = (
        UniqueConstraint("rule_id", "subject_id", "window"),
        Index("ix_supervision_warnings_raised", "raised_at", "id"),
        Index("ix_supervision_warnings_department", "department_id", "raised_at"),
        Index("ix_supervision_warnings_status", "status", "raised_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    """``wrn_…``."""
    rule_id: Mapped[str] = mapped_column(String(40))
    """The rule that raised it (``WR-DEADLINE``, ``WR-REVOCATION-SPIKE``, …)."""
    warning_type: Mapped[str] = mapped_column(String(40))
    """The type of warning (预警类型): ``deadline``, ``revocation-spike``, …"""
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    """The department concerned; ``None`` when no department is known (a forged code)."""
    subject_type: Mapped[str] = mapped_column(String(20))
    """What the warning is about: ``envelope``, ``certificate``, ``seal``, ``department``,
    ``qr-subject``."""
    subject_id: Mapped[str] = mapped_column(String(128))
    window: Mapped[str] = mapped_column(String(40))
    """The period the rule judged (a day, a deadline, ``once``): one warning per window."""
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)
    description_zh: Mapped[str] = mapped_column(String(500))
    description_en: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(14), default=WarningStatus.OPEN.value)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200), default=None)
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_by: Mapped[str | None] = mapped_column(String(200), default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    """The supervisors' notes on its handling, one line per acknowledgement or closing."""


class ScanCount(Base):
    """How many times one day's QR scans (``qr``) or uploaded verifications (``verify``) of
    one subject got one answer: a counter row, upserted, instead of a row per scan.

    The subject is the certificate id a readable QR token names, or ``""`` for a token that
    does not read at all (forged).
    """

    __tablename__ = "scan_counts"
    __table_args__ = (Index("ix_scan_counts_department", "department_id", "day"),)

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    """The day in China time."""
    channel: Mapped[str] = mapped_column(String(8), primary_key=True)
    subject: Mapped[str] = mapped_column(String(128), primary_key=True)
    verdict: Mapped[str] = mapped_column(String(12), primary_key=True)
    department_id: Mapped[int | None] = mapped_column(Integer, default=None)
    """The issuing department of the licence scanned, when the registry knows it."""
    count: Mapped[int] = mapped_column(BigInteger, default=0)
