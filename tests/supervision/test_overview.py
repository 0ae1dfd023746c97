"""The overview's figures on a small arranged registry, with the exact numbers each should
give, for every department and for one; and the records behind their points."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.certificates import change_status
from econtract.clock import CHINA, FixedClock
from econtract.departments import add_department
from econtract.envelopes import Envelope
from econtract.errors import NotFoundError
from econtract.issuance import IssueRequest, issue_certificate
from econtract.models import (
    Base,
    CertificateType,
    Department,
    SealedDocument,
    SealKind,
    UsageRecord,
)
from econtract.seals import SealRequest, create_seal
from econtract.services import Services
from econtract.supervision import (
    Period,
    Series,
    completed_envelopes,
    completion_times,
    count_scan,
    envelopes_by_status,
    envelopes_of_status,
    flush_scans,
    issued_certificates,
    issued_per_day,
    issued_per_week,
    scans_of_day,
    scans_per_day,
    status_changes,
    status_changes_per_day,
    uses_by_other_departments,
    uses_of_pair,
)
from tests.factories import OPERATOR
from tests.licences import holder_fields

pytestmark = pytest.mark.registry

SECOND = "9133040016D272HD32"
THIRD = "913302000937LLJ16T"
# Monday 16 to Sunday 22 November 2026 (ISO week 47), in China.
WEEK = Period(since=date(2026, 11, 16), until=date(2026, 11, 23))


def china(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant of November 2026 in China time."""
    return datetime(2026, 11, day, hour, minute, tzinfo=CHINA)


@dataclass(frozen=True)
class Registry:
    """The arranged registry: its services, departments, licences and envelopes by name."""

    services: Services
    first: int
    second: int
    third: int
    licences: dict[str, str]
    envelopes: dict[str, str]


def _issue(services: Services, code: str, type_code: str, at: datetime) -> str:
    services.clock = FixedClock(at)
    return issue_certificate(
        services,
        department_code=code,
        request=IssueRequest(type_code=type_code, fields=holder_fields(type_code)),
        actor=OPERATOR,
    ).certificate.id


def _change(services: Services, licence: str, action: str, reason: str, at: datetime) -> None:
    services.clock = FixedClock(at)
    change_status(services, certificate_id=licence, action=action, reason=reason, actor=OPERATOR)


def _scan(services: Services, at: datetime, subject: str | None, verdict: str, n: int) -> None:
    # INVALID is an answer of an uploaded file's verification, which the QR figure leaves out.
    channel = "verify" if verdict == "INVALID" else "qr"
    services.clock = FixedClock(at)
    for _ in range(n):
        count_scan(services.clock, channel=channel, subject=subject, verdict=verdict)


