"""Batch benchmark: rows through the queue with two ``econtract worker`` processes against the
single-process local ``econtract batch issue``.

Run::

    .venv/bin/python -m bench.bench_batch [--rows 10000] [--workers 2] [--repeats 1]

Both sides issue business licences, one per row of a CSV of fresh holders (the template's
example fields with a credit code of their own), in one fresh data directory (SQLite, or a
schema of its own in the PostgreSQL database of ``--database-url``, dropped at the end)
initialised by ``econtract init``.

The project's figure: the batch is submitted as ``POST /v1/batches`` does it
(``econtract.batches.submit_batch``, then one message per row to Dramatiq on the machine's
Redis, ``--broker-url``), and ``--workers`` ``econtract worker`` processes, started and warmed
up on a two-row batch beforehand, issue the rows; the time runs from the submission until no
row is queued. The baseline: ``econtract batch issue --csv FILE --department …`` on another
CSV of ``--local-rows`` rows (all ``--rows`` by default; a sample makes a long run shorter,
since one process issues at a steady rate), in one process, timed as a person waits for it
(from the command's start to its exit). Printed: rows per second and wall time of each, the
ratio queue / local, and the load average after each side.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

from econtract.batches import ParsedRow, QueueRunner, submit_batch
from econtract.config import Settings
from econtract.csvsafe import csv_text
from econtract.models import BatchRow
from econtract.services import Services
from tests.licences import holder_fields

DEPARTMENT = "11330100002502899U"
"""The demo department ``econtract init`` creates."""
TYPE_CODE = "business_licence"
ECONTRACT = str(Path(sys.executable).with_name("econtract"))


def rows_csv(count: int) -> bytes:
    """A CSV of ``count`` rows, each a holder of its own."""
    header = list(holder_fields(TYPE_CODE))
    rows = (list(holder_fields(TYPE_CODE).values()) for _ in range(count))
    return csv_text(header, rows).encode()


def environment(
    data_dir: Path, database_url: str | None, broker_url: str, queue: str
) -> dict[str, str]:
    """The processes' environment: ours without ECONTRACT_* settings, then the bench's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECONTRACT_")}
    env.update(
        ECONTRACT_DATA_DIR=str(data_dir),
        ECONTRACT_KEY_PASSPHRASE=base64.urlsafe_b64encode(os.urandom(24)).decode(),
        ECONTRACT_BROKER_URL=broker_url,
        ECONTRACT_BATCH_QUEUE=queue,
        ECONTRACT_BATCH_THREADS="1",
    )
    if database_url:
        env["ECONTRACT_DATABASE_URL"] = database_url
    return env


@contextmanager
def workers(count: int, env: dict[str, str], cwd: Path) -> Iterator[None]:
    """``count`` ``econtract worker`` processes, stopped on leaving."""
    processes = [
        subprocess.Popen(
            [ECONTRACT, "worker"],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(count)
    ]
    try:
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)


def queued(services: Services, batch_id: str) -> int:
    with services.sessions() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(BatchRow)
                .where(BatchRow.batch_id == batch_id, BatchRow.state == "queued")
            )
            or 0
        )


def issued(services: Services, batch_id: str) -> int:
    with services.sessions() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(BatchRow)
                .where(BatchRow.batch_id == batch_id, BatchRow.state == "issued")
            )
            or 0
        )


def run_queue_batch(services: Services, runner: QueueRunner, count: int) -> float:
    """Submit ``count`` rows, wait until none is queued; the wall time in seconds."""
    parsed = [ParsedRow(row=n, fields=holder_fields(TYPE_CODE)) for n in range(1, count + 1)]
    start = time.perf_counter()
    submitted = submit_batch(
        services,
        department_code=DEPARTMENT,
        client_id="bench",
        idempotency_key=str(uuid.uuid4()),
        type_code=TYPE_CODE,
        rows=parsed,
        body_digest=uuid.uuid4().hex,
    )
    runner.submit(submitted.batch_id, submitted.queued_rows)
    while queued(services, submitted.batch_id):
        time.sleep(0.1)
    wall = time.perf_counter() - start
    done = issued(services, submitted.batch_id)
    if done != count:
        raise RuntimeError(f"the queue issued {done} of {count} rows")
    return wall


