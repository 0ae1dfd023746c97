"""The sample data the tests and benchmarks use, kept with the project and loaded in one place."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent
"""This directory: the holders files, ``merkle_vectors.json`` and their README."""


def load_holders(name: str = "holders.csv") -> list[dict[str, str]]:
    """The rows of a sample holders file, as the CSV header names them.

    ``holders.csv`` holds 60 valid businesses (the columns are the business licence's field
    names); ``holders-bad.csv`` holds rows that must be refused, one reason each.
    """
    with (DATA_DIR / name).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def load_vectors(name: str) -> Any:
    """A published test-vector file of this directory (JSON), as parsed.

    ``merkle_vectors.json``: RFC 6962/9162 Merkle tree roots and inclusion and consistency
    proofs, hashes in hex; see its ``source`` field.
    """
    with (DATA_DIR / name).open(encoding="utf-8") as f:
        return json.load(f)
