"""`econtract serve --workers 2`: starts, answers, and /metrics counts across both workers."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.live import free_port

ECONTRACT = str(Path(sys.executable).with_name("econtract"))


def test_two_workers_share_their_metrics(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "ECONTRACT_DATA_DIR": str(tmp_path / "var"),
        "ECONTRACT_KEY_PASSPHRASE": "test-passphrase-0123",
        "ECONTRACT_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
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
        with httpx.Client() as client:
            for _ in range(40):
                assert (
                    client.get(f"{base}/healthz", headers={"Connection": "close"}).status_code
                    == 200
                )
        text = httpx.get(f"{base}/metrics").text
        counter = r'econtract_http_requests_total\{method="GET",route="/healthz",status="200"\}'
        match = re.search(counter + r" ([0-9.]+)", text)
        assert match is not None, text[:2000]
        assert float(match[1]) >= 40
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
