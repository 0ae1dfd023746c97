"""Overview benchmark (电子监察总览): the overview's figures on a registry of 10,000 and of
1,000,000 certificates with a year of events, on PostgreSQL.

Run (the server defaults to the machine's PostgreSQL on 127.0.0.1)::

    .venv/bin/python -m bench.bench_overview [--server-url URL] [--small 10000]
        [--large 1000000] [--repeats 7] [--database-prefix econtract_bench]

Each registry gets a database of its own on the server (``<prefix>_small`` and
``<prefix>_large``, created empty and dropped at the end), initialised as ``econtract init``
does, with the departments of the seeded registry (``bench/seed_supervision.py``), then
filled with SQL (:func:`bench.large_registry.fill_year`: licences issued over the 365 days
up to today, their revocations and suspensions with reasons, uses by other departments,
envelopes open, completed, declined and expired, and QR scan counters, all in proportion to
the licences, up to now) and vacuumed and analysed, as an operator (or autovacuum) would after
a bulk load; then the days are rolled up (:func:`econtract.supervision.roll_up`, as the
worker's round does: the days that are over, and today so far up to the last full hour less
the grace), so that the figures read the roll-ups and the records written since.

Measured on each: every figure of :mod:`econtract.supervision` over the default period (the
last 30 days) and over the whole year, for every department (a supervisor's view) and for
the demo department, each ``--repeats`` times after one warm-up run (p50 and p90), on the two
registries in turns (small, large, small, …: a burst of load on a shared machine slows both
sides of a ratio, not one); and the overview as a whole: all figures of the default period
one after another for every department, in turns too, and the page over HTTP on each.
Printed: the figures, the ratio large / small of each p50, the targets (the overview's p50
below 1 s on the large registry; each ratio at most 2x) met or missed, and for each figure
over the ratio the node types of its statements' plans (``EXPLAIN (ANALYZE, BUFFERS)`` on the
large registry).
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.engine import URL, make_url

from bench.large_registry import Year, analyse, fill_year
from bench.seed_supervision import (
    DEPARTMENTS,
    ISSUANCE,
    OPERATOR,
    REVOKE_REASONS,
    SUSPEND_REASONS,
    USES,
)
from econtract import db, supervision
from econtract.bootstrap import DEMO_DEPARTMENT_CODE, initialise
from econtract.clock import CHINA
from econtract.config import Settings
from econtract.console import ConsoleRole
from econtract.departments import add_department
from econtract.models import Department, Seal, SealKind
from econtract.services import Services
from econtract.supervision import Period, Series
from econtract.supervision._overview import percentile
from tests.console.accounts import HTML, form_token, make_account
from tests.live import serve

SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/"
DEFAULT_DAYS = 30
"""The overview's default period: the last 30 days."""
PAGE_TARGET_S = 1.0
RATIO_TARGET = 2.0

Figure = Callable[..., Series]
FIGURES: tuple[tuple[str, Figure], ...] = (
    ("issued_per_day", supervision.issued_per_day),
    ("issued_per_week", supervision.issued_per_week),
    ("status_changes_per_day", supervision.status_changes_per_day),
    ("envelopes_by_status", supervision.envelopes_by_status),
    ("completion_times", supervision.completion_times),
    ("uses_by_other_departments", supervision.uses_by_other_departments),
    ("scans_per_day", supervision.scans_per_day),
)
PAGE = "overview (all figures, 30 days, all departments)"
HTTP_PAGE = "GET /console/overview (supervisor, over HTTP)"
OVERVIEW_PATH = "/console/overview"


@dataclass(frozen=True)
class Timing:
    """Seconds of each repetition of one measurement."""

    seconds: tuple[float, ...]

    @property
    def p50(self) -> float:
        """The median."""
        return percentile(self.seconds, 0.5)

    @property
    def p90(self) -> float:
        """The 90th percentile."""
        return percentile(self.seconds, 0.9)


@dataclass
class Registry:
    """A filled registry: its services, the demo department and the year it covers."""

    services: Services
    demo_id: int
    periods: dict[str, Period]
    rows: dict[str, int]
    load_seconds: float
    rollup_seconds: float
    """Of the load, the roll-up of the days before today."""


