"""The holder's consents as use cases: given, listed, withdrawn; the 亮证码 kept as a digest
only, expiring and replaced; every bad input refused by name and pointer, nothing written;
the holder read from its code; the holder's usage records and no one else's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from econtract import db
from econtract.clock import FixedClock
from econtract.departments import add_department, get_department
from econtract.errors import InvalidInputError, NotFoundError
from econtract.models import AuditEvent, Consent, OutboxEvent
from econtract.services import Services
from econtract.sharing import (
    ConsentAlreadyWithdrawnError,
    ConsentNotActiveError,
    ConsentRequest,
    ConsentStatus,
    GivenConsent,
    HolderType,
    NoGrantForConsentError,
    UnknownDepartmentError,
    UseContext,
    add_grant,
    get_consent,
    give_consent,
    holder_usage,
    list_consents,
    read_holder,
    record_use,
    renew_show_code,
    show_code_digest,
    withdraw_consent,
)
from tests.factories import OPERATOR
from tests.licences import fresh_credit_code

USER = "9133100015J1YG617W"
"""The using department of these tests (a construction bureau)."""
MATTER = "建筑工程施工许可"
PERSON = "11010519491231002X"
"""A resident identity number with the right check character."""
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
APP = "client_holder_app"


def add_using_department(services: Services) -> Services:
    """Register the using department :data:`USER` with grants of business licences (consent
    required) and food business permits for :data:`MATTER`; ``services`` back."""
    with db.transaction(services.sessions) as session:
        add_department(session, code=USER, name="台州市建设局", region=None, actor=OPERATOR)
        for type_code in ("business_licence", "food_business_permit"):
            add_grant(
                session,
                department_code=USER,
                type_code=type_code,
                matters=[MATTER],
                requires_consent=True,
                actor=OPERATOR,
                clock=services.clock,
            )
    return services


@pytest.fixture
def user(initialised: Services) -> Services:
    """The registry with :func:`add_using_department`, on a clock pinned at :data:`NOW`."""
    initialised.clock = FixedClock(NOW)
    return add_using_department(initialised)


def consent_request(**changes: object) -> ConsentRequest:
    """A consent of the holder's business licences to :data:`USER` for :data:`MATTER`."""
    values: dict[str, object] = {
        "department": USER,
        "type_code": "business_licence",
        "certificate": None,
        "matter": MATTER,
        "case_number": None,
        "valid_until": NOW + timedelta(days=30),
        "show_code": True,
    }
    values.update(changes)
    return ConsentRequest(**values)  # type: ignore[arg-type]


def give(services: Services, holder: tuple[str, HolderType], **changes: object) -> GivenConsent:
    """The consent of :func:`consent_request` with ``changes``, given by ``holder``."""
    return give_consent(
        services, holder=holder, request=consent_request(**changes), client_id=APP, actor=OPERATOR
    )


def enterprise() -> tuple[str, HolderType]:
    """A holder of its own: an enterprise with a fresh credit code."""
    return fresh_credit_code(), HolderType.CREDIT_CODE


def consents_rows(services: Services) -> int:
    with services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Consent)) or 0)


def test_a_consent_is_given_listed_withdrawn_and_then_shows_withdrawn(user: Services) -> None:
    holder = enterprise()
    given = give(user, holder, case_number=" 330000-2026-0001 ")
    consent = given.consent
    assert consent.id.startswith("cns_")
    assert (consent.holder, consent.holder_type) == (holder[0], "001")
    assert (consent.department_code, consent.department_name) == (USER, "台州市建设局")
    assert (consent.type, consent.certificate_id, consent.matter) == (
        "business_licence",
        None,
        MATTER,
    )
    assert consent.case_number == "330000-2026-0001"
    assert consent.status is ConsentStatus.ACTIVE
    assert [c.id for c in list_consents(user, holder=holder)] == [consent.id]

    withdrawn = withdraw_consent(user, holder=holder, consent_id=consent.id, actor=OPERATOR)
    assert withdrawn.status is ConsentStatus.WITHDRAWN
    assert withdrawn.withdrawn_at == NOW
    assert get_consent(user, holder=holder, consent_id=consent.id).status is (
        ConsentStatus.WITHDRAWN
    )


def test_a_consent_past_its_end_reads_expired(user: Services) -> None:
    holder = enterprise()
    consent = give(user, holder, valid_until=NOW + timedelta(hours=1)).consent
    user.clock = FixedClock(NOW + timedelta(hours=1))
    assert get_consent(user, holder=holder, consent_id=consent.id).status is ConsentStatus.EXPIRED


