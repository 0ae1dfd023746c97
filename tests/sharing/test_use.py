"""The using department's calls as use cases: what a lookup, a check and a scan answer, what
refuses them, and that every call, refused ones too, leaves its usage records and log
entries, which name no holder."""

from __future__ import annotations

import base64
import hashlib
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import select

from econtract.errors import InvalidInputError, NotFoundError
from econtract.models import Certificate, Consent, Department, UsageRecord
from econtract.services import Services
from econtract.sharing import (
    ConsentExpiredError,
    ConsentMismatchError,
    ConsentRequiredError,
    HolderType,
    NoGrantError,
    ShowCodeDepartmentError,
    ShowCodeExpiredError,
    ShowCodeUnknownError,
    ShowCodeUsedError,
    UseContext,
    certificate_usage,
    check_licence,
    lookup_licences,
    new_show_code,
    scan_show_code,
    usage_export,
)
from econtract.translog import LogEntry, canonical_json
from tests.licences import issue_example
from tests.sharing.consents import MATTER, OTHER_USER, USER, add_user, grant, insert_consent


def context(services: Services, department: str = USER, matter: str = MATTER) -> UseContext:
    with services.sessions() as session:
        user = session.scalars(select(Department).where(Department.code == department)).one()
    return UseContext.create(
        department_id=user.id,
        department_code=department,
        client_id="approval-system",
        use_cause="核验申请人证照",
        matter=matter,
        case_number="330100-2026-000123",
    )


def holder_of(certificate: Certificate) -> tuple[str, HolderType]:
    code, kind = certificate.national_holder_code, certificate.national_holder_type
    assert code is not None
    assert kind is not None
    return code, HolderType(kind)


def records(services: Services) -> list[UsageRecord]:
    with services.sessions() as session:
        return list(session.scalars(select(UsageRecord).order_by(UsageRecord.id)))


@pytest.fixture
def user(initialised: Services) -> Services:
    """The registry with a using department (no grants yet)."""
    add_user(initialised)
    return initialised


@pytest.fixture
def licence(user: Services) -> Certificate:
    return issue_example(user)


def test_a_granted_lookup_gives_the_holders_licence_whole_and_records_it(
    user: Services, licence: Certificate
) -> None:
    grant(user)
    result = lookup_licences(user, context(user), holder=holder_of(licence))
    assert [item.id for item in result.licences] == [licence.id]
    found = result.licences[0]
    assert found.holder_code == licence.national_holder_code
    assert found.status == "valid"
    assert found.metadata.identifier == licence.identifier
    assert found.metadata.holder_code == licence.national_holder_code
    [record] = records(user)
    assert (record.action, record.result, record.certificate_id) == (
        "lookup",
        "granted",
        licence.id,
    )
    assert record.case_number == "330100-2026-000123"


def test_a_lookup_that_finds_nothing_is_recorded_not_found(
    user: Services, licence: Certificate
) -> None:
    grant(user, "food_business_permit")
    result = lookup_licences(user, context(user), holder=holder_of(licence))
    assert result.licences == ()
    assert [r.result for r in records(user)] == ["not-found"]


def test_a_lookup_without_a_grant_is_refused_no_grant_and_recorded(
    user: Services, licence: Certificate
) -> None:
    with pytest.raises(NoGrantError, match="business_licence"):
        lookup_licences(
            user, context(user), holder=holder_of(licence), type_code="business_licence"
        )
    [record] = records(user)
    assert record.result == "no-grant"
    assert record.holder_code == licence.national_holder_code


def test_a_lookup_for_a_matter_the_grant_does_not_list_is_refused(
    user: Services, licence: Certificate
) -> None:
    grant(user)
    with pytest.raises(NoGrantError, match="施工图审查"):
        lookup_licences(user, context(user, matter="施工图审查"), holder=holder_of(licence))


def test_a_lookup_without_type_leaves_out_types_that_need_consent_and_says_so(
    user: Services, licence: Certificate
) -> None:
    grant(user, requires_consent=True)
    grant(user, "food_business_permit")
    result = lookup_licences(user, context(user), holder=holder_of(licence))
    assert result.licences == ()
    assert [(o.type_code, o.reason) for o in result.omitted] == [
        ("business_licence", "consent-required")
    ]


