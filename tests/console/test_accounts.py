"""Console accounts: argon2id passwords, RFC 6238 one-time codes (good once, one step of
drift), secrets encrypted at rest, and the operator's ``econtract users`` commands."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.cli import EXIT_USAGE, run
from econtract.config import get_settings
from econtract.console import ConsoleRole, ConsoleSession, ConsoleUser, SessionPolicy, live_session
from econtract.console._passwords import (
    WeakPasswordError,
    check_password_rule,
    hash_password,
    password_matches,
)
from econtract.console._sessions import open_session
from econtract.console._totp import (
    SecretUnreadableError,
    accepted_step,
    code_at,
    open_secret,
    seal_secret,
    step_of,
)
from econtract.models import AuditEvent
from econtract.services import Services
from tests.console.accounts import make_account

# --- passwords ----------------------------------------------------------------------------


def test_a_password_is_hashed_with_argon2id_and_checks_only_itself() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert password_matches("correct horse battery", stored)
    assert not password_matches("correct horse batterY", stored)


def test_the_same_password_hashes_differently_each_time() -> None:
    assert hash_password("correct horse battery") != hash_password("correct horse battery")


def test_no_password_matches_a_missing_account() -> None:
    assert not password_matches("no console user has this password", None)


def test_a_password_shorter_than_12_characters_is_refused() -> None:
    with pytest.raises(WeakPasswordError, match="at least 12 characters"):
        check_password_rule("elevenchars")
    check_password_rule("twelve chars")


# --- one-time codes -----------------------------------------------------------------------

RFC_SECRET = b"12345678901234567890"

#: RFC 6238 appendix B, the SHA-1 column: the time (seconds since the epoch) and its code.
RFC_6238_SHA1 = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@pytest.mark.parametrize(("seconds", "code"), RFC_6238_SHA1)
def test_codes_are_rfc_6238s_test_vectors(seconds: int, code: str) -> None:
    assert code_at(RFC_SECRET, at(seconds), digits=8) == code
    # An authenticator app's 6 digits are the last 6 of the same number.
    assert code_at(RFC_SECRET, at(seconds)) == code[-6:]


def test_a_code_of_the_step_before_or_after_is_accepted_and_no_further() -> None:
    now = at(1234567890)
    step = step_of(now)
    for drift in (-1, 0, 1):
        code = code_at(RFC_SECRET, now + timedelta(seconds=30 * drift))
        assert accepted_step(RFC_SECRET, code, at=now, last_step=None) == step + drift
    for drift in (-2, 2):
        code = code_at(RFC_SECRET, now + timedelta(seconds=30 * drift))
        assert accepted_step(RFC_SECRET, code, at=now, last_step=None) is None


def test_a_code_is_good_once() -> None:
    now = at(1234567890)
    code = code_at(RFC_SECRET, now)
    step = accepted_step(RFC_SECRET, code, at=now, last_step=None)
    assert step is not None
    assert accepted_step(RFC_SECRET, code, at=now, last_step=step) is None
    # Nor is the previous step's code, once a later one was used.
    earlier = code_at(RFC_SECRET, now - timedelta(seconds=30))
    assert accepted_step(RFC_SECRET, earlier, at=now, last_step=step) is None


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "１２３４５６"])
def test_a_malformed_code_is_refused(code: str) -> None:
    assert accepted_step(RFC_SECRET, code, at=at(59), last_step=None) is None


def test_a_secret_is_encrypted_at_rest_and_bound_to_its_account() -> None:
    stored = seal_secret(RFC_SECRET, server_secret=b"server secret", user_name="li")
    assert RFC_SECRET.hex() not in stored
    assert open_secret(stored, server_secret=b"server secret", user_name="li") == RFC_SECRET
    with pytest.raises(SecretUnreadableError):
        open_secret(stored, server_secret=b"another secret", user_name="li")
    with pytest.raises(SecretUnreadableError):
        open_secret(stored, server_secret=b"server secret", user_name="wang")


# --- the operator's commands --------------------------------------------------------------


@pytest.fixture
def cli_env(initialised: Services, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    """The command line pointed at the initialised registry of the test."""
    settings = initialised.settings
    monkeypatch.setenv("ECONTRACT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ECONTRACT_DATABASE_URL", settings.effective_database_url)
    monkeypatch.setenv("ECONTRACT_KEY_PASSPHRASE", "test-passphrase-0123")
    monkeypatch.setenv("ECONTRACT_KEY_KDF_ROUNDS", str(settings.key_kdf_rounds))
    monkeypatch.chdir(settings.data_dir.parent)
    get_settings.cache_clear()
    yield initialised
    get_settings.cache_clear()


def users(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *args: str,
    password: str = "correct horse battery",
) -> tuple[int, Any, str]:
    """Run ``econtract users ...`` with ``password`` on stdin; status, JSON out, stderr."""
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    capsys.readouterr()
    status = run(["users", *args])
    out = capsys.readouterr()
    parsed = json.loads(out.out) if status == 0 and "--json" in args else None
    return status, parsed, out.err


def test_users_add_a_supervisor_prints_the_totp_secret_once(
    cli_env: Services, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    status, added, _ = users(
        monkeypatch, capsys, "add", "--name", "zhang", "--role", "supervisor",
        "--password-stdin", "--json",
    )  # fmt: skip
    assert status == 0
    assert added["role"] == "supervisor"
    assert added["department"] is None
    uri = urlsplit(added["totp_uri"])
    assert (uri.scheme, uri.netloc, uri.path) == ("otpauth", "totp", "/eContract%3Azhang")
    query = parse_qs(uri.query)
    assert query["secret"] == [added["totp_secret"]]
    assert (query["digits"], query["period"], query["algorithm"]) == (["6"], ["30"], ["SHA1"])
    # Neither the secret nor the hash is ever listed, nor stored in the clear.
    status, listed, _ = users(monkeypatch, capsys, "list", "--json")
    assert status == 0
    assert listed == [{**{k: v for k, v in added.items() if not k.startswith("totp_")}}]
    assert "totp_secret" not in json.dumps(listed)
    with cli_env.sessions() as session:
        user = session.scalars(select(ConsoleUser)).one()
        assert user.password_hash.startswith("$argon2id$")
        assert user.totp_secret is not None
        assert added["totp_secret"] not in user.totp_secret
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "console-user.add")
        ).one()
        assert event.target_id == "zhang"
        assert "correct horse" not in json.dumps(event.detail)


def test_users_add_a_department_admin_without_a_second_factor(
    cli_env: Services, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    status, added, _ = users(
        monkeypatch, capsys, "add", "--name", "li", "--role", "department-admin",
        "--department", DEMO_DEPARTMENT_CODE, "--password-stdin", "--json",
    )  # fmt: skip
    assert status == 0
    assert added["department"] == DEMO_DEPARTMENT_CODE
    assert added["totp"] is False
    assert "totp_secret" not in added


def test_users_disable_ends_the_accounts_sessions(
    cli_env: Services, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    users(
        monkeypatch, capsys, "add", "--name", "li", "--role", "department-admin",
        "--department", DEMO_DEPARTMENT_CODE, "--password-stdin",
    )  # fmt: skip
    policy = SessionPolicy(lifetime=timedelta(hours=8), idle=timedelta(minutes=30))
    with db.transaction(cli_env.sessions) as session:
        user = session.scalars(select(ConsoleUser)).one()
        open_session(session, user=user, policy=policy, now=datetime.now(UTC))
    status, disabled, _ = users(monkeypatch, capsys, "disable", "li", "--json")
    assert status == 0
    assert disabled["disabled_at"] is not None
    with cli_env.sessions() as session:
        assert session.scalars(select(ConsoleSession.revoked_at)).one() is not None
    status, _, err = users(monkeypatch, capsys, "disable", "nobody")
    assert (status, err) == (EXIT_USAGE, "usage error: No console account named 'nobody'.\n")


REFUSALS = [
    (
        ["--name", "a", "--role", "department-admin", "--department", "91330000MA27XYZ12X"],
        "No department with code '91330000MA27XYZ12X'.",
    ),
    (
        ["--name", "a", "--role", "department-admin"],
        "A department admin needs --department (the department's code).",
    ),
    (
        ["--name", "a", "--role", "supervisor", "--department", DEMO_DEPARTMENT_CODE],
        "A supervisor sees every department and takes no --department.",
    ),
]


@pytest.mark.parametrize(("args", "message"), REFUSALS)
def test_users_add_refuses_a_wrong_department_in_one_line_with_exit_64(
    cli_env: Services,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    status, _, err = users(monkeypatch, capsys, "add", *args, "--password-stdin")
    assert (status, err) == (EXIT_USAGE, f"usage error: {message}\n")


def test_users_add_refuses_a_weak_password_saying_the_rule(
    cli_env: Services, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = users(
        monkeypatch, capsys, "add", "--name", "a", "--role", "supervisor", "--password-stdin",
        password="short",
    )  # fmt: skip
    assert (status, err) == (EXIT_USAGE, "usage error: A password needs at least 12 characters.\n")


def test_users_add_refuses_a_name_taken(
    cli_env: Services, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("add", "--name", "zhang", "--role", "supervisor", "--password-stdin")
    assert users(monkeypatch, capsys, *args)[0] == 0
    status, _, err = users(monkeypatch, capsys, *args)
    assert (status, err) == (
        EXIT_USAGE,
        "usage error: A console account named 'zhang' exists already.\n",
    )
    with cli_env.sessions() as session:
        assert len(session.scalars(select(ConsoleUser)).all()) == 1


def test_users_add_prompts_twice_for_the_password(
    cli_env: Services, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Without --password-stdin the password is asked for, and asked again to confirm it.
    status, added, _ = users(
        monkeypatch, capsys, "add", "--name", "wang", "--role", "supervisor", "--json",
        password="correct horse battery\ncorrect horse battery",
    )  # fmt: skip
    assert status == 0
    assert added["name"] == "wang"


# --- a session's lifetime -----------------------------------------------------------------


def test_a_session_ends_when_idle_and_at_the_end_of_its_lifetime(initialised: Services) -> None:
    make_account(initialised, "li", ConsoleRole.DEPARTMENT_ADMIN)
    policy = SessionPolicy(lifetime=timedelta(hours=8), idle=timedelta(minutes=30))
    start = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    with db.transaction(initialised.sessions) as session:
        user = session.scalars(select(ConsoleUser)).one()
        token, _ = open_session(session, user=user, policy=policy, now=start)

    def live(minutes: float) -> bool:
        with db.transaction(initialised.sessions) as session:
            now = start + timedelta(minutes=minutes)
            return live_session(session, token=token, policy=policy, now=now) is not None

    assert not live(31)  # idle for longer than 30 minutes
    # Busy (a request every 20 minutes) it lives to its eighth hour, and no longer.
    assert all(live(m) for m in range(20, 8 * 60, 20))
    assert not live(8 * 60)
