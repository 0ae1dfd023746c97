"""Writing a file so that it appears whole or not at all."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from econtract.errors import EContractError


def write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` through a temporary name beside it, renamed into place when ``write``
    returns: a reader, or a crash, never sees half a file.

    ``EContractError`` (one line) when the file cannot be written; the temporary file is
    removed.
    """
    partial = path.with_name(f".{path.name}.part")
    try:
        try:
            with partial.open("wb") as out:
                write(out)
            os.replace(partial, path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise EContractError(f"Cannot write {path}: {exc.strerror}.") from None