def test_a_type_that_needs_consent_is_refused_without_one(
    user: Services, licence: Certificate
) -> None:
    grant(user, requires_consent=True)
    with pytest.raises(ConsentRequiredError):
        lookup_licences(
            user, context(user), holder=holder_of(licence), type_code="business_licence"
        )
    assert [r.result for r in records(user)] == ["consent-required"]


def test_a_consent_opens_the_consented_licence(user: Services, licence: Certificate) -> None:
    grant(user, requires_consent=True)
    consent_id, _ = insert_consent(user, licence)
    result = lookup_licences(user, context(user), holder=holder_of(licence), consent_id=consent_id)
    assert [item.id for item in result.licences] == [licence.id]
    assert result.consent_id == consent_id
    assert [r.consent_id for r in records(user)] == [consent_id]


def test_an_expired_consent_is_refused_consent_expired(
    user: Services, licence: Certificate
) -> None:
    grant(user, requires_consent=True)
    consent_id, _ = insert_consent(user, licence, valid_for=timedelta(seconds=-1))
    with pytest.raises(ConsentExpiredError):
        lookup_licences(user, context(user), holder=holder_of(licence), consent_id=consent_id)
    assert [r.result for r in records(user)] == ["consent-expired"]


def test_another_departments_consent_is_refused(user: Services, licence: Certificate) -> None:
    add_user(user, OTHER_USER, "杭州市市场监管局")
    grant(user, requires_consent=True)
    consent_id, _ = insert_consent(user, licence, department=OTHER_USER)
    with pytest.raises(ConsentMismatchError, match="not given to department"):
        lookup_licences(user, context(user), holder=holder_of(licence), consent_id=consent_id)


def test_the_log_entries_of_uses_name_no_holder_and_commit_to_the_record(
    user: Services, licence: Certificate
) -> None:
    grant(user)
    lookup_licences(user, context(user), holder=holder_of(licence))
    with pytest.raises(NoGrantError):
        lookup_licences(user, context(user), holder=holder_of(licence), type_code="xx")
    with user.sessions() as session:
        exported = usage_export(session, department_id=context(user).department_id)
    assert [r["result"] for r in exported] == ["granted", "no-grant"]
    assert licence.national_holder_code is not None
    for item in exported:
        entry = base64.b64decode(item["log_entry"]["entry"])
        assert licence.national_holder_code.encode() not in entry
        assert "核验".encode() not in entry
        body = {k: v for k, v in item.items() if k not in ("usage_digest", "log_entry")}
        digest = hashlib.sha256(canonical_json(body)).hexdigest()
        assert digest == item["usage_digest"]
        assert LogEntry.from_bytes(entry).record_sha256 == digest


def test_a_check_with_the_exact_fields_matches_and_gives_only_the_status(
    user: Services, licence: Certificate
) -> None:
    grant(user)
    result = check_licence(
        user, context(user), type_code="business_licence", fields=dict(licence.fields)
    )
    assert result.match
    assert result.identifier == licence.identifier
    assert (result.status, result.national_status) == ("valid", "01")
    assert [r.result for r in records(user)] == ["granted"]


def test_a_check_with_one_field_changed_does_not_match_and_says_nothing_more(
    user: Services, licence: Certificate
) -> None:
    grant(user)
    fields = dict(licence.fields)
    fields["address"] = str(fields["address"]) + "1号"
    result = check_licence(user, context(user), type_code="business_licence", fields=fields)
    assert (result.match, result.identifier, result.status) == (False, None, None)
    assert [r.result for r in records(user)] == ["not-found"]


def test_a_check_needs_a_grant_but_no_consent(user: Services, licence: Certificate) -> None:
    with pytest.raises(NoGrantError):
        check_licence(
            user, context(user), type_code="business_licence", fields=dict(licence.fields)
        )
    grant(user, requires_consent=True)
    assert check_licence(
        user, context(user), type_code="business_licence", fields=dict(licence.fields)
    ).match