def _time(operation: Callable[[], object], repeats: int) -> Timing:
    operation()  # warm-up: the plan cache and the buffers
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        operation()
        seconds.append(time.perf_counter() - started)
    return Timing(tuple(seconds))


def _time_pair(
    small: Callable[[], object], large: Callable[[], object], repeats: int
) -> tuple[Timing, Timing]:
    """Time two operations in turns (small, large, small, …), each warmed up once: on a
    shared machine a burst of load then slows both sides of a ratio, not one of them."""
    small()
    large()
    seconds: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for operation, into in ((small, seconds[0]), (large, seconds[1])):
            started = time.perf_counter()
            operation()
            into.append(time.perf_counter() - started)
    return Timing(tuple(seconds[0])), Timing(tuple(seconds[1]))


@contextmanager
def database(server: URL, name: str) -> Iterator[str]:
    """A new empty database ``name`` on ``server`` (an existing one is dropped first: it is
    the benchmark's own), dropped on leaving."""
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def build(database_url: str, data_dir: Path, certificates: int) -> Registry:
    """Initialise the registry, add the seeded registry's departments and fill a year of
    ``certificates`` licences ending today (China time)."""
    settings = Settings(
        _env_file=None,
        data_dir=data_dir,
        database_url=database_url,
        key_passphrase="bench-passphrase-0123",
        key_kdf_rounds=1000,
    )
    services = Services(settings)
    started = time.perf_counter()
    initialise(services)
    with db.transaction(services.sessions) as session:
        for code, name, _ in DEPARTMENTS:
            add_department(session, code=code, name=name, region=None, actor=OPERATOR)
    with services.sessions() as session:
        ids = dict(session.execute(select(Department.code, Department.id)).all())
        seal = session.scalars(
            select(Seal).where(
                Seal.department_id == ids[DEMO_DEPARTMENT_CODE],
                Seal.kind == SealKind.LICENCE.value,
            )
        ).one()
    # The year's last day is today, as the page's periods end today.
    today = datetime.now(CHINA).date()
    first_day = today - timedelta(days=364)
    year = Year(
        # Each line as often as its workday rate in the seeded registry.
        lines=[
            (ids[code], type_code) for code, type_code, rate in ISSUANCE for _ in range(round(rate))
        ],
        users=[(ids[code], matter) for code, matter, *_ in USES],
        initiators=sorted(ids.values()),
        seal_id=seal.id,
        seal_department_id=seal.department_id,
        first_day=first_day,
        revoke_reasons=[reason for reason, _ in REVOKE_REASONS],
        suspend_reasons=[reason for reason, _ in SUSPEND_REASONS],
        # Up to now, as a registry is: a record dated later than now (a whole today) would
        # be read from the records, the worker rolling up today only so far.
        end=datetime.now(CHINA),
    )
    rows = fill_year(services.engine, year, certificates=certificates)
    analyse(services.engine, vacuum=True)
    # The days before today rolled up, as the worker's round does once they are over.
    rolling = time.perf_counter()
    rows["days rolled up"] = supervision.roll_up(services)
    rollup_seconds = time.perf_counter() - rolling
    analyse(services.engine, vacuum=True)
    return Registry(
        services=services,
        demo_id=ids[DEMO_DEPARTMENT_CODE],
        periods={
            f"{DEFAULT_DAYS} days": Period(
                since=today - timedelta(days=DEFAULT_DAYS - 1), until=today + timedelta(days=1)
            ),
            "365 days": Period(since=first_day, until=today + timedelta(days=1)),
        },
        rows=rows,
        load_seconds=time.perf_counter() - started,
        rollup_seconds=rollup_seconds,
    )


