"""Modes of the data directory: only the service's own user reads or writes what it keeps.

The registry (SQLite and its WAL and shared-memory files), the sealed PDFs and the key files
hold personal data and secrets. Each directory the service makes is 0700 and each file 0600,
set where they are created rather than through the process umask, which would also hide the
files an operator asks the command line to write (``-o OUT.pdf``). :func:`restrict_tree`
brings a directory made before this rule (or copied in with other modes) into line.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_DIR = 0o700
"""The mode of every directory of the data directory."""
PRIVATE_FILE = 0o600
"""The mode of every file of the data directory."""


def make_private_dir(path: Path) -> None:
    """Create ``path`` and its missing parents with mode 0700; an existing one is left as is
    (:func:`restrict_tree` settles those)."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            continue
        # mkdir's mode passes through the umask; a umask that removes the owner's bits
        # would leave a directory the service cannot use.
        os.chmod(directory, PRIVATE_DIR)


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE)
    except FileExistsError:
        return
    os.close(fd)


def private_opener(path: str, flags: int) -> int:
    """An ``opener`` for :func:`open` and :class:`io.FileIO` that creates files 0600."""
    return os.open(path, flags, PRIVATE_FILE)


def restrict_tree(root: Path) -> list[Path]:
    """Set every directory under ``root`` (itself included) to 0700 and every file to 0600;
    return the paths whose mode changed. Symbolic links are neither followed nor changed.
    Idempotent: a second run returns nothing."""
    changed: list[Path] = []
    if not root.is_dir() or root.is_symlink():
        return changed
    for directory, dirnames, filenames in os.walk(root):
        here = Path(directory)
        if _restrict(here, PRIVATE_DIR):
            changed.append(here)
        for name in filenames:
            if _restrict(here / name, PRIVATE_FILE):
                changed.append(here / name)
        dirnames[:] = [d for d in dirnames if not (here / d).is_symlink()]
    return changed


def restrict_file(path: Path) -> bool:
    """Set the file ``path`` to 0600 if it exists; return whether its mode changed."""
    return _restrict(path, PRIVATE_FILE)


def _restrict(path: Path, mode: int) -> bool:
    try:
        info = path.lstat()
    except FileNotFoundError:
        # A staged blob or a WAL file may go between the listing and this look.
        return False
    if stat.S_ISLNK(info.st_mode) or stat.S_IMODE(info.st_mode) == mode:
        return False
    os.chmod(path, mode)
    return True
