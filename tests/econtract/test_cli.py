"""The command line: every listing and creation speaks JSON; errors are one line, non-zero;
help answers at once; ``verify`` says what it did not check."""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient
from pyhanko.pdf_utils.reader import PdfFileReader

from api import create_app
from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.certificates import TRANSITIONS
from econtract.cli import EXIT_USAGE, run
from econtract.cli._documents import STATUS_ACTIONS
from econtract.cli._registry import KeyAlgorithmChoice, SealKindChoice
from econtract.config import Settings, get_settings
from econtract.issuance import TEMPLATES
from econtract.models import Certificate, SealKind
from econtract.pki import AUTHORITY_ALGORITHMS, SM2_AUTHORITIES
from econtract.seals import SEAL_ALGORITHMS
from econtract.services import Services
from econtract.translog import publish_sth
from signing.options import SealLevel
from tests.live import free_port, serve
from tests.signing.sealing import make_pdf, seal_in_a_thread
from tests.testpki import build_test_pki

ECONTRACT = str(Path(sys.executable).with_name("econtract"))


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    capsys.readouterr()
    status = run([*args, "--json"])
    out = capsys.readouterr()
    assert status == 0, out.err
    return json.loads(out.out)


def test_init_is_idempotent(cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    first = cli_json(capsys, "init")
    assert sorted(first["authorities_created"]) == sorted([*AUTHORITY_ALGORITHMS, *SM2_AUTHORITIES])
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
    # The platform body, which init registers for its platform seal, is listed too.
    platform = Settings.model_fields["platform_code"].default
    assert codes == sorted([DEMO_DEPARTMENT_CODE, "9133100015J1YG617W", platform])

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


# --- a command line that answers at once and says what it did not check -------------------


def econtract(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The installed ``econtract`` as a user runs it."""
    return subprocess.run(
        [ECONTRACT, *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=cwd,
        env=env,
    )


def test_help_and_usage_errors_load_no_database_pdf_or_server_library() -> None:
    probe = (
        "import sys\n"
        "from econtract.cli import run\n"
        "codes = [run(['--help']), run(['verify', '--help']), run(['verify'])]\n"
        "heavy = ('sqlalchemy', 'pyhanko', 'uvicorn', 'fastapi', 'alembic', 'reportlab',\n"
        "         'econtract.services', 'econtract.models', 'verify.pdf')\n"
        "print(codes, sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "[0, 0, 64] []"


def test_help_shows_flags_without_a_value_placeholder() -> None:
    for command in ([], ["verify"], ["init"], ["seals", "list"], ["seal"]):
        done = econtract(*command, "--help")
        assert done.returncode == 0, done.stderr
        assert "<bool>" not in done.stdout
    verify_help = econtract("verify", "--help").stdout
    assert "  --json " in verify_help
    assert "--trust-root PEM" in verify_help
    assert "--registry URL" in verify_help


def test_version_is_the_installed_package_version() -> None:
    done = econtract("--version")
    assert done.returncode == 0
    assert done.stdout == f"econtract {importlib.metadata.version('econtract')}\n"


def test_ids_are_never_cut_in_a_narrow_table(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    seals = cli_json(capsys, "init")["seals_created"]
    assert seals
    done = econtract("seals", "list", env={**os.environ, "COLUMNS": "60"})
    assert done.returncode == 0, done.stderr
    for seal_id in seals:
        assert seal_id in done.stdout
    assert "…" not in done.stdout


def write_fields(path: Path, **changes: Any) -> Path:
    fields = dict(TEMPLATES["business_licence"].schema["examples"][0]) | changes
    path.write_text(json.dumps(fields, ensure_ascii=False), encoding="utf-8")
    return path


def issue_licence(capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str) -> Any:
    fields = write_fields(tmp_path / f"{name}.json")
    return cli_json(
        capsys,
        "issue",
        "--type",
        "business_licence",
        "--data",
        str(fields),
        "--department",
        DEMO_DEPARTMENT_CODE,
        "-o",
        str(tmp_path / f"{name}.pdf"),
    )


def root_pem(tmp_path: Path) -> Path:
    services = Services(settings=get_settings())
    try:
        pem = services.pki.root.certificate.public_bytes(Encoding.PEM)
    finally:
        services.dispose()
    path = tmp_path / "root.pem"
    path.write_bytes(pem)
    return path


def test_supersede_replaces_a_licence_keeping_the_fields_it_does_not_name(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cli_json(capsys, "init")
    old = issue_licence(capsys, tmp_path, "old")
    changes = tmp_path / "changes.json"
    changes.write_text(json.dumps({"address": "杭州市西湖区文三路 90 号"}), encoding="utf-8")
    new = cli_json(
        capsys,
        "supersede",
        old["id"],
        "--data",
        str(changes),
        "--valid-until",
        "2031-03-23",
        "-o",
        str(tmp_path / "new.pdf"),
    )
    assert new["supersedes"] == old["id"]
    assert new["number"] != old["number"]
    assert new["holder"] == old["holder"]
    assert new["valid_until"] == "2031-03-23"
    assert hashlib.sha256((tmp_path / "new.pdf").read_bytes()).hexdigest() == new["sha256"]
    services = Services(settings=get_settings())
    try:
        with services.sessions() as session:
            replaced = session.get(Certificate, old["id"])
            successor = session.get(Certificate, new["id"])
            assert replaced is not None
            assert successor is not None
            assert replaced.status == "superseded"
            assert successor.fields["address"] == "杭州市西湖区文三路 90 号"
            assert successor.fields["name"] == replaced.fields["name"]
    finally:
        services.dispose()


def test_supersede_with_a_malformed_date_is_a_usage_error(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["supersede", "crt_x", "--valid-from", "24/03/2011"]) == EXIT_USAGE
    assert capsys.readouterr().err == (
        "usage error: --valid-from takes a date as YYYY-MM-DD, not '24/03/2011'.\n"
    )


def test_verify_of_a_missing_file_is_a_usage_error_before_anything_is_verified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    present = tmp_path / "present.pdf"
    present.write_bytes(make_pdf(1))
    status = run(["verify", str(present), str(tmp_path / "absent.pdf")])
    assert status == EXIT_USAGE
    out = capsys.readouterr()
    assert out.err == f"usage error: {tmp_path / 'absent.pdf'} does not exist.\n"
    assert out.out == ""


def test_verify_where_no_service_was_set_up_prints_one_line_and_creates_nothing(
    tmp_path: Path,
) -> None:
    (tmp_path / "licence.pdf").write_bytes(make_pdf(1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECONTRACT_")}
    done = econtract("verify", "licence.pdf", cwd=tmp_path, env=env)
    assert done.returncode == EXIT_USAGE
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("usage error: no eContract service is set up here")
    assert "--trust-root" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["licence.pdf"]


def test_offline_verify_says_the_licence_status_was_not_checked(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cli_json(capsys, "init")
    issue_licence(capsys, tmp_path, "licence")
    root = root_pem(tmp_path)
    capsys.readouterr()
    status = run(["verify", "--trust-root", str(root), str(tmp_path / "licence.pdf")])
    out = capsys.readouterr().out
    assert status == 0
    assert out.splitlines()[0] == "VALID 有效"
    [line] = [line for line in out.splitlines() if "Status not checked" in line]
    assert line.startswith("状态未核对：未查询登记库")
    assert "--registry URL" in line


def test_registry_url_turns_a_revoked_licence_revoked(
    cli_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    settings: Settings,
) -> None:
    cli_json(capsys, "init")
    licence = issue_licence(capsys, tmp_path, "licence")
    root = root_pem(tmp_path)
    offline = econtract("verify", "--trust-root", str(root), str(tmp_path / "licence.pdf"))
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert run(["revoke", licence["id"], "--reason", "吊销：未按期年报"]) == 0
    with serve(settings) as base:
        asked = econtract(
            "verify", "--trust-root", str(root), "--registry", base, str(tmp_path / "licence.pdf")
        )
    assert asked.returncode == 1, asked.stdout + asked.stderr
    lines = asked.stdout.splitlines()
    assert lines[0] == "REVOKED 已撤销"
    [registry] = [line for line in lines if "Registry:" in line]
    assert f"revoked, certificate {licence['number']}" in registry
    assert "(privilegeWithdrawn)" in registry
    assert "未按期年报" not in asked.stdout
    assert "Status not checked" not in asked.stdout


def test_an_unreachable_registry_leaves_the_status_unknown(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cli_json(capsys, "init")
    issue_licence(capsys, tmp_path, "licence")
    root = root_pem(tmp_path)
    done = econtract(
        "verify",
        "--trust-root",
        str(root),
        "--registry",
        f"http://127.0.0.1:{free_port()}",
        str(tmp_path / "licence.pdf"),
    )
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("error: Cannot reach the registry at http://127.0.0.1:")
    assert line.endswith("The files' status is unknown.")


def test_registry_without_a_trust_root_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "x.pdf").write_bytes(make_pdf(1))
    assert run(["verify", "--registry", "http://127.0.0.1:1", str(tmp_path / "x.pdf")]) == 64
    assert "--registry needs --trust-root" in capsys.readouterr().err


def test_a_seal_revoked_after_sealing_is_named_in_the_text(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cli_json(capsys, "init")
    issue_licence(capsys, tmp_path, "licence")
    [seal] = [s for s in cli_json(capsys, "seals", "list") if s["kind"] == "licence"]
    # A CRL states revocation times in whole seconds: revoke in a later second than the seal's
    # timestamp, as any real revocation is.
    time.sleep(1.1)
    cli_json(capsys, "seals", "revoke", seal["id"], "--reason", "keyCompromise")
    status = run(["verify", str(tmp_path / "licence.pdf")])
    out = capsys.readouterr().out
    assert status == 0
    [note] = [line for line in out.splitlines() if "revoked on" in line]
    assert "(keyCompromise), after it sealed this file" in note
    assert "撤销（keyCompromise），晚于盖章时间" in note


def test_verify_takes_files_and_folders_and_exits_with_the_worst_verdict(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cli_json(capsys, "init")
    folder = tmp_path / "inbox"
    (folder / "2026").mkdir(parents=True)
    issued = issue_licence(capsys, tmp_path, "licence")
    pdf = (tmp_path / "licence.pdf").read_bytes()
    (folder / "a.pdf").write_bytes(pdf)
    (folder / "2026" / "b.pdf").write_bytes(pdf + b"garbage after the end\n")
    (folder / "notes.txt").write_text("not a PDF")
    capsys.readouterr()
    status = run(["verify", "--json", str(tmp_path / "licence.pdf"), str(folder)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert status == 1
    assert [(line["file"], line["verdict"]) for line in lines] == [
        (str(tmp_path / "licence.pdf"), "VALID"),
        (str(folder / "2026" / "b.pdf"), "MODIFIED"),
        (str(folder / "a.pdf"), "VALID"),
    ]
    # Paths as a user types them (the working directory is tmp_path), so the table fits.
    status = run(["verify", "inbox/a.pdf", "licence.pdf"])
    table = capsys.readouterr().out
    assert status == 0
    assert table.count(issued["number"]) == 2
    assert table.count(issued["holder"]) == 2


def test_the_worst_verdict_counts_not_valid_above_indeterminate(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pki = build_test_pki()
    bare = seal_in_a_thread(pki, SealLevel.B_B)
    (tmp_path / "bare.pdf").write_bytes(bare)
    (tmp_path / "root.pem").write_bytes(pki.root.certificate.public_bytes(Encoding.PEM))
    (tmp_path / "changed.pdf").write_bytes(bare + b"garbage after the end\n")
    root = ["--trust-root", str(tmp_path / "root.pem")]
    assert run(["verify", *root, str(tmp_path / "bare.pdf")]) == 2
    assert run(["verify", *root, str(tmp_path / "bare.pdf"), str(tmp_path / "changed.pdf")]) == 1
    out = capsys.readouterr().out
    assert "INDETERMINATE" in out
    assert "MODIFIED" in out


def test_verify_json_is_the_api_report_with_its_transparency_section(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cli_json(capsys, "init")
    issue_licence(capsys, tmp_path, "licence")
    pdf = (tmp_path / "licence.pdf").read_bytes()
    # Both readings under one tree head that covers the licence's entry: otherwise the
    # service's publisher, due or not when the app starts, would decide whether the API's
    # reading proves the entry that the command line's reading found still waiting.
    services = Services(settings=get_settings())
    try:
        with db.transaction(services.sessions) as session:
            publish_sth(session, services.pki.log_key, clock=services.clock)
    finally:
        services.dispose()
    capsys.readouterr()
    assert run(["verify", "--json", str(tmp_path / "licence.pdf")]) == 0
    [line] = capsys.readouterr().out.splitlines()
    from_cli = json.loads(line)
    with TestClient(create_app(get_settings())) as client:
        from_api = client.post(
            "/v1/verify", files={"file": ("licence.pdf", pdf, "application/pdf")}
        ).json()
    assert from_cli.pop("file") == str(tmp_path / "licence.pdf")
    for report in (from_cli, from_api):
        report.pop("verified_at")
        # Each reading proves inclusion under the tree head of its moment.
        assert report["transparency"]["checked"] is True
    assert from_cli.keys() == from_api.keys()
    assert from_cli["transparency"]["entries"]  # the licence's entry, proved
    assert from_cli["transparency"]["entries"] == from_api["transparency"]["entries"]
    from_cli.pop("transparency")
    from_api.pop("transparency")
    assert from_cli == from_api


def test_the_choices_spelt_for_help_are_the_domain_values() -> None:
    # Every kind but the platform's, which only init creates.
    offered = [k.value for k in SealKind if k is not SealKind.PLATFORM]
    assert [c.value for c in SealKindChoice] == offered
    assert [c.value for c in KeyAlgorithmChoice] == [a.value for a in SEAL_ALGORITHMS]
    assert set(STATUS_ACTIONS) == set(TRANSITIONS)