def test_a_check_of_a_type_without_holder_code_needs_the_number(user: Services) -> None:
    permit = issue_example(user, "construction_permit")
    grant(user, "construction_permit")
    with pytest.raises(InvalidInputError, match="number") as refused:
        check_licence(
            user, context(user), type_code="construction_permit", fields=dict(permit.fields)
        )
    assert refused.value.errors == [("/number", "needed to find the licence")]
    result = check_licence(
        user,
        context(user),
        type_code="construction_permit",
        fields=dict(permit.fields),
        number=permit.number,
    )
    assert result.match
    assert result.identifier == permit.identifier


def test_a_scan_takes_the_consent_once(user: Services, licence: Certificate) -> None:
    grant(user, requires_consent=True)
    consent_id, code = insert_consent(user, licence, show_code_for=timedelta(minutes=5))
    assert code is not None
    result = scan_show_code(user, context(user), code=code.lower().replace("-", ""))
    assert [item.id for item in result.licences] == [licence.id]
    assert result.consent_id == consent_id
    with pytest.raises(ShowCodeUsedError):
        scan_show_code(user, context(user), code=code)
    assert [(r.action, r.result) for r in records(user)] == [
        ("scan", "granted"),
        ("scan", "show-code-used"),
    ]


def test_two_concurrent_scans_of_one_code_cannot_both_win(
    user: Services, licence: Certificate
) -> None:
    grant(user, requires_consent=True)
    _, code = insert_consent(user, licence, show_code_for=timedelta(minutes=5))
    assert code is not None
    ctx = context(user)

    def scan() -> str:
        try:
            scan_show_code(user, ctx, code=code)
        except ShowCodeUsedError as exc:
            return exc.code
        return "granted"

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(lambda _: scan(), range(2)))
    assert outcomes == ["granted", "show-code-used"]


def test_an_expired_show_code_is_refused(user: Services, licence: Certificate) -> None:
    grant(user, requires_consent=True)
    _, code = insert_consent(user, licence, show_code_for=timedelta(seconds=-1))
    assert code is not None
    with pytest.raises(ShowCodeExpiredError):
        scan_show_code(user, context(user), code=code)
    with user.sessions() as session:
        assert session.scalars(select(Consent.show_code_used_at)).one() is None


def test_another_departments_show_code_is_refused(user: Services, licence: Certificate) -> None:
    add_user(user, OTHER_USER, "杭州市市场监管局")
    grant(user, requires_consent=True)
    _, code = insert_consent(
        user, licence, department=OTHER_USER, show_code_for=timedelta(minutes=5)
    )
    assert code is not None
    with pytest.raises(ShowCodeDepartmentError):
        scan_show_code(user, context(user), code=code)
    assert [r.result for r in records(user)] == ["show-code-other-department"]


def test_an_unknown_show_code_is_not_found_and_recorded(user: Services) -> None:
    with pytest.raises(ShowCodeUnknownError):
        scan_show_code(user, context(user), code=new_show_code())
    assert [r.result for r in records(user)] == ["show-code-unknown"]


def test_a_malformed_show_code_is_invalid_input(user: Services) -> None:
    with pytest.raises(InvalidInputError) as refused:
        scan_show_code(user, context(user), code="ILOU-0000-0000")
    assert refused.value.errors == [("/code", "not a 亮证码")]


def test_the_issuer_lists_the_uses_of_its_licence_and_no_other_departments(
    user: Services, licence: Certificate
) -> None:
    grant(user)
    for _ in range(3):
        lookup_licences(user, context(user), holder=holder_of(licence))
    with user.sessions() as session:
        first = certificate_usage(
            session, certificate_id=licence.id, department_id=licence.department_id, limit=2
        )
        rest = certificate_usage(
            session,
            certificate_id=licence.id,
            department_id=licence.department_id,
            after=first[-1].cursor,
        )
        assert [v.department_code for v in first + rest] == [USER] * 3
        assert len({v.usage_id for v in first + rest}) == 3
        assert first[0].cursor > first[1].cursor > rest[0].cursor
        with pytest.raises(NotFoundError):
            certificate_usage(
                session, certificate_id=licence.id, department_id=context(user).department_id
            )
