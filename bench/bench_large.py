"""Large-registry benchmark: the QR page and the certificate list on 1,000 and on 1,000,000
certificates, on PostgreSQL, over HTTP.

Run (the URL defaults to the machine's ``test`` database)::

    .venv/bin/python -m bench.bench_large [--database-url URL] [--certificates 1000000]
        [--issue 200] [--seconds 10] [--list-seconds 10] [--concurrency 8] [--repeats 2]

In a schema of its own (dropped at the end), ``econtract serve --workers 2`` initialises the
registry and serves it; ``--issue`` business licences are issued over the API, and their QR
codes are read back from the sealed PDFs (the tokens the QR probe asks for, each checked
VALID). Filler rows (``bench/large_registry.py``) bring the registry to 1,000 certificates of
the demo department, and then:

1. the QR page (``GET /v/{token}``, HTML, the tokens in turn; ``bench/load.py`` at
   ``--concurrency``) for ``--seconds``, ``--repeats`` times: requests per second;
2. the certificate list as the issuing department (one request in flight, bearer token of a
   client with scope ``read``), ``GET /v1/certificates?limit=50`` and the filtered
   ``GET /v1/certificates?limit=50&holder=…`` (a part of a real holder's name, looked for
   anywhere in the name, and a part of two characters, looked for at its start), each for
   ``--list-seconds``: p50 and p99.

Then the filler is replaced by ``--certificates`` minus the issued ones, loaded with SQL in
chunks and analysed (as an operator would after a bulk load), and the same figures are
measured again. Printed: both sets, the ratios large / small, and whether the targets are met
(QR throughput at least 1/1.5 of the small registry's, list p50 at most 1.5x).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import Engine, create_engine, text

from bench.bench_issuance import distinct_holders
from bench.bench_qr import read_tokens
from bench.large_registry import analyse, fill_certificates
from bench.load import EContractServer, LoadSpec, econtract_server, run_load

TYPE_CODE = "business_licence"
SMALL = 1000
"""Certificates of the small registry (the baseline)."""
_TARGET = 1.5
_HOLDER = "远航建设"
"""A part of the name of a holder of the sample rows (``holders.csv``), for the filter: looked
for anywhere in the name, and rare (a few of the issued licences, none of the filler)."""
_PREFIX = "湖州"
"""A part of one or two characters, which the list looks for at the start of the name."""
_PAGE = 50
"""The list's page: it must hold issued licences only (a filler row has no licence identifier
of the national form, so it cannot be shown), hence at least this many are issued."""
_FILLER = text("DELETE FROM certificates WHERE id LIKE 'bench\\_%'")


@dataclass(frozen=True)
class Figures:
    """What one registry size measured."""

    qr_rates: tuple[float, ...]
    """QR pages per second, one per repetition."""
    list_ms: dict[str, tuple[float, float]]
    """p50 and p99 in milliseconds of each list query."""

    @property
    def qr_rate(self) -> float:
        """The median QR page rate."""
        return statistics.median(self.qr_rates)


def issue_and_read_tokens(server: EContractServer, count: int) -> list[str]:
    """Issue ``count`` licences (4 in flight) and return their QR tokens, each checked VALID."""
    headers = {"Authorization": f"Bearer {server.token()}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=120) as client:

        def issue(numbered: tuple[int, dict[str, Any]]) -> bytes:
            n, fields = numbered
            response = client.post(
                "/v1/certificates",
                json={"type": TYPE_CODE, "fields": fields},
                headers={"Idempotency-Key": f"bench-large-{n}"},
            )
            response.raise_for_status()
            pdf = client.get(response.json()["pdf_url"])
            pdf.raise_for_status()
            return pdf.content

        with ThreadPoolExecutor(max_workers=4) as pool:
            pdfs = list(pool.map(issue, enumerate(distinct_holders(count))))
    return read_tokens(server, pdfs)


def fill(engine: Engine, total: int, issued: int) -> None:
    """Replace the filler so that the registry holds ``total`` certificates, and analyse."""
    with engine.begin() as connection:
        connection.execute(_FILLER)
        department_id, seal_id = connection.execute(
            text("SELECT department_id, seal_id FROM certificates LIMIT 1")
        ).one()
    fill_certificates(
        engine,
        department_id=department_id,
        seal_id=seal_id,
        type_code=TYPE_CODE,
        count=total - issued,
    )
    analyse(engine)


def measure(server: EContractServer, tokens: list[str], args: argparse.Namespace) -> Figures:
    """The QR page's rate and the list's latencies on the registry as it is now."""
    qr_spec = LoadSpec(
        port=server.port,
        paths=tuple(f"/v/{token}" for token in tokens),
        headers={"Accept": "text/html"},
        concurrency=args.concurrency,
        seconds=args.seconds,
        warmup_seconds=2.0,
    )
    page = f"/v1/certificates?limit={_PAGE}"
    queries = {
        f"list ?limit={_PAGE}": page,
        f"list ?limit={_PAGE}&holder={_HOLDER}": f"{page}&holder={quote(_HOLDER)}",
        f"list ?limit={_PAGE}&holder={_PREFIX}": f"{page}&holder={quote(_PREFIX)}",
    }
    rates = []
    list_ms: dict[str, tuple[float, float]] = {}
    for repetition in range(1, args.repeats + 1):
        result = run_load(qr_spec)
        _check(result.errors, "GET /v/{token}", result.error_kinds)
        rates.append(result.per_second)
        print(f"  #{repetition} GET /v/{{token}}  {result.summary()}", flush=True)
    for label, path in queries.items():
        result = run_load(
            LoadSpec(
                port=server.port,
                paths=(path,),
                concurrency=1,
                seconds=args.list_seconds,
                warmup_seconds=1.0,
                auth=server.auth(),
            )
        )
        _check(result.errors, label, result.error_kinds)
        list_ms[label] = (result.p50_ms, result.p99_ms)
        print(f"  {label:<32} {result.summary()}", flush=True)
    return Figures(qr_rates=tuple(rates), list_ms=list_ms)


def _check(errors: int, label: str, kinds: dict[str, int]) -> None:
    if errors:
        raise SystemExit(f"{label}: {errors} errors {kinds}")


def report(small: Figures, large: Figures, args: argparse.Namespace) -> None:
    """Print both sets of figures, the ratios and the verdicts."""
    sizes = f"{SMALL} vs {args.certificates} certificates"
    print()
    print(f"Large registry ({sizes}, PostgreSQL, econtract serve --workers 2)")
    for label, figures in ((f"{SMALL}", small), (f"{args.certificates}", large)):
        rates = ", ".join(f"{r:.0f}" for r in figures.qr_rates)
        print(f"  QR page, {label:>9} certificates  {figures.qr_rate:8.1f} req/s  ({rates})")
    throughput = large.qr_rate / small.qr_rate
    verdict = "met" if throughput >= 1 / _TARGET else "NOT met"
    print(f"  ratio large / small {throughput:27.2f}x  (target >= {1 / _TARGET:.2f}x: {verdict})")
    for query in small.list_ms:
        for label, figures in ((f"{SMALL}", small), (f"{args.certificates}", large)):
            p50, p99 = figures.list_ms[query]
            print(f"  {query}, {label:>9}  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms")
        ratio = large.list_ms[query][0] / small.list_ms[query][0]
        verdict = "met" if ratio <= _TARGET else "NOT met"
        print(f"  ratio p50 large / small {ratio:23.2f}x  (target <= {_TARGET}x: {verdict})")


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the benchmark in a schema of its own, drop the schema."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "ECONTRACT_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--certificates", type=int, default=1_000_000)
    parser.add_argument("--issue", type=int, default=200, help="licences issued for real")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of a QR run")
    parser.add_argument("--list-seconds", type=float, default=10.0, help="per list query")
    parser.add_argument("--concurrency", type=int, default=8, help="QR requests in flight")
    parser.add_argument("--repeats", type=int, default=2, help="QR runs per registry size")
    args = parser.parse_args(argv)
    if not _PAGE <= args.issue < SMALL < args.certificates:
        parser.error(f"--issue must be {_PAGE} to {SMALL - 1} and --certificates above {SMALL}")

    schema = f"bench_large_{secrets.token_hex(4)}"
    admin = create_engine(args.database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        # The registry's migration would create pg_trgm in the bench's schema when the database
        # lacks it, and dropping the schema would then drop it from under other schemas.
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in args.database_url else "?"
    url = f"{args.database_url}{sep}options=-csearch_path%3D{schema}"
    engine = create_engine(url)
    try:
        with econtract_server(workers=2, settings={"ECONTRACT_DATABASE_URL": url}) as server:
            print(f"Issuing {args.issue} licences over the API ...", flush=True)
            tokens = issue_and_read_tokens(server, args.issue)
            fill(engine, SMALL, args.issue)
            print(f"Registry of {SMALL} certificates:", flush=True)
            small = measure(server, tokens, args)
            print(f"Loading to {args.certificates} certificates ...", flush=True)
            started = time.perf_counter()
            fill(engine, args.certificates, args.issue)
            print(f"  loaded and analysed in {time.perf_counter() - started:.0f} s", flush=True)
            print(f"Registry of {args.certificates} certificates:", flush=True)
            large = measure(server, tokens, args)
        report(small, large, args)
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
