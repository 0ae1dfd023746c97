"""What the browser is told: every page's policy and framing, nosniff on every answer, HSTS
when the service is public over https; production refuses a public URL in plain HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from econtract.config import Settings
from econtract.services import Services
from routes.security import WEB_DIR, header_text

PAGES = ("/verify", "/docs")


def policy_of(response: Any) -> dict[str, str]:
    policy = response.headers["content-security-policy"]
    pairs = (d.strip().split(" ", 1) for d in policy.split(";"))
    return dict(pairs)


@pytest.mark.parametrize("path", PAGES)
def test_a_page_forbids_inline_scripts_framing_and_referrers(
    api_client: TestClient, path: str
) -> None:
    response = api_client.get(path)
    assert response.status_code == 200
    policy = policy_of(response)
    assert policy["script-src"] == "'self'"
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    assert policy["frame-ancestors"] == "'none'"
    assert policy["default-src"] == "'none'"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in response.headers


def test_the_qr_page_carries_the_policy(api_client: TestClient) -> None:
    response = api_client.get("/v/not-a-token")
    assert response.headers["content-type"].startswith("text/html")
    assert policy_of(response)["frame-ancestors"] == "'none'"
    assert response.headers["x-frame-options"] == "DENY"


def test_json_answers_are_nosniff_without_a_page_policy(api_client: TestClient) -> None:
    for response in (api_client.get("/healthz"), api_client.get("/nope")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" not in response.headers


def test_the_pages_scripts_are_served_by_the_service(api_client: TestClient) -> None:
    for name in ("verify.js", "docs.js"):
        response = api_client.get(f"/static/{name}")
        assert response.status_code == 200
        assert "javascript" in response.headers["content-type"]


def test_no_template_runs_an_inline_script() -> None:
    for template in WEB_DIR.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), template.name
        assert not re.search(r"\son[a-z]+=", text), template.name
        # A style block is allowed by its hash: it must not change as it is rendered.
        for block in re.findall(r"<style>(.*?)</style>", text, re.DOTALL):
            assert "{{" not in block
            assert "{%" not in block


@pytest.fixture
def https_client(initialised: Services) -> Iterator[TestClient]:
    from api import create_app  # noqa: PLC0415

    settings = initialised.settings.model_copy(
        update={"public_base_url": "https://econtract.gov.example"}
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_https_service_sends_hsts(https_client: TestClient) -> None:
    for path in ("/verify", "/healthz"):
        hsts = https_client.get(path).headers["strict-transport-security"]
        assert hsts.startswith("max-age=31536000")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("line one\nline two", "line one line two"),
        ("\r\nX-Injected: 1", "X-Injected: 1"),
        ("证照 bad", "bad"),
        ("x" * 300, "x" * 199 + "~"),
    ],
)
def test_header_text_is_one_printable_ascii_line(given: str, expected: str) -> None:
    assert header_text(given) == expected


def production(public_base_url: str) -> Settings:
    return Settings(
        _env_file=None,
        mode="production",
        public_base_url=public_base_url,
        key_passphrase="a real passphrase of some length",
        secret_key="a real server secret of some length",
    )


def test_production_refuses_a_plain_http_public_url() -> None:
    with pytest.raises(ValidationError, match=r"must be an https:// URL in production"):
        production("http://econtract.gov.example")


@pytest.mark.parametrize("url", ["http://localhost:8000", "https://localhost", "http://127.0.0.1"])
def test_production_still_refuses_a_loopback_public_url(url: str) -> None:
    with pytest.raises(ValidationError, match="ECONTRACT_PUBLIC_BASE_URL"):
        production(url)


def test_production_accepts_an_https_public_url() -> None:
    assert production("https://econtract.gov.example").public_base_url.startswith("https")
