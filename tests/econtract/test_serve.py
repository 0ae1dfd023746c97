"""`econtract serve --workers 2`: starts, answers, /metrics counts across both workers, and
every worker shows a status change made by another process at once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from econtract.certificates import change_status
from econtract.config import Settings
from econtract.services import Services
from tests.factories import OPERATOR
from tests.licences import issue_example, qr_token
from tests.live import free_port

ECONTRACT = str(Path(sys.executable).with_name("econtract"))
PASSPHRASE = "test-passphrase-0123"


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[str, Settings]]:
    """``econtract serve --workers 2`` on a fresh data directory: its URL and settings."""
    port = free_port()
    env = {
        **os.environ,
        "ECONTRACT_DATA_DIR": str(tmp_path / "var"),
        "ECONTRACT_KEY_PASSPHRASE": PASSPHRASE,
        "ECONTRACT_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("ECONTRACT_DATABASE_URL", None)
    server = subprocess.Popen(
        [ECONTRACT, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            raise AssertionError("the server did not become ready")
        yield (
            base,
            Settings(
                _env_file=None,
                data_dir=tmp_path / "var",
                key_passphrase=PASSPHRASE,
                public_base_url=base,
            ),
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_two_workers_share_their_metrics(two_workers: tuple[str, Settings]) -> None:
    base, _ = two_workers
    with httpx.Client() as client:
        for _ in range(40):
            assert client.get(f"{base}/healthz", headers={"Connection": "close"}).status_code == 200
    text = httpx.get(f"{base}/metrics").text
    counter = r'econtract_http_requests_total\{method="GET",route="/healthz",status="200"\}'
    match = re.search(counter + r" ([0-9.]+)", text)
    assert match is not None, text[:2000]
    assert float(match[1]) >= 40


def test_every_worker_shows_a_status_change_at_once(two_workers: tuple[str, Settings]) -> None:
    """The QR page's remembered answers are dropped by a write from another process."""
    base, settings = two_workers
    services = Services(settings=settings)
    try:
        certificate = issue_example(services)
        token = qr_token(services, certificate)

        def verdicts(count: int = 30) -> set[str]:
            # A new connection per request, so that both workers answer (and remember).
            return {
                httpx.get(
                    f"{base}/v/{token}",
                    headers={"Accept": "application/json", "Connection": "close"},
                ).json()["verdict"]
                for _ in range(count)
            }

        assert verdicts() == {"VALID"}
        for action, expected in (("suspend", "SUSPENDED"), ("reinstate", "VALID")):
            change_status(
                services,
                certificate_id=certificate.id,
                action=action,
                reason="test",
                actor=OPERATOR,
            )
            assert verdicts() == {expected}
        # The HTML page as well (it is rendered from the same remembered answer).
        change_status(
            services, certificate_id=certificate.id, action="revoke", reason="test", actor=OPERATOR
        )
        for _ in range(10):
            page = httpx.get(f"{base}/v/{token}", headers={"Connection": "close"}).text
            assert "REVOKED" in page
            assert "已撤销" in page
    finally:
        services.dispose()
