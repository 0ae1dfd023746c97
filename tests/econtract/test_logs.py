"""JSON log lines: one object per line, with the request id and the call's extra fields."""

from __future__ import annotations

import json
import logging

import pytest

from econtract.logs import configure_logging, request_id_var


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
