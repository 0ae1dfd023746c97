"""JSON log lines: one object per line, with the request id and the call's extra fields;
no traceback and no forged line reaches the server's log or the command line's stderr."""

from __future__ import annotations

import datetime
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from econtract.logs import (
    _utc_time,
    configure_cli_logging,
    configure_logging,
    log_request,
    request_id_var,
)
from keys.handles import KeyAlgorithm, generate_software_key
from keys.signer import KeySigner
from signing.options import SealLevel
from signing.sealer import SealIdentity
from tests.live import free_port
from tests.testpki import build_test_pki
from tests.verify import forge

ECONTRACT = str(Path(sys.executable).with_name("econtract"))


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    # Other tests quiet pyHanko's logger; these need it as the service leaves it.
    root, pyhanko = logging.getLogger(), logging.getLogger("pyhanko")
    handlers, level, pyhanko_level = root.handlers[:], root.level, pyhanko.level
    pyhanko.setLevel(logging.NOTSET)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    pyhanko.setLevel(pyhanko_level)
    logging.captureWarnings(False)


def test_a_request_log_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO")
    token = request_id_var.set("abc-123")
    try:
        logging.getLogger("econtract.api").info(
            "request", extra={"method": "GET", "path": "/v/x", "status": 200, "ms": 1.5}
        )
        logging.getLogger("econtract.api").debug("not shown at INFO")
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("econtract.api").exception("unexpected error")
    finally:
        request_id_var.reset(token)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "request"
    assert first["level"] == "info"
    assert first["logger"] == "econtract.api"
    assert first["request_id"] == "abc-123"
    assert (first["method"], first["path"], first["status"], first["ms"]) == (
        "GET",
        "/v/x",
        200,
        1.5,
    )
    assert first["time"].endswith("+00:00")
    assert second["level"] == "error"
    assert "ValueError: boom" in second["exception"]


@pytest.mark.parametrize(
    "path", ["/v/x", "/v/\u8bc1\u7167", '/v/"quoted"\\', "/v/a\x7fb\u2028c\nd"]
)
@pytest.mark.parametrize("request_id", ["abc-123", None])
def test_an_access_line_is_the_line_of_its_record(
    capsys: pytest.CaptureFixture[str], path: str, request_id: str | None
) -> None:
    # log_request writes the line itself when only the service's handler would see it.
    configure_logging("INFO")
    token = request_id_var.set(request_id)
    try:
        log_request("GET", path, 200, 1.25)
        logging.getLogger("econtract.api").info(
            "request", extra={"method": "GET", "path": path, "status": 200, "ms": 1.25}
        )
    finally:
        request_id_var.reset(token)
    written, logged = capsys.readouterr().err.splitlines()
    # The same line but for the instant (a field of its own, the first).
    assert written.partition(", ")[2] == logged.partition(", ")[2]
    assert json.loads(written)["time"].endswith("+00:00")


def test_an_access_line_is_a_record_where_another_handler_listens(
    caplog: pytest.LogCaptureFixture,
) -> None:
    configure_logging("INFO")
    logging.getLogger().addHandler(caplog.handler)
    log_request("GET", "/v/x", 404, 0.5)
    [record] = caplog.records
    assert (record.name, record.message) == ("econtract.api", "request")
    fields = tuple(record.__dict__[name] for name in ("method", "path", "status", "ms"))
    assert fields == ("GET", "/v/x", 404, 0.5)


def test_no_access_line_above_info(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("WARNING")
    log_request("GET", "/v/x", 200, 0.5)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "created",
    [0.0, 0.0005, 1.9994999, 1.9999995, 1_764_000_000.0, 1_764_000_000.9996, 1_764_000_059.999],
)
def test_the_time_of_a_line_is_the_isoformat_of_its_instant(created: float) -> None:
    # The date and time of a second are formatted once; the line shows what datetime would.
    for instant in (created, created + 1, created):
        expected = datetime.datetime.fromtimestamp(instant, datetime.UTC)
        assert _utc_time(instant) == expected.isoformat(timespec="milliseconds")


def test_a_delete_character_in_an_ascii_line_is_escaped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO")
    logging.getLogger("econtract.api").info("request", extra={"path": "/v/a\x7fb"})
    line = capsys.readouterr().err.strip()
    assert "\x7f" not in line
    assert "\\u007f" in line
    assert json.loads(line)["path"] == "/v/a\x7fb"


def test_a_newline_in_a_value_does_not_forge_a_log_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO")
    forged = '{"level": "error", "logger": "econtract.api", "message": "forged"}'
    name = f"Evil\n{forged}\u2028{forged}\x85{forged}\r{forged}\x1b[2J"
    logging.getLogger("pyhanko.sign").warning("Validation error [cert context: %s]", name)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["message"] == f"Validation error [cert context: {name}]"
    assert record["logger"] == "pyhanko.sign"


