"""The use list (用证清单) at the command line: grants added, listed and revoked, each change in
the audit trail and the outbox, each bad input one line and a non-zero exit, nothing written;
and clients with the ``use`` scope."""

from __future__ import annotations

import json
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api import status_of
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.cli import run
from econtract.models import AuditEvent, Grant, OutboxEvent
from econtract.services import Services
from econtract.sharing import GrantExistsError
from tests.econtract.conftest import cli_env  # noqa: F401 - the CLI's environment, a fixture

USER = "9133100015J1YG617W"
"""The using department of these tests (a construction bureau)."""

pytestmark = pytest.mark.usefixtures("cli_env")


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    capsys.readouterr()
    status = run([*args, "--json"])
    out = capsys.readouterr()
    assert status == 0, out.err
    return json.loads(out.out)


def cli_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The one line a refused command prints; its exit status must be 1."""
    capsys.readouterr()
    status = run(list(args))
    out = capsys.readouterr()
    assert status == 1, out
    assert out.out == ""
    assert out.err.count("\n") == 1, out.err
    return out.err


@pytest.fixture
def user(capsys: pytest.CaptureFixture[str]) -> str:
    """An initialised registry with a using department besides the demo one."""
    cli_json(capsys, "init")
    cli_json(capsys, "departments", "add", "--code", USER, "--name", "台州市建设局")
    return USER


def add(
    capsys: pytest.CaptureFixture[str], *extra: str, type_code: str = "business_licence"
) -> Any:
    return cli_json(
        capsys,
        "grants",
        "add",
        "--department",
        USER,
        "--type",
        type_code,
        "--matter",
        "建筑工程施工许可",
        *extra,
    )


def grants_rows(services: Services) -> int:
    with services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Grant)) or 0)


def test_a_grant_is_added_listed_and_revoked(capsys: pytest.CaptureFixture[str], user: str) -> None:
    grant = add(capsys, "--matter", "施工图审查")
    assert grant["id"].startswith("grant_")
    assert grant == {
        **grant,
        "department": user,
        "type": "business_licence",
        "matters": ["建筑工程施工许可", "施工图审查"],
        "revoked_at": None,
    }
    assert cli_json(capsys, "grants", "list") == [grant]
    assert cli_json(capsys, "grants", "list", "--department", DEMO_DEPARTMENT_CODE) == []

    revoked = cli_json(capsys, "grants", "revoke", grant["id"])
    assert revoked["revoked_at"] is not None
    assert cli_json(capsys, "grants", "list") == []
    assert [g["id"] for g in cli_json(capsys, "grants", "list", "--all")] == [grant["id"]]


def test_adding_and_revoking_a_grant_are_audited_and_told_through_the_outbox(
    capsys: pytest.CaptureFixture[str], user: str, services: Services
) -> None:
    grant = add(capsys)
    cli_json(capsys, "grants", "revoke", grant["id"])
    with services.sessions() as session:
        audited = session.scalars(
            select(AuditEvent).where(AuditEvent.target_id == grant["id"]).order_by(AuditEvent.id)
        ).all()
        outbox = session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.subject_id == grant["id"])
            .order_by(OutboxEvent.id)
        ).all()
    assert [(e.action, e.target_type, e.actor) for e in audited] == [
        ("grant.add", "grant", "cli:operator"),
        ("grant.revoke", "grant", "cli:operator"),
    ]
    assert [e.type for e in outbox] == ["grant.added", "grant.revoked"]
    assert outbox[0].payload == {
        "grant_id": grant["id"],
        "department": user,
        "type": "business_licence",
        "matters": ["建筑工程施工许可"],
        "requires_consent": False,
    }


def test_a_type_a_citizen_may_hold_requires_consent_by_default(
    capsys: pytest.CaptureFixture[str], user: str
) -> None:
    assert add(capsys, type_code="food_business_permit")["requires_consent"] is True
    assert add(capsys, type_code="business_licence")["requires_consent"] is False


def test_the_operator_may_set_the_consent_policy_either_way(
    capsys: pytest.CaptureFixture[str], user: str
) -> None:
    assert (
        add(capsys, "--no-requires-consent", type_code="food_business_permit")["requires_consent"]
        is False
    )
    assert (
        add(capsys, "--requires-consent", type_code="construction_permit")["requires_consent"]
        is True
    )


def test_a_matter_named_twice_is_kept_once(capsys: pytest.CaptureFixture[str], user: str) -> None:
    assert add(capsys, "--matter", " 建筑工程施工许可")["matters"] == ["建筑工程施工许可"]


def test_a_grant_for_an_unknown_department_is_refused(
    capsys: pytest.CaptureFixture[str], user: str, services: Services
) -> None:
    err = cli_error(
        capsys, "grants", "add", "--department", "91330100MA27XL0Q2K", "--type",
        "business_licence", "--matter", "x",
    )  # fmt: skip
    assert err == "error: No department with code '91330100MA27XL0Q2K'.\n"
    assert grants_rows(services) == 0


def test_a_grant_of_an_unknown_type_is_refused(
    capsys: pytest.CaptureFixture[str], user: str, services: Services
) -> None:
    err = cli_error(
        capsys, "grants", "add", "--department", user, "--type", "fishing_licence", "--matter", "x"
    )
    assert err.startswith("error: There is no certificate type 'fishing_licence'")
    assert grants_rows(services) == 0


def test_an_empty_matter_is_refused(
    capsys: pytest.CaptureFixture[str], user: str, services: Services
) -> None:
    err = cli_error(
        capsys, "grants", "add", "--department", user, "--type", "business_licence",
        "--matter", "施工许可", "--matter", "  ",
    )  # fmt: skip
    assert err == "error: Matter 2: matter must not be empty.\n"
    assert grants_rows(services) == 0


def test_a_matter_over_200_characters_is_refused(
    capsys: pytest.CaptureFixture[str], user: str, services: Services
) -> None:
    err = cli_error(
        capsys, "grants", "add", "--department", user, "--type", "business_licence",
        "--matter", "事" * 201,
    )  # fmt: skip
    assert err == "error: Matter 1: matter has 201 characters; at most 200 are allowed.\n"
    assert grants_rows(services) == 0


def test_a_grant_without_a_matter_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], user: str, services: Services
) -> None:
    status = run(["grants", "add", "--department", user, "--type", "business_licence"])
    assert status == 64
    assert "--matter" in capsys.readouterr().err
    assert grants_rows(services) == 0


def test_a_second_grant_for_the_same_department_and_type_names_the_first(
    capsys: pytest.CaptureFixture[str], user: str, services: Services
) -> None:
    first = add(capsys)
    err = cli_error(
        capsys, "grants", "add", "--department", user, "--type", "business_licence",
        "--matter", "施工图审查",
    )  # fmt: skip
    assert err == (
        f"error: {user} already holds grant {first['id']} for business_licence; "
        "revoke it first to change its matters.\n"
    )
    assert grants_rows(services) == 1


def test_a_revoked_grant_makes_room_for_a_new_one(
    capsys: pytest.CaptureFixture[str], user: str
) -> None:
    first = add(capsys)
    cli_json(capsys, "grants", "revoke", first["id"])
    second = add(capsys, "--matter", "施工图审查")
    assert second["id"] != first["id"]


def test_revoking_an_unknown_or_revoked_grant_is_refused(
    capsys: pytest.CaptureFixture[str], user: str
) -> None:
    assert cli_error(capsys, "grants", "revoke", "grant_nope") == "error: No grant 'grant_nope'.\n"
    grant = add(capsys)
    cli_json(capsys, "grants", "revoke", grant["id"])
    err = cli_error(capsys, "grants", "revoke", grant["id"])
    assert err.startswith(f"error: Grant {grant['id']} was already revoked on ")


def test_a_client_created_with_the_use_scope_gets_a_token_with_use(
    capsys: pytest.CaptureFixture[str], api_client: TestClient
) -> None:
    cli_json(capsys, "departments", "add", "--code", USER, "--name", "台州市建设局")
    client = cli_json(capsys, "clients", "create", "--department", USER, "--scopes", "use")
    response = api_client.post(
        "/v1/token",
        data={"grant_type": "client_credentials"},
        auth=(client["client_id"], client["client_secret"]),
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "use"
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["scope"] == "use"


def test_a_second_grant_is_a_409_naming_the_first_over_http() -> None:
    error = GrantExistsError("taken", grant_id="grant_x")
    assert status_of(error) == 409
    assert error.code == "grant-exists"
    assert error.data == {"existing_grant_id": "grant_x"}
