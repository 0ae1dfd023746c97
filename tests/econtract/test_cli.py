"""The command line: every listing and creation speaks JSON; errors are one line, non-zero."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.cli import EXIT_USAGE, run
from econtract.config import get_settings
from econtract.pki import AUTHORITY_ALGORITHMS
from tests.signing.sealing import make_pdf

ECONTRACT = str(Path(sys.executable).with_name("econtract"))


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    capsys.readouterr()
    status = run([*args, "--json"])
    out = capsys.readouterr()
    assert status == 0, out.err
    return json.loads(out.out)


def test_init_is_idempotent(cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    first = cli_json(capsys, "init")
    assert sorted(first["authorities_created"]) == sorted(AUTHORITY_ALGORITHMS)
    assert first["department_created"] is True
    assert len(first["seals_created"]) == 2
    second = cli_json(capsys, "init")
    assert second["authorities_created"] == []
    assert second["seals_created"] == []


def test_department_seal_and_client_lifecycle(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    cli_json(capsys, "init")
    added = cli_json(
        capsys, "departments", "add", "--code", "9133100015J1YG617W", "--name", "台州市建设局"
    )
    assert added == {**added, "code": "9133100015J1YG617W", "region": "331000"}
    codes = [d["code"] for d in cli_json(capsys, "departments", "list")]
    assert codes == sorted([DEMO_DEPARTMENT_CODE, "9133100015J1YG617W"])

    seal = cli_json(
        capsys,
        "seals",
        "create",
        "--department",
        "9133100015J1YG617W",
        "--kind",
        "official",
        "--algorithm",
        "ecdsa-p256",
    )
    assert seal["status"] == "active"
    assert seal["id"].startswith("seal-")
    listed = cli_json(capsys, "seals", "list", "--department", "9133100015J1YG617W")
    assert [s["id"] for s in listed] == [seal["id"]]
    rotated = cli_json(capsys, "seals", "rotate", seal["id"])
    assert rotated["replaces"] == seal["id"]
    revoked = cli_json(capsys, "seals", "revoke", rotated["id"], "--reason", "keyCompromise")
    assert revoked["status"] == "revoked"

    client = cli_json(
        capsys, "clients", "create", "--department", "9133100015J1YG617W", "--scopes", "issue,read"
    )
    assert client["client_id"].startswith("cli_")
    assert len(client["client_secret"]) >= 40
    listed_clients = cli_json(capsys, "clients", "list")
    assert all("client_secret" not in c for c in listed_clients)
    assert cli_json(capsys, "clients", "disable", client["client_id"])["disabled"] is True


def test_unknown_department_is_one_line_and_exit_1(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    cli_json(capsys, "init")
    status = run(["seals", "create", "--department", "9133100015J1YG617W"])
    err = capsys.readouterr().err
    assert status == 1
    assert err == "error: No department with code '9133100015J1YG617W'.\n"


def test_malformed_code_is_one_line(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    cli_json(capsys, "init")
    status = run(["departments", "add", "--code", "91330100ABC", "--name", "x"])
    assert status == 1
    assert "18 characters" in capsys.readouterr().err


def test_usage_error_exits_64(cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["seals", "create"]) == EXIT_USAGE
    assert "usage error" in capsys.readouterr().err


def test_unreachable_database_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ECONTRACT_DATA_DIR": str(tmp_path),
        "ECONTRACT_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",
    }
    done = subprocess.run(
        [ECONTRACT, "init"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "ECONTRACT_DATABASE_URL" in lines[0]
    assert "unreachable" in lines[0]
    assert "Traceback" not in done.stderr


def test_production_placeholder_is_one_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ECONTRACT_DATA_DIR": str(tmp_path),
        "ECONTRACT_MODE": "production",
        "ECONTRACT_PUBLIC_BASE_URL": "https://econtract.gov.example",
    }
    env.pop("ECONTRACT_KEY_PASSPHRASE", None)
    done = subprocess.run(
        [ECONTRACT, "init"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0
    assert "ECONTRACT_KEY_PASSPHRASE" in done.stderr


def test_wrong_key_passphrase_is_one_line(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli_json(capsys, "init")
    monkeypatch.setenv("ECONTRACT_KEY_PASSPHRASE", "not-the-passphrase-at-all")
    get_settings.cache_clear()
    status = run(["seals", "create", "--department", DEMO_DEPARTMENT_CODE])
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("error: ")
    assert err.count("\n") == 1
    assert "passphrase" in err.lower()


def test_seal_writes_a_valid_sealed_file(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cli_json(capsys, "init")
    [seal] = [s for s in cli_json(capsys, "seals", "list") if s["kind"] == "official"]
    source = tmp_path / "in.pdf"
    source.write_bytes(make_pdf(2))
    out = tmp_path / "out.pdf"
    result = cli_json(
        capsys,
        "seal",
        str(source),
        "-o",
        str(out),
        "--seal",
        seal["id"],
        "--level",
        "B-T",
        "--visible",
        "2:300,200",
        "--cross-page",
    )
    assert result["level"] == "B-T"
    assert hashlib.sha256(out.read_bytes()).hexdigest() == result["sha256"]
    [signature] = PdfFileReader(io.BytesIO(out.read_bytes())).embedded_signatures
    assert signature.field_name == result["field"]


def test_seal_of_a_non_pdf_writes_nothing(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cli_json(capsys, "init")
    [seal] = [s for s in cli_json(capsys, "seals", "list") if s["kind"] == "official"]
    source = tmp_path / "in.pdf"
    source.write_bytes(b"just text")
    out = tmp_path / "out.pdf"
    status = run(["seal", str(source), "-o", str(out), "--seal", seal["id"]])
    assert status == 1
    assert capsys.readouterr().err == "error: The file is not a PDF: it has no %PDF- header.\n"
    assert not out.exists()
    assert not list(tmp_path.glob(".out.pdf*"))


def test_seal_with_an_unknown_level_is_a_usage_error(
    cli_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = run(
        [
            "seal",
            str(tmp_path / "x.pdf"),
            "-o",
            str(tmp_path / "y.pdf"),
            "--seal",
            "s",
            "--level",
            "B-XL",
        ]
    )
    assert status == EXIT_USAGE