@pytest.fixture
def registry(initialised: Services) -> Registry:
    """Two issuing departments (the demo one and a second) and a third that only uses.

    Licences (China time): the first department's business licences on Sunday 15 at 23:30
    (the week before), Monday 16 at 00:30 and 15:00, a food permit on Tuesday 17; the
    second's business licences on Tuesday 17 and on Monday 23 (the week after). Revoked and
    suspended on Wednesday 18 and Thursday 19 (07:00, still Wednesday in UTC); envelopes of
    known durations; uses across departments; QR scans on the 17th and 18th.
    """
    services = initialised
    with db.transaction(services.sessions) as session:
        add_department(
            session, code=SECOND, name="台州市市场监督管理局", region=None, actor=OPERATOR
        )
        add_department(session, code=THIRD, name="宁波市税务局", region=None, actor=OPERATOR)
        create_seal(
            session,
            request=SealRequest(department_code=SECOND, kind=SealKind.LICENCE),
            key_store=services.key_store,
            pki=services.pki,
            actor=OPERATOR,
        )
        ids = dict(session.execute(select(Department.code, Department.id)).all())
    first, second, third = ids[DEMO_DEPARTMENT_CODE], ids[SECOND], ids[THIRD]
    licences = {
        "sunday": _issue(services, DEMO_DEPARTMENT_CODE, "business_licence", china(15, 23, 30)),
        "midnight": _issue(services, DEMO_DEPARTMENT_CODE, "business_licence", china(16, 0, 30)),
        "monday": _issue(services, DEMO_DEPARTMENT_CODE, "business_licence", china(16, 15)),
        "food": _issue(services, DEMO_DEPARTMENT_CODE, "food_business_permit", china(17, 9)),
        "second": _issue(services, SECOND, "business_licence", china(17, 11)),
        "next": _issue(services, SECOND, "business_licence", china(23, 9)),
    }
    _change(services, licences["monday"], "revoke", "吊销：虚假材料", china(18, 10))
    _change(services, licences["food"], "suspend", "暂停使用：核查中", china(18, 10, 30))
    _change(services, licences["midnight"], "revoke", "吊销：虚假材料", china(18, 11))
    _change(services, licences["second"], "revoke", "注销", china(19, 7))

    envelopes = _envelopes(services, first, second)
    with db.transaction(services.sessions) as session:
        for n, (user, licence, at, result) in enumerate(
            [
                (second, licences["monday"], china(18, 9), "granted"),
                (second, licences["midnight"], china(18, 9, 30), "granted"),
                (first, licences["second"], china(19, 7, 30), "granted"),
                (third, licences["second"], china(20, 10), "granted"),
                (first, licences["food"], china(18, 10), "granted"),  # its own licence
                (second, licences["food"], china(18, 10), "consent-missing"),  # refused
            ]
        ):
            session.add(_use(f"use_{n}", user, licence, at, result))

    _scan(services, china(17, 10), licences["monday"], "VALID", 3)
    _scan(services, china(17, 10), None, "FORGED", 1)
    _scan(services, china(17, 10), licences["monday"], "INVALID", 2)
    _scan(services, china(18, 10), licences["second"], "VALID", 2)
    _scan(services, china(18, 10), licences["second"], "UNKNOWN", 2)
    flush_scans(services)
    return Registry(services, first, second, third, licences, envelopes)


def _envelopes(services: Services, first: int, second: int) -> dict[str, str]:
    """Envelopes started in the week: the first department's completed after 1, 3, 5 and 10
    hours, one declined and one open; the second's completed after 2 hours and one expired."""
    with db.transaction(services.sessions) as session:
        seal_id = create_seal(
            session,
            request=SealRequest(department_code=DEMO_DEPARTMENT_CODE, kind=SealKind.OFFICIAL),
            key_store=services.key_store,
            pki=services.pki,
            actor=OPERATOR,
        ).id
        session.add(
            SealedDocument(
                id="doc_overview",
                department_id=first,
                seal_id=seal_id,
                file_name=None,
                level="B-T",
                pdf_sha256="0" * 64,
                signed_digest="0" * 64,
                blob_key="overview",
            )
        )
        session.flush()
        arranged = {
            "one": (first, "completed", china(16, 9), 1),
            "three": (first, "completed", china(17, 9), 3),
            "five": (first, "completed", china(18, 9), 5),
            "ten": (first, "completed", china(19, 9), 10),
            "declined": (first, "declined", china(19, 10), None),
            "open": (first, "open", china(20, 10), None),
            "two": (second, "completed", china(17, 14), 2),
            "expired": (second, "expired", china(18, 14), None),
            "earlier": (first, "completed", china(10, 9), 30),
        }
        for name, (initiator, status, started, hours) in arranged.items():
            session.add(
                Envelope(
                    id=f"env_{name}",
                    title=name,
                    initiator_id=initiator,
                    status=status,
                    steps=1,
                    document_id="doc_overview",
                    certified_document_id="doc_overview",
                    created_at=started,
                    updated_at=started,
                    completed_at=None if hours is None else started + timedelta(hours=hours),
                )
            )
    return {name: f"env_{name}" for name in arranged}


def _use(usage_id: str, user: int, licence: str, at: datetime, result: str) -> UsageRecord:
    return UsageRecord(
        usage_id=usage_id,
        department_id=user,
        client_id="cli_test",
        action="lookup",
        certificate_id=licence,
        identifier=f"id-{usage_id}",
        use_cause="审批",
        matter="企业开办",
        result=result,
        salt="00" * 16,
        created_at=at,
    )


