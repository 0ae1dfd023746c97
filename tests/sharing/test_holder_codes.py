"""The holder's national code: checked on the way in, never echoed whole, and given to every
certificate (by issuance, and by migration 0009 to the certificates issued before it)."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import select, update

from econtract import db
from econtract.errors import InvalidInputError
from econtract.licence_metadata import HolderType
from econtract.models import Certificate
from econtract.services import Services
from econtract.sharing import parse_holder
from tests.licences import fresh_credit_code, issue_example

#: A resident identity number with a right check character (GB 11643), of nobody.
PERSON = "11010519491231002X"


def test_a_credit_code_and_an_identity_number_are_read_with_their_type() -> None:
    code = fresh_credit_code()
    assert parse_holder(code.lower(), "001") == (code, HolderType.CREDIT_CODE)
    assert parse_holder(PERSON, "111") == (PERSON, HolderType.CITIZEN_ID)


def test_an_identity_number_sent_as_a_credit_code_is_named_masked() -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_holder(PERSON, "001")
    assert PERSON not in caught.value.message
    assert "110***********002X" in caught.value.message
    assert "111" in caught.value.message
    assert caught.value.errors == [("/holder_code", "not a unified social credit code")]


def test_a_wrong_identity_number_is_named_masked() -> None:
    wrong = PERSON[:-1] + "1"
    with pytest.raises(InvalidInputError) as caught:
        parse_holder(wrong, "111")
    assert wrong not in caught.value.message
    assert caught.value.errors == [("/holder_code", "not a resident identity number")]


def test_a_wrong_credit_code_names_the_check_character() -> None:
    code = fresh_credit_code()
    wrong = code[:-1] + ("0" if code[-1] != "0" else "1")
    with pytest.raises(InvalidInputError) as caught:
        parse_holder(wrong, "001")
    assert "check character" in caught.value.message


def test_an_unknown_holder_type_is_named() -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_holder(PERSON, "999")
    assert "'999'" in caught.value.message
    assert caught.value.errors == [("/holder_type", "unknown holder type")]


def test_issuance_gives_the_holders_national_code(initialised: Services) -> None:
    business = issue_example(initialised)
    permit = issue_example(initialised, "construction_permit")
    assert business.national_holder_code == business.holder_code
    assert business.national_holder_type == "001"
    assert permit.national_holder_code is None
    assert permit.national_holder_type is None


def test_migration_0009_gives_existing_certificates_what_issuance_gives(
    initialised: Services,
) -> None:
    issued = [
        issue_example(initialised),
        issue_example(initialised, "food_business_permit"),
        issue_example(initialised, "construction_permit"),
    ]
    expected = {c.id: (c.national_holder_code, c.national_holder_type) for c in issued}
    assert any(code is not None for code, _ in expected.values())
    config = db.alembic_config(initialised.engine)
    command.downgrade(config, "0008")
    command.upgrade(config, "0009")
    with initialised.sessions() as session:
        rows = session.execute(
            select(
                Certificate.id, Certificate.national_holder_code, Certificate.national_holder_type
            )
        ).all()
    assert {row.id: (row[1], row[2]) for row in rows} == expected


def test_migration_0009_gives_a_person_without_a_credit_code_their_identity_number(
    initialised: Services,
) -> None:
    permit = issue_example(initialised, "food_business_permit")
    config = db.alembic_config(initialised.engine)
    command.downgrade(config, "0008")
    # A permit of an individual operator issued without a credit code: the person's identity
    # number, masked on the licence, is the holder's code.
    with db.transaction(initialised.sessions) as session:
        fields = dict(permit.fields, id_number=PERSON)
        session.execute(
            update(Certificate)
            .where(Certificate.id == permit.id)
            .values(holder_code=None, fields=fields)
        )
    command.upgrade(config, "0009")
    with initialised.sessions() as session:
        row = session.execute(
            select(Certificate.national_holder_code, Certificate.national_holder_type).where(
                Certificate.id == permit.id
            )
        ).one()
    assert tuple(row) == (PERSON, "111")