def measure(
    small: Registry, large: Registry, repeats: int, *, with_page: bool
) -> tuple[dict[str, Timing], dict[str, Timing]]:
    """Every figure over each period, for every department and for the demo department, the
    figures of the overview one after another (each on both registries in turns) and
    (``with_page``) the page over HTTP on each: ``({name: timing}, {name: timing})``."""
    timings: tuple[dict[str, Timing], dict[str, Timing]] = ({}, {})
    for name, figure in FIGURES:
        for label in small.periods:
            for scope in ("all", "one"):
                key = f"{name} · {label} · {scope}"
                small_figure, large_figure = (
                    partial(
                        figure,
                        registry.services,
                        registry.periods[label],
                        department_id=registry.demo_id if scope == "one" else None,
                    )
                    for registry in (small, large)
                )
                timings[0][key], timings[1][key] = _time_pair(small_figure, large_figure, repeats)

    def page(registry: Registry) -> Callable[[], object]:
        default = registry.periods[f"{DEFAULT_DAYS} days"]
        return lambda: [figure(registry.services, default) for _, figure in FIGURES]

    timings[0][PAGE], timings[1][PAGE] = _time_pair(page(small), page(large), repeats)
    if with_page:
        # Both services at once, the page loaded from each in turns.
        with overview_page(small) as small_page, overview_page(large) as large_page:
            timings[0][HTTP_PAGE], timings[1][HTTP_PAGE] = _time_pair(
                small_page, large_page, repeats
            )
    return timings


def page_route_exists() -> bool:
    """Whether the service has the overview page (``GET /console/overview``)."""
    try:
        overview_routes = importlib.import_module("routes.console_overview")
    except ImportError:
        return False
    routes = getattr(getattr(overview_routes, "router", None), "routes", ())
    return any(getattr(route, "path", None) == OVERVIEW_PATH for route in routes)


@contextmanager
def overview_page(registry: Registry) -> Iterator[Callable[[], object]]:
    """The overview page over HTTP (the service in a uvicorn server of this process) as a
    signed-in supervisor, its default period, every department: a function that loads it."""
    services = registry.services
    account = make_account(services, "bench-supervisor", ConsoleRole.SUPERVISOR)
    # Quiet, and without the outbox's consumer: the page's requests are all it serves.
    settings = services.settings.model_copy(
        update={"log_level": "WARNING", "webhook_poll_seconds": 0}
    )
    with serve(settings) as base, httpx.Client(base_url=base, timeout=60) as client:
        form = client.get("/console/sign-in")
        signed = client.post(
            "/console/sign-in",
            data={
                "name": account.name,
                "password": account.password,
                "code": account.code(),
                "csrf": form_token(form),
            },
            headers=HTML,
        )
        if signed.status_code != 303:
            raise SystemExit(f"the supervisor could not sign in: {signed.status_code}")

        def page() -> None:
            answer = client.get(OVERVIEW_PATH, headers=HTML)
            if answer.status_code != 200:
                raise SystemExit(f"{OVERVIEW_PATH} answered {answer.status_code}")

        yield page


def plans(registry: Registry, key: str) -> list[str]:
    """The node types of the plans of the statements that the figure ``key`` runs
    (``EXPLAIN (ANALYZE, BUFFERS)``), one line per statement, slowest first."""
    name, label, scope = key.split(" · ")
    figure = dict(FIGURES)[name]
    period = registry.periods[label]
    department_id = registry.demo_id if scope == "one" else None
    statements: list[tuple[str, Any]] = []

    def record(*args: Any) -> None:
        statements.append((args[2], args[3]))

    engine = registry.services.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        figure(registry.services, period, department_id=department_id)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    explained = []
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for statement, parameters in statements:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters)
            row = cursor.fetchone()
            assert row is not None
            plan = row[0][0]
            nodes: list[str] = []
            _walk(plan["Plan"], nodes)
            explained.append((float(plan["Execution Time"]), " > ".join(nodes)))
    finally:
        raw.close()
    explained.sort(reverse=True)
    return [f"{ms:9.1f} ms  {nodes}" for ms, nodes in explained]


def _walk(node: dict[str, Any], into: list[str]) -> None:
    where = node.get("Index Name") or node.get("Relation Name")
    into.append(f"{node['Node Type']}({where})" if where else node["Node Type"])
    for child in node.get("Plans", ()):
        _walk(child, into)