def _points(series: Series, *keys: str) -> list[tuple[object, ...]]:
    return [tuple(getattr(p, k) for k in keys) for p in series.points]


# --- the figures -------------------------------------------------------------------------------


def test_issued_per_day_counts_china_days_by_department_and_type(registry: Registry) -> None:
    series = issued_per_day(registry.services, WEEK)
    first, second = registry.first, registry.second
    assert sorted(_points(series, "x", "department_id", "type_code", "y")) == [
        ("2026-11-16", first, "business_licence", 2),
        ("2026-11-17", first, "food_business_permit", 1),
        ("2026-11-17", second, "business_licence", 1),
    ]
    with registry.services.sessions() as session:
        department = session.get(Department, second)
        licence_type = session.get(CertificateType, "business_licence")
        assert department is not None
        assert licence_type is not None
        label = f"{department.name} · {licence_type.name}"
    assert [p.label for p in series.points if p.department_id == second] == [label]


def test_issued_per_week_counts_iso_weeks_from_monday(registry: Registry) -> None:
    three_weeks = Period(since=date(2026, 11, 9), until=date(2026, 11, 30))
    series = issued_per_week(registry.services, three_weeks)
    first, second = registry.first, registry.second
    assert sorted(_points(series, "x", "day", "department_id", "type_code", "y")) == [
        ("2026-W46", date(2026, 11, 9), first, "business_licence", 1),
        ("2026-W47", date(2026, 11, 16), first, "business_licence", 2),
        ("2026-W47", date(2026, 11, 16), first, "food_business_permit", 1),
        ("2026-W47", date(2026, 11, 16), second, "business_licence", 1),
        ("2026-W48", date(2026, 11, 23), second, "business_licence", 1),
    ]


def test_issuance_for_one_department_counts_only_its_own(registry: Registry) -> None:
    series = issued_per_day(registry.services, WEEK, department_id=registry.second)
    assert _points(series, "x", "department_id", "y") == [("2026-11-17", registry.second, 1)]


def test_revocations_and_suspensions_are_counted_per_day_and_reason(registry: Registry) -> None:
    series = status_changes_per_day(registry.services, WEEK)
    assert _points(series, "x", "status", "reason", "y") == [
        ("2026-11-18", "revoked", "吊销：虚假材料", 2),
        ("2026-11-18", "suspended", "暂停使用：核查中", 1),
        # 07:00 in China is still the 18th in UTC: counted on the China day.
        ("2026-11-19", "revoked", "注销", 1),
    ]
    mine = status_changes_per_day(registry.services, WEEK, department_id=registry.second)
    assert _points(mine, "x", "status", "reason", "y") == [("2026-11-19", "revoked", "注销", 1)]


def test_envelopes_are_counted_by_status_and_initiator(registry: Registry) -> None:
    series = envelopes_by_status(registry.services, WEEK)
    first, second = registry.first, registry.second
    assert sorted(_points(series, "department_id", "status", "y")) == sorted(
        [
            (first, "completed", 4),
            (first, "declined", 1),
            (first, "open", 1),
            (second, "completed", 1),
            (second, "expired", 1),
        ]
    )
    mine = envelopes_by_status(registry.services, WEEK, department_id=second)
    assert sorted(_points(mine, "department_id", "status", "y")) == [
        (second, "completed", 1),
        (second, "expired", 1),
    ]


def test_completion_times_give_the_median_and_the_90th_percentile(registry: Registry) -> None:
    # The first department's durations are 1, 3, 5 and 10 hours: the median lies halfway
    # between 3 and 5, the 90th percentile 0.7 of the way from 5 to 10 (8.5 hours). The
    # envelope completed the week before counts for none.
    series = completion_times(registry.services, WEEK)
    hour = 3600.0
    assert sorted(_points(series, "department_id", "label", "y")) == sorted(
        [
            (registry.first, "median", 4 * hour),
            (registry.first, "p90", 8.5 * hour),
            (registry.second, "median", 2 * hour),
            (registry.second, "p90", 2 * hour),
        ]
    )
    mine = completion_times(registry.services, WEEK, department_id=registry.second)
    assert _points(mine, "department_id", "label", "y") == [
        (registry.second, "median", 2 * hour),
        (registry.second, "p90", 2 * hour),
    ]