def run_local_batch(env: dict[str, str], cwd: Path, count: int) -> float:
    """``econtract batch issue`` over ``count`` fresh rows; the wall time in seconds."""
    csv_file = cwd / f"local-{uuid.uuid4().hex[:8]}.csv"
    csv_file.write_bytes(rows_csv(count))
    command = [ECONTRACT, "batch", "issue", "--type", TYPE_CODE, "--csv", str(csv_file)]
    command += ["--department", DEPARTMENT, "--out-dir", str(cwd / "out"), "--json"]
    start = time.perf_counter()
    completed = subprocess.run(command, env=env, cwd=cwd, capture_output=True, check=False)
    wall = time.perf_counter() - start
    if completed.returncode != 0:
        raise RuntimeError(f"econtract batch issue failed:\n{completed.stderr[-2000:]!r}")
    return wall


@contextlib.contextmanager
def registry(database_url: str | None) -> Iterator[str | None]:
    """The registry's URL: ``None`` (SQLite in the data directory), or a new schema of the
    PostgreSQL database, dropped on leaving."""
    if not database_url:
        yield None
        return
    schema = f"bench_batch_{secrets.token_hex(4)}"
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        # The registry's migration would create pg_trgm in the bench's schema when the database
        # lacks it, and dropping the schema would then drop it from under other schemas.
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in database_url else "?"
    try:
        yield f"{database_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def load_average() -> str:
    """The machine's load average over 1, 5 and 15 minutes."""
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    """Run both sides and print their figures and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--local-rows", type=int, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/2")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with registry(args.database_url) as database_url:
        run(args, database_url)


def run(args: argparse.Namespace, database_url: str | None) -> None:
    """Both sides on the registry of ``database_url`` (SQLite when ``None``)."""
    local_rows = args.local_rows or args.rows
    data_dir = Path(tempfile.mkdtemp(prefix="econtract-bench-batch-")).resolve()
    queue = f"econtract-bench-{uuid.uuid4().hex[:8]}"
    env = environment(data_dir, database_url, args.broker_url, queue)
    subprocess.run(
        [ECONTRACT, "init", "--json"], env=env, cwd=data_dir, check=True, capture_output=True
    )
    settings = Settings(
        _env_file=None,
        data_dir=data_dir,
        database_url=database_url,
        key_passphrase=env["ECONTRACT_KEY_PASSPHRASE"],
        broker_url=args.broker_url,
        batch_queue=queue,
    )
    services = Services(settings=settings)
    runner = QueueRunner(services)
    print(
        f"batch of {args.rows} rows ({local_rows} for the local run), {args.workers} workers,"
        f" {args.repeats} repetition(s)"
    )
    print(f"data directory {data_dir}; registry {'PostgreSQL' if database_url else 'SQLite'}")
    print(f"load average at the start {load_average()}", flush=True)
    try:
        with workers(args.workers, env, data_dir):
            run_queue_batch(services, runner, 2)  # the workers' start and first licence
            for repeat in range(1, args.repeats + 1):
                local = run_local_batch(env, data_dir, local_rows)
                local_load = load_average()
                queued_wall = run_queue_batch(services, runner, args.rows)
                local_rate, queue_rate = local_rows / local, args.rows / queued_wall
                print(f"repetition {repeat}:")
                print(
                    f"  local econtract batch issue   {local_rate:8.1f} rows/s"
                    f"  wall {local:8.1f} s for {local_rows} rows  load {local_load}"
                )
                print(
                    f"  queue, {args.workers} workers            "
                    f"{queue_rate:8.1f} rows/s  wall {queued_wall:8.1f} s"
                    f" for {args.rows} rows  load {load_average()}"
                )
                print(f"  ratio queue / local          {queue_rate / local_rate:8.2f}x", flush=True)
    finally:
        runner.stop()
        services.dispose()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
