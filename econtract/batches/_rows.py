"""An upload's rows: CSV (as the local ``econtract batch issue`` reads it) or JSON lines.

Only what costs nothing is checked here: that a row is a set of fields at all. A row that is
not becomes a failed row with its reason; the fields themselves are checked by issuance, row
by row, so that one bad row never refuses the batch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from econtract.batch import parse_csv, row_fields
from econtract.batches._store import ParsedRow
from econtract.errors import EContractError, InvalidInputError

#: The media types a batch is uploaded as.
CSV_TYPE = "text/csv"
NDJSON_TYPE = "application/x-ndjson"

#: The most rows one batch takes; a larger file is split by its sender.
MAX_ROWS = 100_000


@dataclass(frozen=True)
class Upload:
    """An upload's rows and the SHA-256 of its bytes (what a resubmission is compared on)."""

    rows: list[ParsedRow]
    digest: str


def parse_upload(raw: bytes, media_type: str) -> Upload:
    """The rows of an upload of ``media_type`` (:data:`CSV_TYPE` or :data:`NDJSON_TYPE`)."""
    if media_type == CSV_TYPE:
        rows = _csv_rows(raw)
    elif media_type == NDJSON_TYPE:
        rows = _ndjson_rows(raw)
    else:
        raise InvalidInputError(
            f"A batch is uploaded as {CSV_TYPE} or {NDJSON_TYPE}, not {media_type or 'untyped'}.",
            errors=[("/file", "unsupported media type")],
        )
    if len(rows) > MAX_ROWS:
        raise InvalidInputError(
            f"A batch holds at most {MAX_ROWS} rows; this one has {len(rows)}.",
            errors=[("/file", "too many rows")],
        )
    return Upload(rows=rows, digest=hashlib.sha256(raw).hexdigest())


def _csv_rows(raw: bytes) -> list[ParsedRow]:
    try:
        parsed = parse_csv(raw, name="The upload")
    except EContractError as exc:
        raise InvalidInputError(exc.message, errors=[("/file", "not CSV")]) from None
    rows = []
    # Row 1 is the header, so the numbers are those a spreadsheet shows.
    for number, row in enumerate(parsed.rows, start=2):
        fields = row_fields(row)
        errors = () if fields else (("/", "the row has no fields"),)
        rows.append(ParsedRow(row=number, fields=fields, errors=errors))
    return rows


def _ndjson_rows(raw: bytes) -> list[ParsedRow]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInputError(
            "The upload is not UTF-8 text.", errors=[("/file", "not UTF-8")]
        ) from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue  # a blank line (the last one, often) is no row
        try:
            value = json.loads(line)
        except ValueError:
            rows.append(ParsedRow(row=number, errors=(("/", "not JSON"),)))
            continue
        if not isinstance(value, dict) or not value:
            rows.append(ParsedRow(row=number, errors=(("/", "not a JSON object of fields"),)))
            continue
        rows.append(ParsedRow(row=number, fields=value))
    return rows
