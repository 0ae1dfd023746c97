"""The rules of early warning: each reads the registry and names the warnings it would raise.

A rule returns :class:`Candidate` warnings for the recent past (:data:`LOOKBACK`); which of
them are new is decided by the warnings' unique key (rule, subject, window), so a rule may
name the same warning at every evaluation. Each rule's thresholds are settings
(``ECONTRACT_WARN_*``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, aliased

from econtract.clock import CHINA, Clock
from econtract.config import Settings
from econtract.envelopes import Envelope, EnvelopeParty, EnvelopeStatus, PartyStatus
from econtract.models import (
    AuditEvent,
    Certificate,
    CertificateStatus,
    Department,
    StatusEvent,
    UsageRecord,
)
from econtract.supervision._models import ScanCount
from econtract.supervision._scans import FAILED_ANSWERS

#: How far back a rule looks at each evaluation (the sweep runs every minute; a day's margin
#: covers a worker that was down for hours).
LOOKBACK = timedelta(days=2)


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """A warning a rule would raise."""

    rule_id: str
    warning_type: str
    department_id: int | None
    subject_type: str
    subject_id: str
    window: str
    description_zh: str
    description_en: str


Rule = Callable[[Session, Settings, Clock], list[Candidate]]


def day_start(day: date) -> datetime:
    """The first instant of a China-time day, in UTC."""
    return datetime.combine(day, time(0), CHINA).astimezone(UTC)


def deadline_warnings(session: Session, settings: Settings, clock: Clock) -> list[Candidate]:
    """An open step's party that has not acted and whose deadline is near or has passed."""
    now = clock.now()
    horizon = now + timedelta(hours=settings.warn_deadline_hours)
    rows = session.execute(
        select(
            EnvelopeParty.envelope_id,
            EnvelopeParty.field_name,
            EnvelopeParty.department_id,
            EnvelopeParty.deadline,
            Envelope.title,
        )
        .join(Envelope, Envelope.id == EnvelopeParty.envelope_id)
        .where(
            EnvelopeParty.status == PartyStatus.OPEN.value,
            Envelope.status.in_((EnvelopeStatus.OPEN.value, EnvelopeStatus.EXPIRED.value)),
            EnvelopeParty.deadline <= horizon,
            EnvelopeParty.deadline > now - LOOKBACK,
        )
    ).all()
    found = []
    for envelope_id, field_name, department_id, deadline, title in rows:
        passed = deadline <= now
        when = deadline.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")
        found.append(
            Candidate(
                rule_id="WR-DEADLINE-PAST" if passed else "WR-DEADLINE-NEAR",
                warning_type="deadline-passed" if passed else "deadline-near",
                department_id=department_id,
                subject_type="envelope",
                subject_id=f"{envelope_id}/{field_name}",
                window=deadline.isoformat(timespec="seconds"),
                description_zh=f"“{title}”的步骤（签章域 {field_name}）"
                + (f"已超过办理期限 {when}。" if passed else f"临近办理期限 {when}。"),
                description_en=f"The step of “{title}” (field {field_name}) "
                + (f"is past its deadline {when}." if passed else f"is due by {when}."),
            )
        )
    return found


def revocation_spike_warnings(
    session: Session, settings: Settings, clock: Clock
) -> list[Candidate]:
    """A department's revocations today above ``warn_revocation_factor`` times the mean of
    its previous ``warn_revocation_days`` days, and at least ``warn_revocation_min``."""
    today = clock.today()
    start = day_start(today)
    base_start = day_start(today - timedelta(days=settings.warn_revocation_days))
    today_count = func.sum(case((StatusEvent.created_at >= start, 1), else_=0))
    rows = session.execute(
        select(Certificate.department_id, today_count, func.count())
        .join(Certificate, Certificate.id == StatusEvent.certificate_id)
        .where(
            StatusEvent.to_status == CertificateStatus.REVOKED.value,
            StatusEvent.created_at >= base_start,
            StatusEvent.created_at < start + timedelta(days=1),
        )
        .group_by(Certificate.department_id)
    ).all()
    found = []
    for department_id, today_sum, total in rows:
        today_n = int(today_sum or 0)
        usual = (total - today_n) / settings.warn_revocation_days
        if (
            today_n < settings.warn_revocation_min
            or today_n <= settings.warn_revocation_factor * usual
        ):
            continue
        found.append(
            Candidate(
                rule_id="WR-REVOCATION-SPIKE",
                warning_type="revocation-spike",
                department_id=department_id,
                subject_type="department",
                subject_id=str(department_id),
                window=today.isoformat(),
                description_zh=f"今日撤销 {today_n} 件，前 {settings.warn_revocation_days} "
                f"日日均 {usual:.1f} 件。",
                description_en=f"{today_n} revocations today against a daily mean of "
                f"{usual:.1f} over the previous {settings.warn_revocation_days} days.",
            )
        )
    return found


