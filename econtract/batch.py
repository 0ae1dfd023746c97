"""Batch issuance from a CSV file: resumable, one result line per row."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from econtract import audit
from econtract.csvsafe import csv_text
from econtract.errors import EContractError, InvalidInputError
from econtract.files import write_atomically
from econtract.issuance import IdempotencyKey, IssueRequest, issue_certificate, request_hash
from econtract.services import Services

RESULT_COLUMNS = ("row", "status", "certificate_id", "number", "file", "error")


@dataclass(frozen=True)
class BatchInput:
    """The rows of a batch file and the digest that names the run."""

    rows: list[dict[str, str]]
    digest: str


def load_batch(csv_file: Path) -> BatchInput:
    """Read a CSV file (UTF-8, with or without a BOM; a header row of field names)."""
    try:
        raw = csv_file.read_bytes()
    except OSError as exc:
        raise EContractError(f"Cannot read {csv_file}: {exc.strerror}.") from None
    return parse_csv(raw, name=str(csv_file))


def parse_csv(raw: bytes, *, name: str) -> BatchInput:
    """The rows of CSV bytes (UTF-8, with or without a BOM; a header row of field names);
    ``name`` says what the bytes are in an error."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise EContractError(f"{name} is not UTF-8 text.") from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise EContractError(f"{name} has no header row.")
    rows = [{k: (v or "").strip() for k, v in row.items() if k} for row in reader]
    return BatchInput(rows=rows, digest=hashlib.sha256(raw).hexdigest())


def row_fields(row: dict[str, str]) -> dict[str, Any]:
    """A row's fields: empty cells are left out, so that optional fields stay optional."""
    return {k: v for k, v in row.items() if v != ""}


def run_batch(
    services: Services,
    *,
    type_code: str,
    batch: BatchInput,
    department: str,
    out_dir: Path,
    advance: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Issue every row; write ``<number>.pdf`` files and ``results.csv`` into ``out_dir``.

    Each row's idempotency key is the file's digest and the row's number, so a second run
    over the same file returns the certificates issued before instead of issuing again.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    blobs = services.blobs
    actor = audit.Actor.operator("batch")
    owner = f"batch:{department}"
    results: list[dict[str, str]] = []
    issued = replayed = failed = 0
    for index, row in enumerate(batch.rows, start=2):  # row 1 is the header
        fields = row_fields(row)
        key = IdempotencyKey(
            owner,
            f"{batch.digest[:32]}:{index}",
            request_hash({"type": type_code, "fields": fields}),
        )
        try:
            outcome = issue_certificate(
                services,
                department_code=department,
                request=IssueRequest(type_code=type_code, fields=fields),
                actor=actor,
                idempotency=key,
            )
        except InvalidInputError as exc:
            detail = "; ".join(f"{p}: {m}" for p, m in exc.errors) or exc.message
            results.append({"row": str(index), "status": "failed", "error": detail})
            failed += 1
        except EContractError as exc:
            results.append({"row": str(index), "status": "failed", "error": exc.message})
            failed += 1
        else:
            certificate = outcome.certificate
            target = out_dir / f"{certificate.number}.pdf"
            if not target.exists():
                write_atomically(target, partial(blobs.copy_to, certificate.blob_key))
            results.append(
                {
                    "row": str(index),
                    "status": "replayed" if outcome.replayed else "issued",
                    "certificate_id": certificate.id,
                    "number": certificate.number,
                    "file": target.name,
                }
            )
            replayed += outcome.replayed
            issued += not outcome.replayed
        advance()
    write_results(out_dir / "results.csv", results)
    return {
        "rows": len(batch.rows),
        "issued": issued,
        "already_issued": replayed,
        "failed": failed,
        "results": str(out_dir / "results.csv"),
    }


def write_results(path: Path, results: list[dict[str, str]]) -> None:
    """Write result lines as ``results.csv`` (:data:`RESULT_COLUMNS`, through csvsafe)."""
    # A row's error quotes the input, which may start like a formula.
    text = csv_text(RESULT_COLUMNS, ([r.get(c, "") for c in RESULT_COLUMNS] for r in results))
    write_atomically(path, lambda out: out.write(text.encode("utf-8")))
