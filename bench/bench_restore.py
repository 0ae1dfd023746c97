"""Backup and restore: how long a snapshot and a restore of N certificates take (the RTO).

    .venv/bin/python -m bench.bench_restore [--certificates N] [--repeats R]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

A fresh service in a temporary directory (SQLite, or a new schema of the PostgreSQL database
given) issues N business licences (``econtract.issuance.issue_certificate``, B-LT), then
``econtract.backup.backup`` and ``restore`` (into a fresh data directory and database each
time, its checks included) run R times. The baseline is copying the snapshot directory
as it is (``shutil.copytree``): the file copying that any restore does at the least.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from sqlalchemy import create_engine, text

from bench.bench_issuance import TYPE_CODE, distinct_holders
from econtract.backup import backup, restore
from econtract.bootstrap import DEMO_DEPARTMENT_CODE, initialise
from econtract.config import Settings
from econtract.issuance import IssueRequest, issue_certificate
from econtract.services import Services
from tests.factories import OPERATOR


@contextmanager
def created(base: str, kind: str, name: str, drop: str) -> Iterator[None]:
    """``CREATE kind name`` on the PostgreSQL server of ``base``, dropped (``DROP kind name
    drop``) afterwards."""
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE {kind} "{name}"'))
    try:
        yield
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP {kind} "{name}" {drop}'))
        admin.dispose()


@contextmanager
def schema_url(base: str | None, directory: Path) -> Iterator[str]:
    """A URL of an empty registry: SQLite in ``directory`` or a new PostgreSQL schema."""
    if base is None:
        yield f"sqlite:///{directory / 'registry.db'}"
        return
    name = f"bench_{secrets.token_hex(4)}"
    with created(base, "SCHEMA", name, "CASCADE"):
        yield f"{base}?options=-csearch_path%3D{name}"


@contextmanager
def empty_database(base: str | None, source_url: str, directory: Path) -> Iterator[str]:
    """Where a restore goes: a SQLite file in ``directory``, or a new PostgreSQL database with
    the source's search_path."""
    if base is None:
        yield f"sqlite:///{directory / 'registry.db'}"
        return
    name = f"bench_r_{secrets.token_hex(4)}"
    with created(base, "DATABASE", name, "WITH (FORCE)"):
        prefix, _, query = source_url.partition("?")
        yield f"{prefix.rsplit('/', 1)[0]}/{name}?{query}"


def timed(operation: Callable[[], object]) -> float:
    """Seconds ``operation`` took."""
    start = time.perf_counter()
    operation()
    return time.perf_counter() - start


def line(name: str, seconds: list[float]) -> str:
    """One printable line: median, min and max."""
    return (
        f"{name:<40} {statistics.median(seconds):8.2f} s  "
        f"(min {min(seconds):.2f}, max {max(seconds):.2f}, n={len(seconds)})"
    )


def main() -> None:
    """Issue, back up, restore; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--certificates", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with schema_url(args.database_url, root) as url:
            settings = Settings(
                _env_file=None,
                data_dir=root / "var",
                database_url=url,
                key_passphrase="bench-passphrase-0123",
            )
            services = Services(settings=settings)
            initialise(services)
            for fields in distinct_holders(args.certificates):
                issue_certificate(
                    services,
                    department_code=DEMO_DEPARTMENT_CODE,
                    request=IssueRequest(type_code=TYPE_CODE, fields=fields),
                    actor=OPERATOR,
                )
            backups, restores, copies = [], [], []
            for n in range(args.repeats):
                snapshot = root / f"snapshot-{n}"
                backups.append(timed(partial(backup, settings, snapshot)))
                copies.append(timed(partial(shutil.copytree, snapshot, root / f"copy-{n}")))
                target_dir = root / f"restored-{n}"
                with empty_database(args.database_url, url, target_dir) as target_url:
                    target = settings.model_copy(
                        update={"data_dir": target_dir, "database_url": target_url}
                    )
                    restores.append(timed(partial(restore, target, snapshot)))
            services.dispose()
            size = sum(f.stat().st_size for f in (root / "snapshot-0").rglob("*") if f.is_file())
    kind = "PostgreSQL" if args.database_url else "SQLite"
    print(f"{args.certificates} certificates on {kind}, snapshot {size / 1e6:.1f} MB")
    print(line("backup", backups))
    print(line("restore (checks included)", restores))
    print(line("baseline: copy of the snapshot", copies))


if __name__ == "__main__":
    main()
