"""Sharing benchmark: a using department's lookup by holder on a large registry, and what
recording uses costs issuance.

Run (PostgreSQL; the URL defaults to the machine's ``test`` database)::

    .venv/bin/python -m bench.bench_sharing [--database-url URL] [--certificates 1000000]
        [--usage 100000] [--lookups 500] [--issue 30] [--repeats 3] [--lookup-rate 20]

In a schema of its own (dropped at the end), the registry is initialised and a using
department is granted business licences for one matter. ``--holders`` (1,000) business
licences are issued for real, to holders with codes of their own. Then:

1. Lookup by holder (``econtract.sharing.lookup_licences``, the use case behind
   ``POST /v1/use/lookup``, its usage record and log entry included), ``--lookups`` times for
   holders drawn at random, on the registry of 1,000 certificates; then the registry is
   loaded with SQL (``bench/large_registry.py``) to ``--certificates`` certificates and
   ``--usage`` usage records, analysed, and the same lookups are timed again. Printed: p50
   and p99 of each and the ratio of the p50s (target: at most 1.5x).
2. Issuance (``econtract.issuance.issue_certificate`` in this process, ``--issue``
   licences per repetition) alone, and while another process looks licences up at
   ``--lookup-rate`` per second, each appending its usage record and log entry: the ratio of
   the rates (target: at least 0.9, that is, recording uses slows issuance by at most 10%).
   The two alternate, ``--repeats`` times each; medians are compared.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from multiprocessing.synchronize import Event
from pathlib import Path

from sqlalchemy import create_engine, select, text

import econtract.sharing._use
from bench.bench_issuance import distinct_holders
from bench.large_registry import analyse, fill_certificates, fill_usage
from econtract import audit, db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE, initialise
from econtract.config import Settings
from econtract.departments import add_department
from econtract.issuance import IssueRequest, issue_certificate
from econtract.licence_metadata import HolderType
from econtract.models import Certificate, Department
from econtract.services import Services
from econtract.sharing import UseContext, add_grant, lookup_licences
from econtract.uscc import check_character, organisation_check_character

TYPE_CODE = "business_licence"
MATTER = "建筑工程施工许可证核发"
USING_DEPARTMENT_NAME = "杭州市城乡建设委员会"
ACTOR = audit.Actor.operator("bench")
_LOOKUP_TARGET = 1.5
_ISSUE_TARGET = 0.9


def _settings(url: str, data_dir: Path) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=data_dir,
        database_url=url,
        key_passphrase="bench-passphrase-0123",
    )


def _using_code() -> str:
    body = "MB123456"
    first17 = "11330100" + body + organisation_check_character(body)
    return first17 + check_character(first17)


def _context(services: Services) -> UseContext:
    with services.sessions() as session:
        department = session.scalars(
            select(Department).where(Department.code == _using_code())
        ).one()
    return UseContext.create(
        department_id=department.id,
        department_code=department.code,
        client_id="bench",
        use_cause="核验施工单位营业执照",
        matter=MATTER,
    )


def prepare(services: Services, holders: int) -> list[str]:
    """Initialise, grant the using department, issue ``holders`` licences; their codes."""
    initialise(services)
    with db.transaction(services.sessions) as session:
        add_department(
            session, code=_using_code(), name=USING_DEPARTMENT_NAME, region=None, actor=ACTOR
        )
    with db.transaction(services.sessions) as session:
        add_grant(
            session,
            department_code=_using_code(),
            type_code=TYPE_CODE,
            matters=[MATTER],
            requires_consent=False,
            actor=ACTOR,
            clock=services.clock,
        )
    codes = []
    for fields in distinct_holders(holders):
        issue(services, fields)
        codes.append(str(fields["credit_code"]))
    return codes


def issue(services: Services, fields: dict[str, object]) -> None:
    """Issue one business licence to the holder of ``fields``."""
    issue_certificate(
        services,
        department_code=DEMO_DEPARTMENT_CODE,
        request=IssueRequest(type_code=TYPE_CODE, fields=dict(fields)),
        actor=ACTOR,
    )


def time_lookups(services: Services, codes: list[str], count: int, seed: int) -> list[float]:
    """Seconds of ``count`` lookups of holders drawn from ``codes``; each must find one."""
    context = _context(services)
    pick = random.Random(seed)
    times = []
    for _ in range(count):
        holder = (pick.choice(codes), HolderType.CREDIT_CODE)
        started = time.perf_counter()
        result = lookup_licences(services, context, holder=holder)
        times.append(time.perf_counter() - started)
        if len(result.licences) != 1:
            raise SystemExit(f"A lookup found {len(result.licences)} licences, not 1.")
    return times


def _looker(
    url: str, data_dir: str, codes: list[str], rate: float, record: bool, stop: Event
) -> None:
    if not record:
        # The baseline: the same lookups with the usage record and its log entry left out,
        # so that what is compared is the cost of recording, not that of looking up.
        econtract.sharing._use.record_use = lambda *args, **kwargs: []  # type: ignore[attr-defined]
    services = Services(settings=_settings(url, Path(data_dir)))
    context = _context(services)
    pick = random.Random(7)
    interval = 1.0 / rate
    next_at = time.perf_counter()
    while not stop.is_set():
        lookup_licences(services, context, holder=(pick.choice(codes), HolderType.CREDIT_CODE))
        next_at += interval
        time.sleep(max(0.0, next_at - time.perf_counter()))
    services.dispose()


def issuance_rate(services: Services, holders: list[dict[str, object]]) -> float:
    """Licences issued per second, one after the other."""
    started = time.perf_counter()
    for fields in holders:
        issue(services, fields)
    return len(holders) / (time.perf_counter() - started)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "ECONTRACT_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--holders", type=int, default=1000)
    parser.add_argument("--certificates", type=int, default=1_000_000)
    parser.add_argument("--usage", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=500)
    parser.add_argument("--issue", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lookup-rate", type=float, default=20.0)
    args = parser.parse_args(argv)

    schema = f"bench_sharing_{secrets.token_hex(4)}"
    admin = create_engine(args.database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in args.database_url else "?"
    url = f"{args.database_url}{sep}options=-csearch_path%3D{schema}"
    data_dir = Path(tempfile.mkdtemp(prefix="bench-sharing-"))
    services = Services(settings=_settings(url, data_dir))
    try:
        print(f"Preparing: {args.holders} licences issued for real ...", flush=True)
        codes = prepare(services, args.holders)
        small = time_lookups(services, codes, args.lookups, seed=1)
        with services.sessions() as session:
            department_id, seal_id = session.execute(
                select(Certificate.department_id, Certificate.seal_id).limit(1)
            ).one()
        filler = args.certificates - args.holders
        print(f"Loading {filler} certificates and {args.usage} usage records ...", flush=True)
        started = time.perf_counter()
        fill_certificates(
            services.engine,
            department_id=department_id,
            seal_id=seal_id,
            type_code=TYPE_CODE,
            count=filler,
        )
        fill_usage(
            services.engine,
            department_id=_context(services).department_id,
            matter=MATTER,
            certificates=filler,
            count=args.usage,
        )
        analyse(services.engine)
        print(f"  loaded in {time.perf_counter() - started:.0f} s", flush=True)
        large = time_lookups(services, codes, args.lookups, seed=1)
        _print_lookups(args, small, large)

        fresh = distinct_holders(args.holders + 3 * args.repeats * args.issue)[args.holders :]
        batches = [fresh[i : i + args.issue] for i in range(0, len(fresh), args.issue)]
        rates: dict[str, list[float]] = {"alone": [], "without": [], "with": []}
        for repeat in range(args.repeats):
            rates["alone"].append(issuance_rate(services, batches[3 * repeat]))
            for offset, (label, record) in enumerate((("without", False), ("with", True)), 1):
                rates[label].append(
                    _issue_beside_lookups(
                        services, batches[3 * repeat + offset], url, data_dir, codes, args, record
                    )
                )
        _print_issuance(args, rates)
    finally:
        services.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    return 0


def _issue_beside_lookups(
    services: Services,
    batch: list[dict[str, object]],
    url: str,
    data_dir: Path,
    codes: list[str],
    args: argparse.Namespace,
    record: bool,
) -> float:
    """The issuance rate of ``batch`` while another process looks licences up."""
    spawn = multiprocessing.get_context("spawn")
    stop = spawn.Event()
    looker = spawn.Process(
        target=_looker, args=(url, str(data_dir), codes, args.lookup_rate, record, stop)
    )
    looker.start()
    time.sleep(3.0)  # the looker's start-up (imports, connections) is not part of the measure
    rate = issuance_rate(services, batch)
    stop.set()
    looker.join()
    return rate


def _print_lookups(args: argparse.Namespace, small: list[float], large: list[float]) -> None:
    print()
    print(f"Lookup by holder ({args.lookups} lookups, usage record and log entry included)")
    for label, values in (
        (f"{args.holders} certificates", small),
        (f"{args.certificates} certificates + {args.usage} usage records", large),
    ):
        print(
            f"  {label:<52} p50 {statistics.median(values) * 1000:7.2f} ms  "
            f"p99 {_percentile(values, 0.99) * 1000:7.2f} ms"
        )
    ratio = statistics.median(large) / statistics.median(small)
    verdict = "met" if ratio <= _LOOKUP_TARGET else "NOT met"
    print(f"  ratio p50 large / small {ratio:28.2f}x  (target <= {_LOOKUP_TARGET}x: {verdict})")


def _print_issuance(args: argparse.Namespace, rates: dict[str, list[float]]) -> None:
    print()
    print(f"Issuance ({args.issue} licences x {args.repeats}, in process, on the large registry)")
    labels = {
        "alone": "alone",
        "without": f"beside lookups at {args.lookup_rate:g}/s, not recorded",
        "with": f"beside lookups at {args.lookup_rate:g}/s, recorded",
    }
    for key, label in labels.items():
        values = rates[key]
        print(
            f"  {label:<44} {statistics.median(values):7.2f} certs/s"
            f"  (min {min(values):.2f}, max {max(values):.2f})"
        )
    ratio = statistics.median(rates["with"]) / statistics.median(rates["without"])
    verdict = "met" if ratio >= _ISSUE_TARGET else "NOT met"
    print(
        f"  ratio recorded / not recorded {ratio:22.2f}x  (target >= {_ISSUE_TARGET}x: {verdict})"
    )
    total = statistics.median(rates["with"]) / statistics.median(rates["alone"])
    print(f"  ratio recorded / alone (CPU shared too) {total:12.2f}x")


if __name__ == "__main__":
    sys.exit(main())