def test_withdrawing_twice_is_a_conflict_that_says_when(user: Services) -> None:
    holder = enterprise()
    consent = give(user, holder).consent
    withdraw_consent(user, holder=holder, consent_id=consent.id, actor=OPERATOR)
    with pytest.raises(ConsentAlreadyWithdrawnError, match="already withdrawn at 2026-03-02"):
        withdraw_consent(user, holder=holder, consent_id=consent.id, actor=OPERATOR)


def test_the_show_code_is_stored_only_as_its_digest(user: Services) -> None:
    given = give(user, enterprise())
    assert given.show_code is not None
    code = given.show_code.code
    with user.sessions() as session:
        rows = session.execute(text("SELECT * FROM consents")).all()
        stored = session.get(Consent, given.consent.id)
        assert stored is not None
        assert stored.show_code_sha256 == show_code_digest(code)
    dumped = repr(rows)
    assert code not in dumped
    assert code.replace("-", "") not in dumped


def test_the_show_code_expires_show_code_seconds_after_it_was_made(user: Services) -> None:
    given = give(user, enterprise())
    assert given.show_code is not None
    expected = NOW + timedelta(seconds=user.settings.show_code_seconds)
    assert given.show_code.expires_at == expected
    with user.sessions() as session:
        stored = session.get(Consent, given.consent.id)
        assert stored is not None
        assert stored.show_code_expires_at == expected


def test_a_consent_without_a_show_code_stores_no_digest(user: Services) -> None:
    given = give(user, enterprise(), show_code=False)
    assert given.show_code is None
    with user.sessions() as session:
        stored = session.get(Consent, given.consent.id)
        assert stored is not None
        assert stored.show_code_sha256 is None


def test_a_fresh_show_code_replaces_the_old_digest(user: Services) -> None:
    holder = enterprise()
    given = give(user, holder)
    assert given.show_code is not None
    user.clock = FixedClock(NOW + timedelta(minutes=10))
    fresh = renew_show_code(user, holder=holder, consent_id=given.consent.id, actor=OPERATOR)
    assert fresh.show_code is not None
    assert fresh.show_code.code != given.show_code.code
    assert fresh.show_code.expires_at == NOW + timedelta(
        minutes=10, seconds=user.settings.show_code_seconds
    )
    with user.sessions() as session:
        old = session.scalar(
            select(Consent).where(
                Consent.show_code_sha256 == show_code_digest(given.show_code.code)
            )
        )
        new = session.scalar(
            select(Consent).where(
                Consent.show_code_sha256 == show_code_digest(fresh.show_code.code)
            )
        )
    assert old is None
    assert new is not None
    assert new.id == given.consent.id


def test_a_withdrawn_consent_takes_no_fresh_show_code(user: Services) -> None:
    holder = enterprise()
    consent = give(user, holder).consent
    withdraw_consent(user, holder=holder, consent_id=consent.id, actor=OPERATOR)
    with pytest.raises(ConsentNotActiveError, match="is withdrawn"):
        renew_show_code(user, holder=holder, consent_id=consent.id, actor=OPERATOR)


def test_an_expired_consent_takes_no_fresh_show_code(user: Services) -> None:
    holder = enterprise()
    consent = give(user, holder, valid_until=NOW + timedelta(hours=1)).consent
    user.clock = FixedClock(NOW + timedelta(hours=2))
    with pytest.raises(ConsentNotActiveError, match="is expired"):
        renew_show_code(user, holder=holder, consent_id=consent.id, actor=OPERATOR)


def test_another_holders_consent_is_not_found(user: Services) -> None:
    consent = give(user, enterprise()).consent
    other = enterprise()
    with pytest.raises(NotFoundError):
        get_consent(user, holder=other, consent_id=consent.id)
    with pytest.raises(NotFoundError):
        withdraw_consent(user, holder=other, consent_id=consent.id, actor=OPERATOR)
    with pytest.raises(NotFoundError):
        renew_show_code(user, holder=other, consent_id=consent.id, actor=OPERATOR)
    assert list_consents(user, holder=other) == []


def test_giving_a_consent_is_audited_and_its_outbox_payload_names_no_holder(
    user: Services,
) -> None:
    holder = (PERSON, HolderType.CITIZEN_ID)
    consent = give(user, holder, type_code="food_business_permit").consent
    with user.sessions() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.target_id == consent.id)).one()
        outbox = session.scalars(
            select(OutboxEvent).where(OutboxEvent.subject_id == consent.id)
        ).one()
    assert (event.action, event.target_type) == ("consent.give", "consent")
    assert event.detail["holder"] != PERSON
    assert event.detail["holder"] == "110***********002X"
    assert outbox.type == "consent.given"
    assert outbox.payload == {
        "consent_id": consent.id,
        "department": USER,
        "type": "food_business_permit",
        "certificate_id": None,
        "valid_until": "2026-04-01T08:00:00Z",
    }
    assert PERSON not in repr(outbox.payload)
    assert PERSON not in repr(event.detail)


