"""Scaling benchmark: HTTP issuance on PostgreSQL with one worker, two workers, and two
instances of the service.

Run (the URL defaults to the machine's ``test`` database)::

    .venv/bin/python -m bench.bench_scaling [--database-url URL] [--seconds 30]
        [--concurrency 8] [--blob-store database|disk]

Three configurations, each on a schema of its own of the database (made empty, dropped at the
end), a fresh data directory and the blob store ``--blob-store`` (default ``database``, the
store two instances need, so that the three are alike):

1. one ``econtract serve --workers 1``;
2. one ``econtract serve --workers 2``;
3. two ``econtract serve --workers 1`` on the same schema, the second with a data directory of
   its own that holds only a copy of the first's key files (as two machines holding the same
   key material would).

Each is issued business licences over HTTP (``POST /v1/certificates``, a holder of its own per
request) by the load generator of ``bench/load.py`` in a process of its own, at
``--concurrency`` requests in flight for ``--seconds`` after a 3 s warm-up, as
``bench.bench_issuance`` does. In the two-instance case two generators run at once, one per
instance, with half the concurrency each and disjoint holders, as a load balancer spreading
connections evenly would. It prints, for each, certificates per second, p50 and p99 latency,
errors, the server CPU per certificate, the number counter's lock time and how the
generators' connections were split over the server processes in the middle of the window
(``econtract serve --workers 2`` hands each new connection to the worker with the fewest open
ones: 4/4 for 8 connections); then the ratios
2 workers / 1 worker (target at least 1.7x on a 2-core machine) and 2 instances / 1 instance.
It exits non-zero when a run had errors or issued a number twice.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import os
import secrets
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import create_engine, text

from bench.bench_issuance import (
    TYPE_CODE,
    connections_per_process,
    distinct_holders,
    number_lock_quantiles,
)
from bench.load import (
    EContractServer,
    LoadResult,
    LoadSpec,
    econtract_server,
    process_group_cpu,
    run_load,
)

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
_TARGET_WORKERS = 1.7
_WARMUP_SECONDS = 3.0
# The service issues far fewer than 100 licences a second here: a holder per request for
# every request a run can make.
_HOLDERS_PER_SECOND = 100


@dataclass(frozen=True)
class Figures:
    """What one configuration measured."""

    label: str
    results: tuple[LoadResult, ...]
    """One load result per generator (one per instance)."""
    server_cpu_per_certificate: float
    """CPU seconds of every server process, per request made (warm-up included)."""
    locks: tuple[str, ...]
    """The number counter's lock time, as each instance's ``/metrics`` gives it."""
    connections: tuple[int, ...]
    """Open connections per server process in the middle of the window, most first."""

    @property
    def per_second(self) -> float:
        """Certificates per second, every generator together."""
        return sum(result.per_second for result in self.results)

    @property
    def errors(self) -> int:
        """Errors over the whole run, every generator together."""
        return sum(result.errors for result in self.results)

    @property
    def numbers(self) -> list[str]:
        """The number of every certificate issued (warm-up included)."""
        return [number for result in self.results for number in result.collected]


def _spec(
    server: EContractServer, bodies: tuple[str, ...], concurrency: int, seconds: float, engine: str
) -> LoadSpec:
    """Issuance of a licence per body on ``server``, as ``bench.bench_issuance`` loads it."""
    return LoadSpec(
        port=server.port,
        method="POST",
        paths=("/v1/certificates",),
        headers={"Content-Type": "application/json"},
        bodies=bodies,
        concurrency=concurrency,
        seconds=seconds,
        warmup_seconds=_WARMUP_SECONDS,
        auth=server.auth(),
        collect="number",
        engine=engine,
        # Every request is a new case: a key sent twice would replay the first certificate.
        unique_header="Idempotency-Key",
    )


def measure(
    label: str, servers: list[EContractServer], concurrency: int, seconds: float, engine: str
) -> Figures:
    """Issue on every server at once (the concurrency shared between them) and gather."""
    holders = distinct_holders(int((seconds + _WARMUP_SECONDS) * _HOLDERS_PER_SECOND))
    bodies = [json.dumps({"type": TYPE_CODE, "fields": f}, ensure_ascii=False) for f in holders]
    share = len(servers)
    # Disjoint holders per instance: a holder holds one valid licence of a type, so a holder
    # issued on both would be refused on the second.
    specs = [
        _spec(server, tuple(bodies[index::share]), concurrency // share, seconds, engine)
        for index, server in enumerate(servers)
    ]
    before = sum(process_group_cpu(server.process_group) for server in servers)
    connections: list[int] = []
    middle = threading.Timer(
        _WARMUP_SECONDS + seconds / 2,
        lambda: connections.extend(connections_per_process([s.port for s in servers])),
    )
    middle.start()
    with ThreadPoolExecutor(max_workers=share) as pool:
        results = tuple(pool.map(run_load, specs))
    middle.join()
    used = sum(process_group_cpu(server.process_group) for server in servers) - before
    requests = sum(result.total_requests for result in results)
    locks = tuple(number_lock_quantiles(server.port) for server in servers)
    for server in servers:
        for line in server.log_problems() if any(r.errors for r in results) else []:
            print(f"  server log (port {server.port}): {line}")
    return Figures(label, results, used / max(requests, 1), locks, tuple(connections))


@contextlib.contextmanager
def fresh_schema(database_url: str) -> Iterator[str]:
    """A new empty schema of the database, dropped on leaving; yields a URL that uses it."""
    schema = f"bench_scaling_{secrets.token_hex(4)}"
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in database_url else "?"
        yield f"{database_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def run_configuration(
    label: str, workers: int, instances: int, args: argparse.Namespace
) -> Figures:
    """Start ``instances`` servers of ``workers`` workers on a fresh schema and measure."""
    with fresh_schema(args.database_url) as url:
        settings = {
            "ECONTRACT_DATABASE_URL": url,
            "ECONTRACT_BLOB_STORE": args.blob_store,
            # Every instance must open the same key files.
            "ECONTRACT_KEY_PASSPHRASE": base64.urlsafe_b64encode(os.urandom(24)).decode(),
        }
        with contextlib.ExitStack() as stack:
            first = stack.enter_context(econtract_server(workers, settings))
            servers = [first]
            for _ in range(instances - 1):
                servers.append(
                    stack.enter_context(econtract_server(workers, settings, instance_of=first))
                )
            return measure(label, servers, args.concurrency, args.seconds, args.engine)


def _print(figures: Figures) -> None:
    print(f"{figures.label:<40} {figures.per_second:10.1f} certs/s")
    for index, result in enumerate(figures.results):
        name = f"  instance {index + 1}" if len(figures.results) > 1 else ""
        print(f"{name:<40} {result.summary('certs/s')}")
    numbers = figures.numbers
    distinct = "yes" if len(set(numbers)) == len(numbers) else "NO"
    # The cores the servers got: on a shared machine, 2 workers can only scale as far as
    # a second core is free, which this shows next to the rate.
    cores = figures.per_second * figures.server_cpu_per_certificate
    print(
        f"{'':<40} server CPU {1000 * figures.server_cpu_per_certificate:.1f} ms per "
        f"certificate = {cores:.2f} cores busy; {len(numbers)} issued, numbers distinct: "
        f"{distinct}; errors {figures.errors}"
    )
    split = "/".join(str(n) for n in figures.connections) or "unknown"
    print(f"{'':<40} connections per server process mid-window: {split}")
    for index, lock in enumerate(figures.locks):
        print(f"{'':<40} number lock (instance {index + 1}): {lock}")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, measure the three configurations and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("ECONTRACT_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="a PostgreSQL database the benchmark may make schemas in",
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each run")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    parser.add_argument("--blob-store", choices=("database", "disk"), default="database")
    parser.add_argument("--engine", choices=("raw", "httpx"), default="raw")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.concurrency < 2 or args.concurrency % 2:
        parser.error("--seconds must be positive and --concurrency an even number >= 2")
    logging.disable(logging.WARNING)
    print("Scaling benchmark (HTTP issuance on PostgreSQL)")
    print(
        f"  {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; concurrency "
        f"{args.concurrency}, {args.seconds:g} s after {_WARMUP_SECONDS:g} s of warm-up; "
        f"blob store {args.blob_store}; a fresh schema per configuration"
    )
    print()
    one = run_configuration("1 instance, --workers 1", 1, 1, args)
    _print(one)
    two_workers = run_configuration("1 instance, --workers 2", 2, 1, args)
    _print(two_workers)
    two_instances = run_configuration("2 instances, --workers 1 each", 1, 2, args)
    _print(two_instances)
    print()
    ratio = two_workers.per_second / max(one.per_second, 1e-9)
    verdict = "met" if ratio >= _TARGET_WORKERS else "MISSED"
    print(f"{'2 workers / 1 worker':<40} {ratio:10.2f}x  target >= {_TARGET_WORKERS}x: {verdict}")
    ratio = two_instances.per_second / max(one.per_second, 1e-9)
    print(f"{'2 instances / 1 instance':<40} {ratio:10.2f}x  (same machine: the 2 cores shared)")
    runs = (one, two_workers, two_instances)
    if any(f.errors or len(set(f.numbers)) != len(f.numbers) for f in runs):
        raise SystemExit("A run had errors or issued a number twice.")


if __name__ == "__main__":
    main()
