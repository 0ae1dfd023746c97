"""Batch issuance from CSV: a result per row, bad rows named, and a re-run issues nothing twice."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.cli import run
from econtract.models import Certificate
from econtract.services import Services
from tests.data import load_holders


def sample(tmp_path: Path, good: int = 4) -> Path:
    rows = load_holders()[:good]
    bad = load_holders("holders-bad.csv")
    path = tmp_path / "batch.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows + bad)
    return path


def certificates(services: Services) -> int:
    with services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Certificate)) or 0)


def test_batch_issue_and_resume(
    cli_env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    initialised: Services,
) -> None:
    source = sample(tmp_path)
    out = tmp_path / "out"
    args = [
        "batch",
        "issue",
        "--type",
        "business_licence",
        "--csv",
        str(source),
        "--department",
        DEMO_DEPARTMENT_CODE,
        "--out-dir",
        str(out),
        "--json",
    ]
    assert run(args) == 1  # three bad rows
    summary = json.loads(capsys.readouterr().out)
    assert (summary["issued"], summary["failed"]) == (4, 3)
    results = list(csv.DictReader((out / "results.csv").open(encoding="utf-8")))
    assert [r["status"] for r in results] == ["issued"] * 4 + ["failed"] * 3
    assert "/credit_code" in results[4]["error"]
    assert "/credit_code" in results[5]["error"]
    assert "/name" in results[6]["error"]
    assert len(list(out.glob("*.pdf"))) == 4
    # An interrupted run is simply run again: what was issued is not issued twice.
    (out / f"{results[0]['number']}.pdf").unlink()
    assert run(args) == 1
    again = json.loads(capsys.readouterr().out)
    assert (again["issued"], again["already_issued"]) == (0, 4)
    assert certificates(initialised) == 4
    assert (out / f"{results[0]['number']}.pdf").exists()