def off_hours_warnings(session: Session, settings: Settings, clock: Clock) -> list[Candidate]:
    """Licences a department issued outside office hours (China time), one warning per
    department and day."""
    since = clock.now() - LOOKBACK
    # The department index (department, issued_at) serves one department's range each.
    # Every department, from their own table: DISTINCT over the certificates read the whole
    # index.
    departments = list(session.scalars(select(Department.id)))
    issued = session.execute(
        select(Certificate.department_id, Certificate.issued_at).where(
            Certificate.department_id.in_(departments), Certificate.issued_at >= since
        )
    ).all()
    counts: Counter[tuple[int, date]] = Counter()
    for department_id, issued_at in issued:
        local = issued_at.astimezone(CHINA)
        workday = local.isoweekday() in settings.warn_workdays
        if not workday or not settings.warn_office_start <= local.time() < settings.warn_office_end:
            counts[department_id, local.date()] += 1
    return [
        Candidate(
            rule_id="WR-OFF-HOURS",
            warning_type="off-hours-issuance",
            department_id=department_id,
            subject_type="department",
            subject_id=str(department_id),
            window=day.isoformat(),
            description_zh=f"{day.isoformat()} 在办公时间以外签发证照 {n} 件。",
            description_en=f"{n} licences issued outside office hours on {day.isoformat()}.",
        )
        for (department_id, day), n in sorted(counts.items())
    ]


def new_seal_user_warnings(session: Session, settings: Settings, clock: Clock) -> list[Candidate]:
    """A seal used (a document sealed) by an API client that never used it before."""
    since = clock.now() - LOOKBACK
    seal = AuditEvent.detail["seal"].as_string()
    recent = session.execute(
        select(AuditEvent.actor, seal, AuditEvent.department_id, func.min(AuditEvent.created_at))
        .where(AuditEvent.action == "document.seal", AuditEvent.created_at >= since)
        .group_by(AuditEvent.actor, seal, AuditEvent.department_id)
    ).all()
    earlier = aliased(AuditEvent)
    found = []
    for actor, seal_id, department_id, first in recent:
        used_before = session.scalar(
            select(func.count())
            .select_from(earlier)
            .where(
                earlier.action == "document.seal",
                earlier.actor == actor,
                earlier.department_id == department_id,
                earlier.created_at < first,
                earlier.detail["seal"].as_string() == seal_id,
            )
        )
        if used_before:
            continue
        # The first use ever of a seal by anyone is its first client's: no warning.
        seal_used = session.scalar(
            select(func.count())
            .select_from(earlier)
            .where(
                earlier.action == "document.seal",
                earlier.department_id == department_id,
                earlier.created_at < first,
                earlier.detail["seal"].as_string() == seal_id,
            )
        )
        if not seal_used:
            continue
        found.append(
            Candidate(
                rule_id="WR-NEW-SEAL-USER",
                warning_type="new-seal-user",
                department_id=department_id,
                subject_type="seal",
                subject_id=f"{seal_id}/{actor}"[:128],
                window="first-use",
                description_zh=f"{actor} 首次使用印章 {seal_id}。",
                description_en=f"{actor} used the seal {seal_id} for the first time.",
            )
        )
    return found


def failed_scan_warnings(session: Session, settings: Settings, clock: Clock) -> list[Candidate]:
    """One licence (or unreadable code) answered FORGED or UNKNOWN (QR page), INVALID or
    MODIFIED (verification) at least ``warn_failed_scans`` times in a day."""
    today = clock.today()
    failed = func.sum(ScanCount.count)
    rows = session.execute(
        select(ScanCount.day, ScanCount.subject, func.max(ScanCount.department_id), failed)
        .where(
            ScanCount.day >= today - timedelta(days=1),
            ScanCount.verdict.in_(FAILED_ANSWERS),
        )
        .group_by(ScanCount.day, ScanCount.subject)
        .having(failed >= settings.warn_failed_scans)
    ).all()
    return [
        Candidate(
            rule_id="WR-FAILED-SCANS",
            warning_type="failed-scans",
            department_id=department_id,
            subject_type="qr-subject",
            subject_id=subject or "-",
            window=day.isoformat(),
            description_zh=f"{day.isoformat()} "
            + (f"证照 {subject}" if subject else "无法识别的二维码")
            + f" 被核验为伪造或不存在 {n} 次。",
            description_en=f"{n} FORGED or UNKNOWN answers on {day.isoformat()} for "
            + (f"the licence {subject}." if subject else "unreadable codes."),
        )
        for day, subject, department_id, n in rows
    ]


def used_after_revocation_warnings(
    session: Session, settings: Settings, clock: Clock
) -> list[Candidate]:
    """A use of a licence granted after the licence was revoked."""
    since = clock.now() - LOOKBACK
    revoked_at = (
        select(func.min(StatusEvent.created_at))
        .where(
            StatusEvent.certificate_id == UsageRecord.certificate_id,
            StatusEvent.to_status == CertificateStatus.REVOKED.value,
        )
        .scalar_subquery()
    )
    rows = session.execute(
        select(UsageRecord.usage_id, UsageRecord.department_id, UsageRecord.identifier)
        .join(Certificate, Certificate.id == UsageRecord.certificate_id)
        .where(
            UsageRecord.created_at >= since,
            UsageRecord.result == "granted",
            Certificate.status == CertificateStatus.REVOKED.value,
            UsageRecord.created_at > revoked_at,
        )
    ).all()
    return [
        Candidate(
            rule_id="WR-USED-AFTER-REVOCATION",
            warning_type="used-after-revocation",
            department_id=department_id,
            subject_type="usage",
            subject_id=usage_id,
            window="once",
            description_zh=f"已撤销的证照 {identifier} 仍被使用（{usage_id}）。",
            description_en=f"The revoked licence {identifier} was used ({usage_id}).",
        )
        for usage_id, department_id, identifier in rows
    ]


#: Every rule, in the order they run.
RULES: tuple[Rule, ...] = (
    deadline_warnings,
    revocation_spike_warnings,
    off_hours_warnings,
    new_seal_user_warnings,
    failed_scan_warnings,
    used_after_revocation_warnings,
)