def report(
    small: Registry,
    large: Registry,
    small_t: dict[str, Timing],
    large_t: dict[str, Timing],
) -> list[str]:
    """Print the figures, ratios and targets; return the keys over the ratio."""
    if HTTP_PAGE not in large_t:
        print(
            "\nThe service has no overview page yet: the figure functions together "
            f"({PAGE}) stand for it.\n"
        )
    for name, registry in (("small", small), ("large", large)):
        rows = ", ".join(f"{table} {n:,}" for table, n in registry.rows.items())
        print(
            f"{name}: {rows}; loaded, rolled up ({registry.rollup_seconds:.1f} s) and "
            f"analysed in {registry.load_seconds:.0f} s"
        )
    print(
        f"\n{'figure · period · departments':<62} {'small p50':>9} {'p90':>7} "
        f"{'large p50':>9} {'p90':>7} {'ratio':>6}"
    )
    over = []
    for key, s in small_t.items():
        big = large_t[key]
        ratio = big.p50 / s.p50
        mark = "" if ratio <= RATIO_TARGET else "  > 2x"
        if ratio > RATIO_TARGET and key not in (PAGE, HTTP_PAGE):
            over.append(key)
        print(
            f"{key:<62} {s.p50 * 1000:7.1f}ms {s.p90 * 1000:5.1f}ms "
            f"{big.p50 * 1000:7.1f}ms {big.p90 * 1000:5.1f}ms {ratio:5.2f}x{mark}"
        )
    page = large_t.get(HTTP_PAGE, large_t[PAGE]).p50
    ratios = [large_t[k].p50 / small_t[k].p50 for k in small_t]
    print(
        f"\ntarget: the overview's p50 on the large registry < {PAGE_TARGET_S:.0f} s: "
        f"{page * 1000:.0f} ms — {'met' if page < PAGE_TARGET_S else 'MISSED'}"
    )
    print(
        f"target: every ratio large / small <= {RATIO_TARGET:.0f}x: highest "
        f"{max(ratios):.2f}x (median {statistics.median(ratios):.2f}x) — "
        f"{'met' if max(ratios) <= RATIO_TARGET else f'MISSED by {len(over)} figure(s)'}"
    )
    return over


def main(argv: list[str] | None = None) -> int:
    """The command line: build both registries, measure, report; non-zero when a target is
    missed."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_overview", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--server-url", default=SERVER_URL, help="a PostgreSQL server")
    parser.add_argument("--small", type=int, default=10_000, help="certificates (baseline)")
    parser.add_argument("--large", type=int, default=1_000_000, help="certificates")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--database-prefix", default="econtract_bench")
    args = parser.parse_args(argv)
    if args.small < 100 or args.large < args.small or args.repeats < 3:
        parser.error("--small is at least 100, --large at least --small, --repeats at least 3")
    server = make_url(args.server_url)
    if server.get_backend_name() != "postgresql":
        parser.error("--server-url names a PostgreSQL server")
    with_page = page_route_exists()
    data_root = Path(tempfile.mkdtemp(prefix="econtract-bench-overview-"))
    results: dict[str, Registry] = {}
    timings: list[dict[str, Timing]] = []
    over: list[str] = []
    try:
        with (
            database(server, f"{args.database_prefix}_small") as small_url,
            database(server, f"{args.database_prefix}_large") as large_url,
        ):
            for name, url, count in (
                ("small", small_url, args.small),
                ("large", large_url, args.large),
            ):
                print(f"loading the {name} registry: {count:,} certificates …", flush=True)
                results[name] = build(url, data_root / name, count)
            print("measuring both registries in turns …", flush=True)
            timings += measure(
                results["small"], results["large"], args.repeats, with_page=with_page
            )
            over = report(results["small"], results["large"], *timings)
            for key in over:
                print(f"\nplans of {key} (large registry):")
                for line in plans(results["large"], key):
                    print(f"  {line}")
    finally:
        for registry in results.values():
            registry.services.dispose()
        shutil.rmtree(data_root, ignore_errors=True)
    page_ok = timings[1].get(HTTP_PAGE, timings[1][PAGE]).p50 < PAGE_TARGET_S
    return 0 if page_ok and not over else 1


if __name__ == "__main__":
    sys.exit(main())