def test_uses_by_other_departments_count_granted_uses_per_day_and_pair(
    registry: Registry,
) -> None:
    first, second, third = registry.first, registry.second, registry.third
    series = uses_by_other_departments(registry.services, WEEK)
    assert _points(series, "x", "department_id", "other_department_id", "y") == [
        ("2026-11-18", second, first, 2),
        ("2026-11-19", first, second, 1),
        ("2026-11-20", third, second, 1),
    ]
    # The first department sees the uses of its licences and its uses of others', not the
    # third's use of the second's licence.
    mine = uses_by_other_departments(registry.services, WEEK, department_id=first)
    assert _points(mine, "x", "department_id", "other_department_id", "y") == [
        ("2026-11-18", second, first, 2),
        ("2026-11-19", first, second, 1),
    ]


def test_scans_per_day_give_the_share_of_forged_and_unknown_answers(registry: Registry) -> None:
    series = scans_per_day(registry.services, WEEK)
    assert _points(series, "x", "label", "y") == [
        ("2026-11-17", "failed-share", 0.25),
        ("2026-11-17", "forged-or-unknown", 1),
        ("2026-11-17", "scans", 4),
        ("2026-11-18", "failed-share", 0.5),
        ("2026-11-18", "forged-or-unknown", 2),
        ("2026-11-18", "scans", 4),
    ]
    # A forged code belongs to no department.
    mine = scans_per_day(registry.services, WEEK, department_id=registry.first)
    assert _points(mine, "x", "label", "y") == [
        ("2026-11-17", "failed-share", 0.0),
        ("2026-11-17", "forged-or-unknown", 0),
        ("2026-11-17", "scans", 3),
    ]


def test_a_period_ends_after_it_begins() -> None:
    with pytest.raises(ValueError, match="ends after it begins"):
        Period(since=date(2026, 11, 16), until=date(2026, 11, 16))


# --- the drill-downs ---------------------------------------------------------------------------


def test_the_certificates_of_a_day_are_paged_oldest_first(registry: Registry) -> None:
    monday = Period.day(date(2026, 11, 16))
    first, business = registry.first, "business_licence"
    page = issued_certificates(
        registry.services, monday, issuer_id=first, type_code=business, limit=1
    )
    assert [c.id for c in page.items] == [registry.licences["midnight"]]
    assert page.next_after == registry.licences["midnight"]
    rest = issued_certificates(
        registry.services,
        monday,
        issuer_id=first,
        type_code=business,
        limit=1,
        after=page.next_after,
    )
    assert [c.id for c in rest.items] == [registry.licences["monday"]]
    assert rest.next_after is None
    week = issued_certificates(
        registry.services, Period.week(date(2026, 11, 16)), issuer_id=first, type_code=business
    )
    assert [c.id for c in week.items] == [
        registry.licences["midnight"],
        registry.licences["monday"],
    ]


def test_a_cursor_from_another_point_is_not_found(registry: Registry) -> None:
    with pytest.raises(NotFoundError, match="no record"):
        issued_certificates(
            registry.services,
            Period.day(date(2026, 11, 16)),
            issuer_id=registry.first,
            type_code="business_licence",
            after=registry.licences["second"],
        )


def test_a_department_admin_does_not_see_another_departments_records(
    registry: Registry,
) -> None:
    services, first, second = registry.services, registry.first, registry.second
    with pytest.raises(NotFoundError):
        issued_certificates(
            services,
            Period.day(date(2026, 11, 16)),
            issuer_id=first,
            type_code="business_licence",
            department_id=second,
        )
    with pytest.raises(NotFoundError):
        envelopes_of_status(
            services, WEEK, initiator_id=first, status="completed", department_id=second
        )
    with pytest.raises(NotFoundError):
        completed_envelopes(services, WEEK, initiator_id=first, department_id=second)
    with pytest.raises(NotFoundError):
        uses_of_pair(services, WEEK, user_id=second, issuer_id=first, department_id=registry.third)
    revoked = status_changes(
        services,
        Period.day(date(2026, 11, 18)),
        status="revoked",
        reason="吊销：虚假材料",
        department_id=second,
    )
    assert revoked.items == ()
    assert scans_of_day(services, date(2026, 11, 18), department_id=first).items == ()


