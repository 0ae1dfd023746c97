"""Rate limits: 429 problem+json with Retry-After past a limit, failed token attempts counted
per client id and per address (and only failures), counts shared through Redis by separate
application instances, and limits that fail open when Redis is down."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import create_app
from econtract import db
from econtract.clients import create_client
from econtract.config import ConfigurationError, Settings
from econtract.ratelimit import RateLimitedError, RateLimiter
from econtract.services import Services
from tests.factories import OPERATOR
from tests.licences import issue_example, qr_token

REDIS_URL = "redis://127.0.0.1:6379/0"
# Nothing listens on port 1: the connection is refused at once.
DEAD_REDIS_URL = "redis://127.0.0.1:1/0"


def app_with(services: Services, **changes: Any) -> FastAPI:
    """The API of the initialised registry with some settings changed."""
    settings = Settings(
        **(services.settings.model_dump() | changes),
        _env_file=None,
    )
    return create_app(settings)


def upload(client: TestClient) -> httpx.Response:
    # Not a PDF: refused by the worker at once, which is all a count needs.
    response: httpx.Response = client.post(
        "/v1/verify", files={"file": ("x.pdf", b"hello", "application/pdf")}
    )
    return response


def new_client(services: Services) -> tuple[str, str]:
    """A new API client of the demo department: its id and secret."""
    with db.transaction(services.sessions) as session:
        api_client, secret = create_client(
            session,
            department_code="11330100002502899U",
            name="审批系统",
            scopes="read",
            actor=OPERATOR,
        )
    return api_client.id, secret


def ask_token(client: TestClient, client_id: str, secret: str) -> httpx.Response:
    response: httpx.Response = client.post(
        "/v1/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    return response


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:econtract:problem:rate-limited"
    assert 1 <= int(response.headers["retry-after"]) <= 60


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own in the machine's Redis, its keys removed afterwards."""
    prefix = f"econtract-test-{secrets.token_hex(6)}"
    yield prefix
    RateLimiter(limits={}, redis_url=REDIS_URL, key_prefix=prefix).storage.reset()


def test_uploads_past_the_limit_are_refused_with_retry_after(initialised: Services) -> None:
    with TestClient(app_with(initialised, rate_verify="2/minute")) as client:
        assert [upload(client).status_code for _ in range(2)] == [415, 415]
        assert_rate_limited(upload(client))
        # Another address has a window of its own.
        other = TestClient(client.app, client=("192.0.2.7", 4000))
        assert upload(other).status_code == 415


def test_qr_pages_past_the_limit_are_refused(initialised: Services) -> None:
    certificate = issue_example(initialised)
    url = f"/v/{qr_token(initialised, certificate)}"
    with TestClient(app_with(initialised, rate_qr="3/minute")) as client:
        assert [client.get(url).status_code for _ in range(3)] == [200, 200, 200]
        assert_rate_limited(client.get(url))


def test_a_right_secret_is_never_counted(initialised: Services) -> None:
    client_id, secret = new_client(initialised)
    with TestClient(app_with(initialised, rate_token_failures="2/minute")) as client:
        assert {ask_token(client, client_id, secret).status_code for _ in range(5)} == {200}


def test_a_client_id_under_attack_is_locked_for_the_window_from_every_address(
    initialised: Services,
) -> None:
    attacked_id, attacked_secret = new_client(initialised)
    bystander_id, bystander_secret = new_client(initialised)
    app = app_with(initialised, rate_token_failures="3/minute")
    with TestClient(app, client=("198.51.100.1", 4000)) as attacker:
        for _ in range(3):
            assert (
                ask_token(attacker, attacked_id, "guess-" + secrets.token_hex(4)).status_code == 401
            )
        assert_rate_limited(ask_token(attacker, attacked_id, "guess"))
        owner = TestClient(app, client=("203.0.113.9", 4000))
        # The right secret from elsewhere waits out the window too: that is what stops guessing.
        assert_rate_limited(ask_token(owner, attacked_id, attacked_secret))
        # Another client is not slowed by the failures of this one.
        assert ask_token(owner, bystander_id, bystander_secret).status_code == 200


def test_an_address_that_guesses_many_client_ids_is_locked(initialised: Services) -> None:
    client_id, secret = new_client(initialised)
    with TestClient(app_with(initialised, rate_token_failures="3/minute")) as client:
        for _ in range(3):
            unknown = "unknown-" + secrets.token_hex(4)
            assert ask_token(client, unknown, "guess").status_code == 401
        assert_rate_limited(ask_token(client, client_id, secret))
        elsewhere = TestClient(client.app, client=("203.0.113.10", 4000))
        assert ask_token(elsewhere, client_id, secret).status_code == 200


def test_two_instances_sharing_redis_share_the_count(
    initialised: Services, redis_prefix: str
) -> None:
    shared = {"rate_verify": "3/minute", "redis_url": REDIS_URL, "rate_key_prefix": redis_prefix}
    first = TestClient(app_with(initialised, **shared))
    second = TestClient(app_with(initialised, **shared))
    assert [upload(first).status_code for _ in range(2)] == [415, 415]
    assert upload(second).status_code == 415
    assert_rate_limited(upload(second))
    assert_rate_limited(upload(first))


def test_the_limits_fail_open_with_a_warning_when_redis_is_down(
    initialised: Services, capsys: pytest.CaptureFixture[str]
) -> None:
    app = app_with(initialised, rate_verify="1/minute", redis_url=DEAD_REDIS_URL)
    client = TestClient(app)
    capsys.readouterr()
    assert [upload(client).status_code for _ in range(3)] == [415, 415, 415]
    records = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    warnings = [r for r in records if r["logger"] == "econtract.ratelimit"]
    # One warning for the outage, not one per request.
    assert [(r["level"], r["message"]) for r in warnings] == [
        ("warning", "rate limits are not enforced: their store cannot be reached")
    ]
    assert "Connection refused" in warnings[0]["reason"]


def test_the_limits_are_enforced_again_when_redis_is_back(redis_prefix: str) -> None:
    limiter = RateLimiter(
        limits={"verify": "1/minute"}, redis_url=REDIS_URL, key_prefix=redis_prefix
    )
    # As after an outage whose pause is over: the next call asks Redis again.
    limiter._down_until = 1.0
    limiter.hit("verify", "address:a")
    with pytest.raises(RateLimitedError, match="1 per 1 minute"):
        limiter.hit("verify", "address:a")


def test_an_empty_limit_is_no_limit() -> None:
    limiter = RateLimiter(limits={"verify": "", "qr": "1/minute"})
    for _ in range(5):
        limiter.hit("verify", "address:a")
    limiter.hit("qr", "address:a")
    with pytest.raises(RateLimitedError):
        limiter.hit("qr", "address:a")


def test_a_limit_in_a_wrong_notation_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="rate limit verify"):
        RateLimiter(limits={"verify": "thirty a minute"})
