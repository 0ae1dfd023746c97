"""CSV that a spreadsheet opens as data: no cell is ever read as a formula.

A cell beginning with ``=``, ``+``, ``-`` or ``@`` is a formula to Excel, LibreOffice and
WPS, and a tab or carriage return before one hides it; a formula such as
``=HYPERLINK(...)`` can leak the sheet or run a command when the export is opened. As OWASP
recommends ("CSV Injection"), such a cell is prefixed with a single quote, the rest kept as
it is, and every field is quoted. Every CSV the service writes goes through :func:`csv_text`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

#: The characters that make a spreadsheet read a cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: object) -> str:
    """``value`` as the text of one cell, neutralised if a spreadsheet would run it."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A header and rows as CSV text, every field quoted and neutralised."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, quoting=csv.QUOTE_ALL)
    writer.writerow([spreadsheet_cell(name) for name in header])
    for row in rows:
        writer.writerow([spreadsheet_cell(value) for value in row])
    return out.getvalue()