def test_the_status_changes_of_a_day_and_reason(registry: Registry) -> None:
    page = status_changes(
        registry.services,
        Period.day(date(2026, 11, 18)),
        status="revoked",
        reason="吊销：虚假材料",
        limit=1,
    )
    assert [(c.certificate_id, c.department_id) for c in page.items] == [
        (registry.licences["monday"], registry.first)
    ]
    assert page.next_after is not None
    rest = status_changes(
        registry.services,
        Period.day(date(2026, 11, 18)),
        status="revoked",
        reason="吊销：虚假材料",
        after=page.next_after,
    )
    assert [c.certificate_id for c in rest.items] == [registry.licences["midnight"]]
    assert rest.next_after is None


def test_the_envelopes_of_a_status_and_of_completion_times(registry: Registry) -> None:
    completed = envelopes_of_status(
        registry.services, WEEK, initiator_id=registry.first, status="completed"
    )
    assert [e.id for e in completed.items] == [
        registry.envelopes[n] for n in ("one", "three", "five", "ten")
    ]
    declined = envelopes_of_status(
        registry.services, WEEK, initiator_id=registry.first, status="declined"
    )
    assert [e.id for e in declined.items] == [registry.envelopes["declined"]]
    done = completed_envelopes(registry.services, WEEK, initiator_id=registry.second)
    [two] = done.items
    assert two.id == registry.envelopes["two"]
    assert two.completed_at is not None
    assert two.completed_at - two.created_at == timedelta(hours=2)


def test_the_uses_of_a_pair(registry: Registry) -> None:
    page = uses_of_pair(
        registry.services, WEEK, user_id=registry.second, issuer_id=registry.first, limit=1
    )
    assert [u.usage_id for u in page.items] == ["use_0"]
    assert page.next_after == "use_0"
    rest = uses_of_pair(
        registry.services,
        WEEK,
        user_id=registry.second,
        issuer_id=registry.first,
        after=page.next_after,
    )
    assert [(u.usage_id, u.certificate_id) for u in rest.items] == [
        ("use_1", registry.licences["midnight"])
    ]
    # The first department may read the uses of its own licences.
    assert (
        uses_of_pair(
            registry.services,
            WEEK,
            user_id=registry.second,
            issuer_id=registry.first,
            department_id=registry.first,
        ).items
        == page.items + rest.items
    )


def test_the_scans_of_a_day(registry: Registry) -> None:
    second = registry.licences["second"]
    page = scans_of_day(registry.services, date(2026, 11, 18), limit=1)
    assert [(s.subject, s.verdict, s.count) for s in page.items] == [(second, "UNKNOWN", 2)]
    rest = scans_of_day(registry.services, date(2026, 11, 18), after=page.next_after)
    assert [(s.subject, s.verdict, s.count) for s in rest.items] == [(second, "VALID", 2)]
    failed = scans_of_day(registry.services, date(2026, 11, 17), failed_only=True)
    assert [(s.subject, s.verdict, s.count) for s in failed.items] == [("", "FORGED", 1)]


# --- the indexes -------------------------------------------------------------------------------

INDEXES = {"ix_status_events_time", "ix_usage_records_time", "ix_envelopes_completed"}


def test_migration_0022_adds_the_overviews_indexes_and_matches_the_models(
    initialised: Services,
) -> None:
    def indexes() -> set[str]:
        with initialised.engine.connect() as connection:
            found = inspect(connection)
            return {
                index["name"] or ""
                for table in ("status_events", "usage_records", "envelopes")
                for index in found.get_indexes(table)
            } & INDEXES

    config = db.alembic_config(initialised.engine)
    command.downgrade(config, "0021")
    assert indexes() == set()
    command.upgrade(config, "head")
    assert indexes() == INDEXES

    def overview_only(obj: object, name: str | None, kind: str, *_: object) -> bool:
        return kind == "index" and name in INDEXES

    with initialised.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": overview_only}
        )
        assert compare_metadata(context, Base.metadata) == []
