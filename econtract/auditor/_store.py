"""The auditor's store: a plain directory of the heads and leaf hashes fetched so far."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from econtract.auditor._findings import AuditUsageError
from econtract.files import write_atomically
from econtract.translog import HASH_SIZE, SignedTreeHead

KEY_FILE = "log_key.pem"
HEADS_DIR = "heads"
LEAVES_FILE = "leaves.bin"


class AuditStore:
    """The auditor's directory (see the module's docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.heads_dir = directory / HEADS_DIR
        self.leaves_path = directory / LEAVES_FILE
        self.key_path = directory / KEY_FILE

    def create(self) -> None:
        if self.directory.exists() and not self.directory.is_dir():
            raise AuditUsageError(f"{self.directory} is not a directory.", parameter="store")
        self.heads_dir.mkdir(parents=True, exist_ok=True)

    def require(self) -> None:
        """Refuse a path that is not a store ``fetch`` wrote: checking against nothing would
        prove nothing, and a mistyped path must not pass for an empty store."""
        if not self.directory.exists():
            raise AuditUsageError(
                f"The store {self.directory} does not exist; "
                "run `econtract audit fetch` with it first.",
                parameter="store",
            )
        if not self.heads_dir.is_dir():
            raise AuditUsageError(
                f"{self.directory} is not a store written by `econtract audit fetch` "
                f"(it has no {HEADS_DIR}/ directory).",
                parameter="store",
            )

    def key_pem(self) -> str | None:
        return self.key_path.read_text() if self.key_path.exists() else None

    def save_key(self, pem: str) -> None:
        self.key_path.write_text(pem)

    def heads(self) -> list[tuple[str, dict[str, Any] | None]]:
        """Every stored head file's name and JSON (``None`` when it does not parse)."""
        if not self.heads_dir.exists():
            return []
        out: list[tuple[str, dict[str, Any] | None]] = []
        for path in sorted(self.heads_dir.glob("*.json")):
            try:
                out.append((path.name, json.loads(path.read_text())))
            except ValueError:
                out.append((path.name, None))
        return out

    def save_head(self, sth: SignedTreeHead) -> bool:
        """Store ``sth``; ``False`` if it was already stored."""
        path = self.heads_dir / f"{sth.tree_size:020d}-{sth.timestamp:015d}.json"
        if path.exists():
            return False
        text = json.dumps(sth.to_json(), sort_keys=True, indent=1)
        write_atomically(path, lambda out: out.write(text.encode()))
        return True

    def leaves(self) -> list[bytes]:
        if not self.leaves_path.exists():
            return []
        raw = self.leaves_path.read_bytes()
        # A fetch cut short mid-write leaves a partial record; it was never verified.
        usable = len(raw) - len(raw) % HASH_SIZE
        return [raw[i : i + HASH_SIZE] for i in range(0, usable, HASH_SIZE)]

    def append_leaves(self, known: int, leaves: Sequence[bytes]) -> None:
        with self.leaves_path.open("ab") as out:
            out.truncate(known * HASH_SIZE)
            out.write(b"".join(leaves))
            out.flush()
            os.fsync(out.fileno())
