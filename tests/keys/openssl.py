"""Running the openssl command line in tests."""

from __future__ import annotations

import subprocess
from pathlib import Path


def openssl(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``openssl`` with ``args``; with ``check``, a non-zero exit fails with its output."""
    result = subprocess.run(
        ["openssl", *(str(a) for a in args)], capture_output=True, text=True, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"openssl {' '.join(map(str, args))} failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result
