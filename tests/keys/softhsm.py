"""SoftHSM2 tokens for tests: a private token directory and config per test session."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SOFTHSM2_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
"""Where Debian and Ubuntu install the SoftHSM2 PKCS#11 module."""

SO_PIN = "1234"
"""The security officer PIN of test tokens."""


def softhsm_available() -> bool:
    """Whether the SoftHSM2 module and ``softhsm2-util`` are installed."""
    return SOFTHSM2_MODULE.is_file() and shutil.which("softhsm2-util") is not None


def init_softhsm_token(tmpdir: Path, label: str, pin: str) -> dict[str, str]:
    """Create a token labelled ``label`` with user PIN ``pin`` in a new directory under ``tmpdir``.

    Returns the environment variables (``SOFTHSM2_CONF``) to set before the module is
    initialised in this process; a process that already initialised the module must call
    :func:`keys.pkcs11store.restart_module` after setting them, because SoftHSM2 reads its
    configuration at C_Initialize only.
    """
    tokens = tmpdir / "softhsm-tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = tmpdir / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n",
        encoding="utf-8",
    )
    env = {"SOFTHSM2_CONF": str(conf)}
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            label,
            "--so-pin",
            SO_PIN,
            "--pin",
            pin,
        ],
        check=True,
        capture_output=True,
        env={**os.environ, **env},
    )
    return env
