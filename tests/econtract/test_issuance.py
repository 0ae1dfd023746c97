"""Issuance: a number claimed, a licence sealed and registered; numbers never handed out twice."""

from __future__ import annotations

import io
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.dss import DocumentSecurityStore
from sqlalchemy import func, select

import econtract.dual_seal
from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.certificates import change_status, supersede
from econtract.clock import CHINA, FixedClock
from econtract.errors import ConflictError, InvalidInputError, LicenceExistsError
from econtract.issuance import (
    TEMPLATES,
    EffectiveStatus,
    IdempotencyKey,
    IssueRequest,
    effective_status,
    issue_certificate,
    read_qr_token,
    request_hash,
)
from econtract.models import Certificate, IdempotencyRecord, NumberCounter, StatusEvent
from econtract.services import Services
from keys.signer import to_asn1
from tests.factories import OPERATOR
from tests.licences import holder_fields
from tests.sharing.xmp import dublin_core


def example(type_code: str = "business_licence") -> dict[str, Any]:
    """The template's example fields, for a holder of its own."""
    return holder_fields(type_code)


def issue(services: Services, fields: dict[str, Any] | None = None, **kw: Any) -> Certificate:
    request = IssueRequest(
        type_code=kw.pop("type_code", "business_licence"), fields=fields or example(), **kw
    )
    return issue_certificate(
        services, department_code=DEMO_DEPARTMENT_CODE, request=request, actor=OPERATOR
    ).certificate


def pdf_of(services: Services, certificate: Certificate) -> bytes:
    return (services.settings.blob_dir / certificate.blob_key).read_bytes()


def count(services: Services, model: type[Any]) -> int:
    with services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.mark.parametrize("type_code", sorted(TEMPLATES))
def test_issued_licence_is_certified_long_term_and_registered(
    initialised: Services, type_code: str
) -> None:
    certificate = issue(initialised, example(type_code), type_code=type_code)
    assert re.fullmatch(
        rf"{TEMPLATES[type_code].number_prefix}330100\d{{4}}000001", certificate.number
    )
    assert certificate.id.startswith("crt_")
    assert len(certificate.id) >= 26
    pdf = pdf_of(initialised, certificate)
    reader = PdfFileReader(io.BytesIO(pdf))
    [signature] = reader.embedded_regular_signatures
    vc = DocumentSecurityStore.read_dss(reader).as_validation_context(
        {
            "trust_roots": [to_asn1(initialised.pki.root.certificate)],
            "allow_fetching": False,
            "revocation_mode": "hard-fail",
        }
    )
    status = validate_pdf_signature(signature, vc, ts_validation_context=vc)
    assert status.bottom_line
    assert status.docmdp_ok
    assert signature.docmdp_level is not None
    assert signature.compute_digest().hex() == certificate.signed_digest
    with initialised.sessions() as session:
        [event] = session.scalars(
            select(StatusEvent).where(StatusEvent.certificate_id == certificate.id)
        ).all()
    assert event.to_status == "valid"


