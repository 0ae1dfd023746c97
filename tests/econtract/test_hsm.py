"""The whole service on a PKCS#11 token (SoftHSM2): no private key ever touches the disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.config import Settings
from tests.keys.softhsm import SOFTHSM2_MODULE, init_softhsm_token

ECONTRACT = str(Path(sys.executable).with_name("econtract"))
PIN = "5678"


@pytest.fixture
def hsm_env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    """Environment for a CLI process that keeps every key on a fresh SoftHSM2 token."""
    env = init_softhsm_token(tmp_path, "econtract-e2e", PIN)
    return {
        **os.environ,
        **env,
        "ECONTRACT_DATA_DIR": str(settings.data_dir),
        "ECONTRACT_DATABASE_URL": settings.effective_database_url,
        "ECONTRACT_KEY_STORE": "pkcs11",
        "ECONTRACT_PKCS11_MODULE": str(SOFTHSM2_MODULE),
        "ECONTRACT_PKCS11_TOKEN": "econtract-e2e",
        "ECONTRACT_PKCS11_PIN": PIN,
    }


def econtract(env: dict[str, str], *args: str) -> Any:
    done = subprocess.run(
        [ECONTRACT, *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_init_and_seals_on_the_token(hsm_env: dict[str, str], settings: Settings) -> None:
    report = econtract(hsm_env, "init")
    assert len(report["authorities_created"]) == 5
    assert len(report["seals_created"]) == 2
    seal = econtract(
        hsm_env,
        "seals",
        "create",
        "--department",
        DEMO_DEPARTMENT_CODE,
        "--kind",
        "contract",
        "--algorithm",
        "rsa-3072",
    )
    rotated = econtract(hsm_env, "seals", "rotate", seal["id"])
    assert rotated["replaces"] == seal["id"]
    keys_dir = settings.data_dir / "keys"
    assert not keys_dir.exists() or not any(keys_dir.iterdir())


def test_missing_token_is_one_line(hsm_env: dict[str, str]) -> None:
    env = {**hsm_env, "ECONTRACT_PKCS11_TOKEN": "no-such-token"}
    done = subprocess.run(
        [ECONTRACT, "init"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "no-such-token" in done.stderr


def test_wrong_pin_is_one_line(hsm_env: dict[str, str]) -> None:
    env = {**hsm_env, "ECONTRACT_PKCS11_PIN": "0000"}
    done = subprocess.run(
        [ECONTRACT, "init"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "PIN" in done.stderr.upper()