@pytest.mark.parametrize(
    ("changes", "error", "pointer"),
    [
        ({"matter": "事" * 201}, InvalidInputError, "/matter"),
        ({"matter": "  "}, InvalidInputError, "/matter"),
        ({"case_number": "9" * 65}, InvalidInputError, "/case_number"),
        ({"valid_until": NOW - timedelta(seconds=1)}, InvalidInputError, "/valid_until"),
        ({"valid_until": NOW}, InvalidInputError, "/valid_until"),
        ({"valid_until": NOW + timedelta(days=367)}, InvalidInputError, "/valid_until"),
        ({"valid_until": datetime(2026, 4, 1, 8, 0)}, InvalidInputError, "/valid_until"),
        ({"certificate": "cert_x"}, InvalidInputError, "/type"),
        ({"type_code": None}, InvalidInputError, "/type"),
        ({"type_code": "fishing_licence"}, InvalidInputError, "/type"),
        ({"department": "91330100MA27XYZ123"}, UnknownDepartmentError, "/department"),
        ({"type_code": "construction_permit"}, NoGrantForConsentError, "/matter"),
        ({"matter": "施工图审查"}, NoGrantForConsentError, "/matter"),
    ],
)
def test_a_bad_consent_is_refused_by_pointer_and_nothing_is_written(
    user: Services, changes: dict[str, object], error: type[InvalidInputError], pointer: str
) -> None:
    with pytest.raises(error) as refused:
        give(user, enterprise(), **changes)
    assert type(refused.value) is error
    assert refused.value.errors[0][0] == pointer
    assert consents_rows(user) == 0


def test_a_missing_grant_names_the_department_and_the_matters_it_may_use(user: Services) -> None:
    with pytest.raises(NoGrantForConsentError, match=f"{USER}.*{MATTER}.*施工图审查"):
        give(user, enterprise(), matter="施工图审查")


def test_a_consent_lasts_at_most_consent_max_days(user: Services) -> None:
    days = user.settings.consent_max_days
    consent = give(user, enterprise(), valid_until=NOW + timedelta(days=days)).consent
    assert consent.valid_until == NOW + timedelta(days=days)


def test_the_holder_type_is_read_from_the_code() -> None:
    code = fresh_credit_code()
    assert read_holder(code.lower()) == (code, HolderType.CREDIT_CODE)
    assert read_holder(PERSON.lower()) == (PERSON, HolderType.CITIZEN_ID)
    assert read_holder(PERSON, "111") == (PERSON, HolderType.CITIZEN_ID)


@pytest.mark.parametrize(
    ("code", "holder_type", "pointer"),
    [
        ("110105194912310021", None, "/holder_code"),
        ("91330100MA27XYZ12", None, "/holder_code"),
        (PERSON, "001", "/holder_code"),
        (PERSON, "999", "/holder_type"),
    ],
)
def test_a_holder_code_of_neither_kind_is_refused_without_echoing_it(
    code: str, holder_type: str | None, pointer: str
) -> None:
    with pytest.raises(InvalidInputError) as refused:
        read_holder(code, holder_type)
    assert refused.value.errors[0][0] == pointer
    assert code not in refused.value.message


def record_uses(services: Services, uses: list[tuple[tuple[str, HolderType], str, str]]) -> None:
    """Write, as the using department :data:`USER` would, one usage record per ``(holder,
    action, result)``, in this order, for :data:`MATTER` and case ``C-9``."""
    with services.sessions() as session:
        department_id = get_department(session, USER).id
    context = UseContext.create(
        department_id=department_id,
        department_code=USER,
        client_id="client_user",
        use_cause="审核施工许可申请",
        matter=MATTER,
        case_number="C-9",
    )
    with db.transaction(services.sessions) as session:
        for holder, action, result in uses:
            record_use(
                session, context, action=action, result=result, clock=services.clock, holder=holder
            )


def test_the_holders_usage_lists_that_holders_records_only_newest_first(user: Services) -> None:
    holder, other = enterprise(), enterprise()
    record_uses(
        user,
        [(holder, "lookup", "granted"), (other, "lookup", "granted"), (holder, "check", "granted")],
    )
    with user.sessions() as session:
        mine = holder_usage(session, holder)
        first_page = holder_usage(session, holder, limit=1)
        second_page = holder_usage(session, holder, after=first_page[-1].row, limit=1)
    assert [u.action for u in mine] == ["check", "lookup"]
    assert {(u.department_code, u.department_name, u.matter) for u in mine} == {
        (USER, "台州市建设局", MATTER)
    }
    assert [u.usage_id for u in first_page + second_page] == [u.usage_id for u in mine]
