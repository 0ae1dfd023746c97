"""Signing in to the console: a new session at every sign-in (HttpOnly, SameSite=Strict,
Secure on https), CSRF tokens on every form, the one-time code of a supervisor good once,
lockout after failures in a row, and every sign-in, sign-out and lockout audited."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api import create_app
from econtract import db
from econtract.console import (
    ConsoleRole,
    ConsoleSession,
    SignedInUser,
    disable_user,
    session_id_of,
)
from econtract.errors import PermissionDeniedError
from econtract.models import AuditEvent
from econtract.services import Services
from routes.console import SESSION_COOKIE, SIGN_IN_COOKIE, require_role
from tests.console.accounts import HTML, Account, form_token, sign_in
from tests.factories import OPERATOR


def set_cookie(response: httpx.Response, name: str) -> str:
    [header] = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    return header


def audit_trail(services: Services, action: str) -> list[AuditEvent]:
    with services.sessions() as session:
        return list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
            )
        )


# --- signing in ---------------------------------------------------------------------------


def test_a_department_admin_signs_in_and_sees_who_they_are(
    console: TestClient, admin: Account, initialised: Services
) -> None:
    answer = sign_in(console, admin.name, admin.password)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console"
    home = console.get("/console", headers=HTML)
    assert home.status_code == 200
    assert "li" in home.text
    assert "部门管理员" in home.text
    assert "department admin" in home.text
    assert home.headers["cache-control"] == "no-store"
    [event] = audit_trail(initialised, "console.sign-in")
    assert (event.actor, event.outcome, event.target_id) == ("console:li", "success", "li")
    assert event.department_id is not None
    assert admin.password not in str(event.detail)


def test_the_session_cookie_is_httponly_samesite_strict_secure_and_scoped_to_the_console(
    console: TestClient, admin: Account
) -> None:
    cookie = set_cookie(sign_in(console, admin.name, admin.password), SESSION_COOKIE)
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "secure", "samesite=strict", "path=/console"} <= attributes
    token = cookie.split(";")[0].split("=", 1)[1]
    assert len(token) >= 43  # 256 bits, base64url


def test_the_session_cookie_is_not_secure_over_plain_http_unless_the_settings_say_so(
    initialised: Services, admin: Account
) -> None:
    with TestClient(create_app(initialised.settings), follow_redirects=False) as client:
        cookie = set_cookie(sign_in(client, admin.name, admin.password), SESSION_COOKIE)
    assert "secure" not in cookie.lower()
    # Behind a proxy that ends TLS, the service sees plain HTTP; the setting marks the
    # cookies Secure all the same (the browser, on https, sends them back).
    settings = initialised.settings.model_copy(update={"console_secure_cookie": True})
    with TestClient(create_app(settings), follow_redirects=False) as client:
        cookie = set_cookie(client.get("/console/sign-in"), SIGN_IN_COOKIE)
    assert "secure" in cookie.lower()


def test_the_registry_keeps_only_the_tokens_digest(
    console: TestClient, admin: Account, initialised: Services
) -> None:
    sign_in(console, admin.name, admin.password)
    token = console.cookies[SESSION_COOKIE]
    with initialised.sessions() as session:
        [row] = session.scalars(select(ConsoleSession)).all()
    assert row.id == session_id_of(token) != token


def test_a_wrong_password_and_an_unknown_name_get_the_same_answer(
    console: TestClient, admin: Account, initialised: Services
) -> None:
    wrong = sign_in(console, admin.name, "not the password at all")
    unknown = sign_in(console, "nobody", admin.password)
    assert wrong.status_code == unknown.status_code == 401
    message = "The name, the password or the one-time code is wrong"
    assert message in wrong.text
    assert message in unknown.text
    assert SESSION_COOKIE not in console.cookies
    reasons = [e.detail["reason"] for e in audit_trail(initialised, "console.sign-in")]
    assert reasons == ["password", "unknown-name"]


def test_without_a_session_a_page_redirects_to_sign_in_and_a_call_gets_401(
    console: TestClient,
) -> None:
    page = console.get("/console", headers=HTML)
    assert (page.status_code, page.headers["location"]) == (303, "/console/sign-in")
    call = console.get("/console", headers={"Accept": "application/json"})
    assert call.status_code == 401
    assert call.json()["type"] == "urn:econtract:problem:console-sign-in-required"


def test_an_api_bearer_token_opens_no_console_page(console: TestClient) -> None:
    answer = console.get("/console", headers={"Authorization": "Bearer anything"})
    assert answer.status_code == 401


# --- the supervisor's one-time code -------------------------------------------------------


def test_a_supervisor_needs_the_one_time_code(
    console: TestClient, supervisor: Account, initialised: Services
) -> None:
    assert sign_in(console, supervisor.name, supervisor.password).status_code == 401
    assert sign_in(console, supervisor.name, supervisor.password, "000000").status_code in (401,)
    answer = sign_in(console, supervisor.name, supervisor.password, supervisor.code())
    assert answer.status_code == 303
    home = console.get("/console", headers=HTML)
    assert "监察人员" in home.text
    assert "supervisor" in home.text
    reasons = [e.detail.get("reason") for e in audit_trail(initialised, "console.sign-in")]
    assert reasons[:2] == ["code", "code"]
    assert reasons[2] is None


def test_a_one_time_code_is_refused_the_second_time(
    console: TestClient, supervisor: Account
) -> None:
    code = supervisor.code()
    assert sign_in(console, supervisor.name, supervisor.password, code).status_code == 303
    console.cookies.clear()
    assert sign_in(console, supervisor.name, supervisor.password, code).status_code == 401


# --- session fixation ---------------------------------------------------------------------


def test_a_cookie_set_before_sign_in_is_never_a_session(
    console: TestClient, admin: Account
) -> None:
    planted = "planted-by-someone-else-0123456789abcdefghijk"
    console.cookies.set(SESSION_COOKIE, planted)
    assert console.get("/console", headers=HTML).status_code == 303
    answer = sign_in(console, admin.name, admin.password)
    given = set_cookie(answer, SESSION_COOKIE).split(";")[0].split("=", 1)[1]
    assert given != planted
    # The planted token signs no one in, even now that its browser did.
    console.cookies.clear()
    console.cookies.set(SESSION_COOKIE, planted)
    assert console.get("/console", headers=HTML).status_code == 303
    console.cookies.clear()
    console.cookies.set(SESSION_COOKIE, given)
    assert console.get("/console", headers=HTML).status_code == 200


def test_every_sign_in_makes_a_new_session_and_ends_the_one_before(
    console: TestClient, admin: Account
) -> None:
    sign_in(console, admin.name, admin.password)
    first = console.cookies[SESSION_COOKIE]
    sign_in(console, admin.name, admin.password)
    second = console.cookies[SESSION_COOKIE]
    assert first != second
    console.cookies.clear()
    console.cookies.set(SESSION_COOKIE, first)
    assert console.get("/console", headers=HTML).status_code == 303


# --- CSRF ---------------------------------------------------------------------------------


def test_a_sign_in_without_its_forms_token_is_refused(
    console: TestClient, admin: Account, initialised: Services
) -> None:
    data = {"name": admin.name, "password": admin.password}
    assert console.post("/console/sign-in", data=data, headers=HTML).status_code == 403
    form = console.get("/console/sign-in")
    token = form_token(form)
    # A token of another form (another cookie) does not fit this browser's cookie.
    console.cookies.clear()
    console.cookies.set(SIGN_IN_COOKIE, "another-nonce")
    refused = console.post("/console/sign-in", data={**data, "csrf": token}, headers=HTML)
    assert refused.status_code == 403
    assert "表单已失效" in refused.text
    assert audit_trail(initialised, "console.sign-in") == []


def test_a_post_without_the_sessions_token_or_with_another_is_refused(
    console: TestClient, admin: Account
) -> None:
    sign_in(console, admin.name, admin.password)
    assert console.post("/console/sign-out", headers=HTML).status_code == 403
    wrong = console.post("/console/sign-out", data={"csrf": "x" * 43}, headers=HTML)
    assert wrong.status_code == 403
    problem = console.post("/console/sign-out", data={"csrf": "x"})
    assert problem.status_code == 403
    assert problem.json()["type"] == "urn:econtract:problem:csrf"
    # Still signed in: nothing was done.
    assert console.get("/console", headers=HTML).status_code == 200


# --- sign-out, lockout, disablement -------------------------------------------------------


def test_sign_out_ends_the_session(
    console: TestClient, admin: Account, initialised: Services
) -> None:
    sign_in(console, admin.name, admin.password)
    token = console.cookies[SESSION_COOKIE]
    home = console.get("/console", headers=HTML)
    out = console.post("/console/sign-out", data={"csrf": form_token(home)}, headers=HTML)
    assert (out.status_code, out.headers["location"]) == (303, "/console/sign-in")
    assert SESSION_COOKIE not in console.cookies
    console.cookies.set(SESSION_COOKIE, token)
    assert console.get("/console", headers=HTML).status_code == 303
    [event] = audit_trail(initialised, "console.sign-out")
    assert event.target_id == admin.name


def test_five_failures_in_a_row_lock_the_account(
    console: TestClient, admin: Account, initialised: Services
) -> None:
    for _ in range(5):
        assert sign_in(console, admin.name, "not the password at all").status_code == 401
    # Locked: the right password is refused too, with the same answer.
    refused = sign_in(console, admin.name, admin.password)
    assert refused.status_code == 401
    assert "The name, the password or the one-time code is wrong" in refused.text
    [lockout] = audit_trail(initialised, "console.lockout")
    assert lockout.target_id == admin.name
    assert datetime.fromisoformat(lockout.detail["until"]) > datetime.now(UTC)
    reasons = [e.detail["reason"] for e in audit_trail(initialised, "console.sign-in")]
    assert reasons == ["password"] * 5 + ["locked"]


def test_a_success_resets_the_count_of_failures(
    console: TestClient, admin: Account, initialised: Services
) -> None:
    for _ in range(4):
        sign_in(console, admin.name, "not the password at all")
    assert sign_in(console, admin.name, admin.password).status_code == 303
    for _ in range(4):
        sign_in(console, admin.name, "not the password at all")
    assert sign_in(console, admin.name, admin.password).status_code == 303
    assert audit_trail(initialised, "console.lockout") == []


def test_sign_in_attempts_are_rate_limited(initialised: Services, admin: Account) -> None:
    settings = initialised.settings.model_copy(update={"console_rate_sign_in": "3/minute"})
    with TestClient(
        create_app(settings), base_url="https://testserver", follow_redirects=False
    ) as client:
        for _ in range(3):
            assert sign_in(client, "nobody", "not the password at all").status_code == 401
        limited = sign_in(client, admin.name, admin.password)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1


def test_a_disabled_account_cannot_sign_in_and_its_session_ends(
    console: TestClient, admin: Account, initialised: Services
) -> None:
    sign_in(console, admin.name, admin.password)
    with db.transaction(initialised.sessions) as session:
        disable_user(session, name=admin.name, actor=OPERATOR, now=datetime.now(UTC))
    assert console.get("/console", headers=HTML).status_code == 303
    assert sign_in(console, admin.name, admin.password).status_code == 401
    reasons = [e.detail.get("reason") for e in audit_trail(initialised, "console.sign-in")]
    assert reasons == [None, "disabled"]


def test_the_name_sent_back_in_the_form_is_escaped(console: TestClient) -> None:
    answer = sign_in(console, '"><script>alert(1)</script>', "not the password at all")
    assert answer.status_code == 401
    assert "<script>alert(1)" not in answer.text
    assert "&lt;script&gt;" in answer.text


def signed_in_as(role: ConsoleRole) -> SignedInUser:
    return SignedInUser(
        user_id=1,
        name="someone",
        role=role.value,
        department_id=None,
        department_code=None,
        department_name=None,
        session_id="0" * 64,
        csrf_token="t",
    )


def test_require_role_lets_the_role_through_and_refuses_the_others() -> None:
    supervisors_only = require_role(ConsoleRole.SUPERVISOR)
    supervisor = signed_in_as(ConsoleRole.SUPERVISOR)
    assert supervisors_only(supervisor) is supervisor
    with pytest.raises(PermissionDeniedError, match="not for your role"):
        supervisors_only(signed_in_as(ConsoleRole.DEPARTMENT_ADMIN))