def test_a_traceback_from_another_process_is_a_field_of_its_record(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO")
    record = logging.makeLogRecord(
        {
            "name": "pyhanko.sign.diff_analysis.policies",
            "levelno": logging.WARNING,
            "levelname": "WARNING",
            "msg": "Error in diff operation between revision 1 and 2",
            "exc_text": "Traceback (most recent call last):\n  ...\nSuspiciousModification: x",
            "worker": "verification",
        }
    )
    logging.getLogger(record.name).handle(record)
    [line] = capsys.readouterr().err.splitlines()
    entry = json.loads(line)
    assert entry["exception"].startswith("Traceback")
    assert entry["worker"] == "verification"


def test_the_command_line_shows_library_records_only_at_debug(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ECONTRACT_LOG_LEVEL", raising=False)
    configure_cli_logging()
    try:
        raise ValueError("diff")
    except ValueError:
        logging.getLogger("pyhanko.sign").warning("Error in diff operation", exc_info=True)
    logging.getLogger("econtract.sealing").warning("own warning")
    [line] = capsys.readouterr().err.splitlines()
    assert json.loads(line)["message"] == "own warning"

    monkeypatch.setenv("ECONTRACT_LOG_LEVEL", "DEBUG")
    configure_cli_logging()
    logging.getLogger("pyhanko.sign").warning("Error in diff operation", exc_info=True)
    [line] = capsys.readouterr().err.splitlines()
    entry = json.loads(line)
    assert (entry["level"], entry["logger"]) == ("debug", "pyhanko.sign")


# --- the real processes ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files that make pyHanko log: an update its difference analysis fails on, a seal whose
    certificate's common name holds a newline and a JSON object, and the test PKI's root."""
    pki = build_test_pki()
    where = tmp_path_factory.mktemp("hostile")
    diff = forge.update(forge.seal(pki, level=SealLevel.B_B).pdf, forge.evil_annotation)
    handle = generate_software_key("newline-cn", KeyAlgorithm.EC_P256)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"Evil\n{FORGED}\u2028x"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Evil"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    cert = forge.handle_self_signed(handle, subject, now)
    newline_cn = forge.seal(
        pki,
        level=SealLevel.B_B,
        seal_identity=SealIdentity(
            signer=KeySigner.for_handle(handle, cert, ()), certificate=cert, chain=()
        ),
    ).pdf
    files = {
        "diff": diff,
        "newline_cn": newline_cn,
        "root": pki.root.certificate.public_bytes(Encoding.PEM),
    }
    paths = {}
    for name, data in files.items():
        paths[name] = where / f"{name}.pdf"
        paths[name].write_bytes(data)
    return paths


# A certificate's common name holds at most 64 characters.
FORGED = '{"level":"error","message":"forged"}'


def test_every_line_the_server_writes_is_one_json_object(
    hostile_files: dict[str, Path], tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "ECONTRACT_DATA_DIR": str(tmp_path / "var"),
        "ECONTRACT_KEY_PASSPHRASE": "test-passphrase-0123",
        "ECONTRACT_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "ECONTRACT_LOG_LEVEL": "INFO",
    }
    env.pop("ECONTRACT_DATABASE_URL", None)
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log_file:
        server = subprocess.Popen(
            [ECONTRACT, "serve", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(base)
            for name in ("diff", "newline_cn"):
                pdf = hostile_files[name].read_bytes()
                response = httpx.post(
                    f"{base}/v1/verify",
                    files={"file": (f"{name}.pdf", pdf, "application/pdf")},
                    timeout=60,
                )
                assert response.status_code == 200, response.text
                assert response.json()["verdict"] != "VALID"
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    text = log_path.read_text(encoding="utf-8")
    records = [json.loads(line) for line in text.split("\n") if line]
    assert all(isinstance(r, dict) for r in records)
    assert "Traceback" not in "".join(line for line in text.split("\n") if not line.startswith("{"))
    assert not [r for r in records if r.get("message") == "forged"]
    [diff] = [r for r in records if r["message"].startswith("Error in diff operation")]
    assert "SuspiciousModification" in diff["exception"]
    assert diff["request_id"]
    assert [r for r in records if f"Evil\n{FORGED}" in r["message"]]
    # Nothing a reader splits lines on is left raw.
    assert len(text.splitlines()) == len(records)


def wait_until_ready(base: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("the server did not become ready")


def test_the_command_line_prints_no_traceback_for_a_file_pyhanko_cannot_explain(
    hostile_files: dict[str, Path], tmp_path: Path
) -> None:
    env = {**os.environ, "ECONTRACT_DATA_DIR": str(tmp_path / "var")}
    env.pop("ECONTRACT_LOG_LEVEL", None)
    command = [
        ECONTRACT,
        "verify",
        str(hostile_files["diff"]),
        "--trust-root",
        str(hostile_files["root"]),
    ]
    done = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1, done.stderr
    assert "MODIFIED" in done.stdout
    assert "Traceback" not in done.stderr
    assert "Error in diff operation" not in done.stderr

    debug = subprocess.run(
        command,
        env={**env, "ECONTRACT_LOG_LEVEL": "DEBUG"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    records = [json.loads(line) for line in debug.stderr.split("\n") if line]
    [diff] = [r for r in records if r["message"].startswith("Error in diff operation")]
    assert diff["level"] == "debug"
    assert "SuspiciousModification" in diff["exception"]