def test_qr_code_decodes_to_a_token_naming_the_certificate(
    initialised: Services, tmp_path: Path
) -> None:
    certificate = issue(initialised)
    (tmp_path / "licence.pdf").write_bytes(pdf_of(initialised, certificate))
    subprocess.run(
        [
            "pdftoppm",
            "-r",
            "150",
            "-png",
            "-singlefile",
            str(tmp_path / "licence.pdf"),
            str(tmp_path / "page"),
        ],
        check=True,
        timeout=60,
    )
    decoded = subprocess.run(
        ["zbarimg", "--raw", "-q", str(tmp_path / "page.png")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    prefix = "http://127.0.0.1:8000/v/"
    assert decoded.startswith(prefix)
    claims = read_qr_token(initialised.pki.token_signer, decoded[len(prefix) :])
    assert claims.certificate_id == certificate.id
    assert int(claims.issued_at.timestamp()) == int(certificate.issued_at.timestamp())


def test_numbers_are_sequential_per_department_and_type(initialised: Services) -> None:
    numbers = [issue(initialised).number for _ in range(3)]
    assert [n[-6:] for n in numbers] == ["000001", "000002", "000003"]
    other = issue(initialised, example("food_business_permit"), type_code="food_business_permit")
    assert other.number.endswith("000001")


def test_200_parallel_issuances_get_200_distinct_numbers(initialised: Services) -> None:
    issue(initialised)  # warm the process: key, font, seal identity
    with ThreadPoolExecutor(max_workers=8) as pool:
        numbers = list(pool.map(lambda _: issue(initialised).number, range(200)))
    assert len(set(numbers)) == 200
    assert sorted(int(n[-6:]) for n in numbers) == list(range(2, 202))
    assert count(initialised, Certificate) == 201


def test_a_failed_seal_leaves_nothing_issued_and_its_number_void(
    initialised: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = issue(initialised)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("power cut")

    # The engine is called where sealing with or without an SM2 seal is decided.
    monkeypatch.setattr(econtract.dual_seal, "seal_pdf", broken)
    with pytest.raises(RuntimeError, match="power cut"):
        issue(initialised)
    monkeypatch.undo()
    assert count(initialised, Certificate) == 1
    assert not list((initialised.settings.blob_dir / "tmp").iterdir())
    second = issue(initialised)
    # The failed request's number is void, never handed out again.
    assert int(second.number[-6:]) == int(first.number[-6:]) + 2
    with initialised.sessions() as session:
        assert session.scalars(select(NumberCounter.last_value)).one() == 3


def test_invalid_fields_name_every_bad_field(initialised: Services) -> None:
    fields = example() | {"credit_code": "9133010052CL12THX0", "name": "名" * 2000}
    with pytest.raises(InvalidInputError) as raised:
        issue(initialised, fields)
    pointers = {p for p, _ in raised.value.errors}
    assert {"/fields/credit_code", "/fields/name"} <= pointers
    assert count(initialised, Certificate) == 0


def test_right_to_left_override_is_refused(initialised: Services) -> None:
    with pytest.raises(InvalidInputError) as raised:
        issue(initialised, example() | {"address": "杭州\u202e市"})
    assert "/fields/address" in {p for p, _ in raised.value.errors}


def test_idempotent_replay_returns_the_same_certificate(initialised: Services) -> None:
    body = {"type": "business_licence", "fields": example()}
    key = IdempotencyKey("cli_x", "order-1", request_hash(body))
    request = IssueRequest(type_code="business_licence", fields=example())
    first = issue_certificate(
        initialised,
        department_code=DEMO_DEPARTMENT_CODE,
        request=request,
        actor=OPERATOR,
        idempotency=key,
    )
    again = issue_certificate(
        initialised,
        department_code=DEMO_DEPARTMENT_CODE,
        request=request,
        actor=OPERATOR,
        idempotency=key,
    )
    assert again.replayed
    assert again.certificate.id == first.certificate.id
    assert count(initialised, Certificate) == 1
    other = IdempotencyKey("cli_x", "order-1", request_hash({"other": 1}))
    with pytest.raises(InvalidInputError, match="another request body"):
        issue_certificate(
            initialised,
            department_code=DEMO_DEPARTMENT_CODE,
            request=request,
            actor=OPERATOR,
            idempotency=other,
        )


def test_a_duplicate_in_flight_is_a_conflict(initialised: Services) -> None:
    body_hash = request_hash({"b": 1})
    with db.transaction(initialised.sessions) as session:
        session.add(IdempotencyRecord(client_id="cli_x", key="k", request_hash=body_hash))
    with pytest.raises(ConflictError, match="still being processed"):
        issue_certificate(
            initialised,
            department_code=DEMO_DEPARTMENT_CODE,
            request=IssueRequest(type_code="business_licence", fields=example()),
            actor=OPERATOR,
            idempotency=IdempotencyKey("cli_x", "k", body_hash),
        )


def test_lifecycle_suspend_reinstate_revoke(initialised: Services) -> None:
    certificate = issue(initialised)
    assert (
        change_status(
            initialised,
            certificate_id=certificate.id,
            action="suspend",
            reason="核查中",
            actor=OPERATOR,
        ).status
        == "suspended"
    )
    with pytest.raises(ConflictError, match="cannot be suspended"):
        change_status(
            initialised, certificate_id=certificate.id, action="suspend", reason="x", actor=OPERATOR
        )
    assert (
        change_status(
            initialised,
            certificate_id=certificate.id,
            action="reinstate",
            reason="核查完毕",
            actor=OPERATOR,
        ).status
        == "valid"
    )
    assert (
        change_status(
            initialised,
            certificate_id=certificate.id,
            action="revoke",
            reason="吊销",
            actor=OPERATOR,
        ).status
        == "revoked"
    )
    with pytest.raises(ConflictError, match="cannot be reinstated"):
        change_status(
            initialised,
            certificate_id=certificate.id,
            action="reinstate",
            reason="x",
            actor=OPERATOR,
        )
    with initialised.sessions() as session:
        events = session.scalars(
            select(StatusEvent)
            .where(StatusEvent.certificate_id == certificate.id)
            .order_by(StatusEvent.id)
        ).all()
    assert [(e.from_status, e.to_status) for e in events] == [
        (None, "valid"),
        ("valid", "suspended"),
        ("suspended", "valid"),
        ("valid", "revoked"),
    ]
    assert all(e.actor == "cli:test" for e in events)


def test_supersede_issues_a_new_number_and_marks_the_old(initialised: Services) -> None:
    old = issue(initialised)
    new = supersede(
        initialised,
        certificate_id=old.id,
        department_code=DEMO_DEPARTMENT_CODE,
        fields=example() | {"address": "浙江省杭州市西湖区新址路1号"},
        valid_from=None,
        valid_until=None,
        actor=OPERATOR,
    ).certificate
    assert new.supersedes_id == old.id
    assert new.number != old.number
    with initialised.sessions() as session:
        assert session.get(Certificate, old.id).status == "superseded"  # type: ignore[union-attr]
    with pytest.raises(ConflictError, match="superseded"):
        supersede(
            initialised,
            certificate_id=old.id,
            department_code=DEMO_DEPARTMENT_CODE,
            fields=None,
            valid_from=None,
            valid_until=None,
            actor=OPERATOR,
        )


def test_expiry_comes_from_the_validity_dates(initialised: Services) -> None:
    # Issued 400 days ago, for 30 days: the issuing clock is pinned to that day, since a
    # validity entirely in the past is refused today.
    start = date.today() - timedelta(days=400)
    initialised.clock = FixedClock.on(start)
    certificate = issue(initialised, valid_from=start, valid_until=start + timedelta(days=30))
    assert certificate.status == "valid"
    assert certificate.issued_at.astimezone(CHINA).date() == start
    assert effective_status(certificate, date.today()) == EffectiveStatus.EXPIRED
    assert effective_status(certificate, start) == EffectiveStatus.VALID


def test_unknown_type_is_refused(initialised: Services) -> None:
    with pytest.raises(InvalidInputError, match="business_licence"):
        issue(initialised, type_code="driving_licence")


# --- one valid licence of a type per holder and department ----------------------------------


def test_a_second_valid_licence_for_a_holder_is_refused_naming_the_first(
    initialised: Services,
) -> None:
    fields = example()
    first = issue(initialised, fields)
    with pytest.raises(LicenceExistsError, match="supersede") as refused:
        issue(initialised, fields | {"address": "浙江省杭州市西湖区新址路1号"})
    assert refused.value.certificate_id == first.id
    assert refused.value.number == first.number
    assert first.number in refused.value.message
    assert count(initialised, Certificate) == 1
    # The refused request took no number.
    assert issue(initialised).number[-6:] == "000002"


def test_the_same_holder_may_hold_licences_of_other_types(initialised: Services) -> None:
    business = example()
    issue(initialised, business)
    food = example("food_business_permit") | {"credit_code": business["credit_code"]}
    assert (
        issue(initialised, food, type_code="food_business_permit").holder_code
        == (business["credit_code"])
    )


def test_a_holder_whose_licence_was_revoked_may_be_issued_a_new_one(
    initialised: Services,
) -> None:
    fields = example()
    first = issue(initialised, fields)
    change_status(
        initialised, certificate_id=first.id, action="revoke", reason="吊销", actor=OPERATOR
    )
    assert issue(initialised, fields).holder_code == fields["credit_code"]


def test_after_a_supersede_the_successor_is_the_licence_held(initialised: Services) -> None:
    fields = example()
    first = issue(initialised, fields)
    successor = supersede(
        initialised,
        certificate_id=first.id,
        department_code=DEMO_DEPARTMENT_CODE,
        fields=None,
        valid_from=None,
        valid_until=None,
        actor=OPERATOR,
    ).certificate
    with pytest.raises(LicenceExistsError) as refused:
        issue(initialised, fields)
    assert refused.value.certificate_id == successor.id


def test_a_suspended_licence_still_counts_as_held(initialised: Services) -> None:
    fields = example()
    first = issue(initialised, fields)
    change_status(
        initialised, certificate_id=first.id, action="suspend", reason="核查", actor=OPERATOR
    )
    with pytest.raises(LicenceExistsError):
        issue(initialised, fields)


def test_parallel_requests_for_one_holder_issue_one_licence(initialised: Services) -> None:
    issue(initialised)  # warm the process: key, font, seal identity
    fields = example()

    def attempt(_: int) -> str:
        try:
            return issue(initialised, fields).id
        except LicenceExistsError as refused:
            return f"refused:{refused.certificate_id}"

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(attempt, range(6)))
    issued = [o for o in outcomes if not o.startswith("refused:")]
    assert len(issued) == 1, outcomes
    assert outcomes.count(f"refused:{issued[0]}") == 5
    with initialised.sessions() as session:
        holders = session.scalars(
            select(Certificate.id).where(Certificate.holder_code == fields["credit_code"])
        ).all()
    assert holders == issued


def test_an_idempotent_replay_for_a_holder_is_not_a_second_licence(
    initialised: Services,
) -> None:
    request = IssueRequest(type_code="business_licence", fields=example())
    key = IdempotencyKey("cli_x", "order-7", request_hash({"fields": request.fields}))
    made = [
        issue_certificate(
            initialised,
            department_code=DEMO_DEPARTMENT_CODE,
            request=request,
            actor=OPERATOR,
            idempotency=key,
        )
        for _ in range(2)
    ]
    assert [m.replayed for m in made] == [False, True]
    assert made[0].certificate.id == made[1].certificate.id


# --- supersede merges ------------------------------------------------------------------------


def test_supersede_replaces_the_fields_it_names_and_keeps_the_others(
    initialised: Services,
) -> None:
    old = issue(initialised)
    new = supersede(
        initialised,
        certificate_id=old.id,
        department_code=DEMO_DEPARTMENT_CODE,
        fields={"address": "浙江省杭州市西湖区新址路1号", "business_term": None},
        valid_from=None,
        valid_until=None,
        actor=OPERATOR,
    ).certificate
    expected = {k: v for k, v in old.fields.items() if k != "business_term"}
    assert new.fields == expected | {"address": "浙江省杭州市西湖区新址路1号"}
    assert new.holder_code == old.holder_code
    with initialised.sessions() as session:
        stored = session.get(Certificate, old.id)
    assert stored is not None
    assert stored.superseded_by is not None
    assert (stored.superseded_by.id, stored.superseded_by.number) == (new.id, new.number)


# --- the PDF's metadata ------------------------------------------------------------------------


def test_licence_metadata_names_the_department_the_licence_and_the_moment_of_issue(
    initialised: Services, tmp_path: Path
) -> None:
    certificate = issue(initialised)
    (tmp_path / "licence.pdf").write_bytes(pdf_of(initialised, certificate))
    info = dict(
        line.split(":", 1)
        for line in subprocess.run(
            ["pdfinfo", "-isodates", str(tmp_path / "licence.pdf")],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.splitlines()
        if ":" in line
    )
    assert info["Author"].strip() == "杭州市市场监督管理局"
    assert info["Title"].strip() == f"营业执照 {certificate.number}"
    created = datetime.fromisoformat(info["CreationDate"].strip())
    assert created.utcoffset() == timedelta(hours=8)
    assert abs(created - certificate.issued_at) < timedelta(seconds=1)
    # The XMP packet (GB/T 36903 metadata) repeats what the /Info dictionary says.
    assert dublin_core(tmp_path / "licence.pdf", "title") == info["Title"].strip()
    assert dublin_core(tmp_path / "licence.pdf", "creator") == "杭州市市场监督管理局"
