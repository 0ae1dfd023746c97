"""Envelope benchmark: contracts of two enterprises and a department sealed over HTTP, against
the same steps done with the ``econtract seal`` command line one after another.

Run (SQLite by default; ``--database-url`` for PostgreSQL, in a schema of its own)::

    .venv/bin/python -m bench.bench_envelopes [--envelopes 20] [--concurrency 4]
        [--cli-envelopes 5] [--repeats 3] [--workers 2] [--database-url URL]

``econtract serve --workers 2`` runs on a fresh temporary data directory, where the command
line registers two enterprises with a contract seal and a client (scope ``sign``) each, and a
client (``seal,read``) of the demo department, whose official seal certifies. Every envelope
has three parties: step 1 the two enterprises in parallel, step 2 the department.

The project's side, per repetition, ``--envelopes`` envelopes in three phases: all are created
(``POST /v1/envelopes``: the department's seal certifies the contract and reserves the three
fields), ``--concurrency`` at once; then both enterprises of ``--concurrency`` envelopes at a
time seal at the same moment (``POST /v1/envelopes/{id}/seal``, the parallel path: one of the
two is overtaken and sealed again on the other's revision); then the department seals each
envelope's last field, which completes it (and does the completion's own work, so its figure
grows with it). The server's CPU time (its process group, from ``/proc``) is read around each
phase: CPU per creation, per party step and per completing step. Envelopes per second is the
repetition's envelopes over the wall time of its three phases.

The baseline, in the same run on the same registry: ``--cli-envelopes`` envelopes, each as
four ``econtract seal`` processes one after another (certify with form filling and the three
reserved fields bound to the parties' codes, then each party's field), the way an operator
would do it without the service. Printed: envelopes per second of both (median, min, max over
``--repeats``), the ratio HTTP / command line, the server CPU per kind of step, p50 and p95
latency per kind of step, and the load average. The first envelope of each side is checked
to carry four seals.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pyhanko.pdf_utils.reader import PdfFileReader
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas
from sqlalchemy import create_engine, text

from bench.inputs import _register_font
from bench.load import (
    DEPARTMENT,
    EContractServer,
    _econtract,
    _server_env,
    econtract_server,
    process_group_cpu,
)

ENTERPRISES = {
    "a": ("9133010052CL12THX9", "杭州远航建设工程有限公司", "PartyA", 250),
    "b": ("9133100015J1YG617W", "台州瑞丰科技有限公司", "PartyB", 400),
}
"""The two enterprises: credit code, name, field, x of the field's seal."""
BUYER_FIELD, BUYER_X = "Buyer", 500
"""The department's field and the x of its seal."""
FIELD_Y = 150
CERTIFY_VISIBLE = "1:100,150"
"""Where the certifying seal is drawn, on both sides."""
KINDS = ("creation", "party step", "completing step")
"""The kinds of step whose CPU and latency are reported."""


@dataclass(frozen=True, kw_only=True)
class World:
    """What the parties are: their seals and API clients, and the command line's environment."""

    env: dict[str, str]
    """The ``econtract`` commands' environment (the server's data directory and registry)."""
    seals: dict[str, str]
    """Seal ids of ``dept``, ``a`` and ``b``."""
    clients: dict[str, tuple[str, str]]
    """Client id and secret of ``dept``, ``a`` and ``b``."""


@dataclass
class HTTPRound:
    """One repetition of the HTTP side."""

    envelopes: int
    wall: float
    """Seconds of the three phases."""
    cpu: dict[str, float]
    """Server CPU seconds per step of each kind."""
    latencies: dict[str, list[float]]
    """Seconds per request of each kind."""

    @property
    def per_second(self) -> float:
        """Envelopes completed per second."""
        return self.envelopes / self.wall


@dataclass
class CLIRound:
    """One repetition of the command line's side."""

    envelopes: int
    wall: float
    latencies: dict[str, list[float]] = field(default_factory=dict)
    """Seconds per process of each kind."""

    @property
    def per_second(self) -> float:
        """Envelopes completed per second."""
        return self.envelopes / self.wall


def contract_pdf() -> bytes:
    """A one-page A4 contract in the project's font, sealed by both sides."""
    font = _register_font()
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4)
    page.setFont(font, 18)
    page.drawCentredString(A4[0] / 2, 780, "政府采购合同")
    page.setFont(font, 11)
    lines = [
        "采购人：演示部门",
        "供应商：杭州远航建设工程有限公司、台州瑞丰科技有限公司",
        "第一条 合同标的：办公楼维修工程，工期九十日。",
        "第二条 合同价款：人民币壹佰贰拾万元整。",
        "第三条 履约保证：供应商于合同生效后十日内提交履约保函。",
        "第四条 本合同经三方盖章后生效，一式三份，各执一份，具有同等法律效力。",
    ]
    for number, line in enumerate(lines):
        page.drawString(72, 720 - 24 * number, line)
    page.drawString(200, 230, "甲方（盖章）")
    page.drawString(350, 230, "乙方（盖章）")
    page.drawString(470, 230, "采购人（盖章）")
    page.showPage()
    page.save()
    return out.getvalue()


def make_world(server: EContractServer, settings: dict[str, str]) -> World:
    """Register the enterprises, their seals and every party's client with the command line."""
    env = _server_env(server.data_dir, server.port) | settings
    cwd = server.data_dir
    seals = {"dept": _official_seal(env, cwd)}
    clients = {"dept": _client(["--department", DEPARTMENT, "--scopes", "seal,read"], env, cwd)}
    for party, (code, name, _, _) in ENTERPRISES.items():
        _econtract(["enterprises", "add", "--code", code, "--name", name], env, cwd)
        made = _econtract(["seals", "create", "--enterprise", code, "--kind", "contract"], env, cwd)
        seals[party] = str(made["id"])
        clients[party] = _client(["--enterprise", code, "--scopes", "sign"], env, cwd)
    return World(env=env, seals=seals, clients=clients)


def _official_seal(env: dict[str, str], cwd: Path) -> str:
    listed = _econtract(["seals", "list", "--department", DEPARTMENT], env, cwd)
    return str(next(s["id"] for s in listed if s["kind"] == "official"))


def _client(args: list[str], env: dict[str, str], cwd: Path) -> tuple[str, str]:
    made = _econtract(["clients", "create", *args], env, cwd)
    return str(made["client_id"]), str(made["client_secret"])


# --- the project's side: HTTP -------------------------------------------------------------


def _headers(client: httpx.Client, world: World) -> dict[str, dict[str, str]]:
    """A fresh bearer token of every party (a repetition is far shorter than a token's life)."""
    headers = {}
    for party, (client_id, secret) in world.clients.items():
        answer = client.post(
            "/v1/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
        answer.raise_for_status()
        headers[party] = {"Authorization": f"Bearer {answer.json()['access_token']}"}
    return headers


def _envelope_json(world: World, title: str) -> str:
    deadline = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    enterprises = [
        {"code": code, "field": name, "x": x, "y": FIELD_Y}
        for code, _, name, x in ENTERPRISES.values()
    ]
    buyer = {"code": DEPARTMENT, "field": BUYER_FIELD, "x": BUYER_X, "y": FIELD_Y}
    return json.dumps(
        {
            "title": title,
            "seal": world.seals["dept"],
            "visible": CERTIFY_VISIBLE,
            "steps": [
                {"deadline": deadline, "parties": enterprises},
                {"deadline": deadline, "parties": [buyer]},
            ],
        },
        ensure_ascii=False,
    )


def _timed(call: Callable[[], httpx.Response], expect: int) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    answer = call()
    elapsed = time.perf_counter() - started
    if answer.status_code != expect:
        raise RuntimeError(f"HTTP {answer.status_code}, not {expect}: {answer.text[:500]}")
    body: dict[str, Any] = answer.json()
    return elapsed, body


def _phase(
    server: EContractServer, threads: int, jobs: Sequence[Callable[[], tuple[float, Any]]]
) -> tuple[float, float, list[tuple[float, Any]]]:
    """Run ``jobs`` on ``threads`` threads: wall seconds, server CPU seconds, the results."""
    cpu = process_group_cpu(server.process_group)
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(lambda job: job(), jobs))
    wall = time.perf_counter() - started
    return wall, process_group_cpu(server.process_group) - cpu, results


def run_http(server: EContractServer, world: World, count: int, concurrency: int) -> HTTPRound:
    """Create ``count`` envelopes, seal step 1 (both enterprises at once), then complete."""
    contract = contract_pdf()
    run = secrets.token_hex(4)
    with httpx.Client(base_url=server.base_url, timeout=300) as client:
        headers = _headers(client, world)

        def create(number: int) -> Callable[[], tuple[float, Any]]:
            return lambda: _timed(
                lambda: client.post(
                    "/v1/envelopes",
                    files={"file": ("contract.pdf", contract, "application/pdf")},
                    data={"envelope": _envelope_json(world, f"政府采购合同 {run}-{number}")},
                    headers=headers["dept"] | {"Idempotency-Key": f"bench-{run}-{number}"},
                ),
                201,
            )

        def seal(envelope_id: str, party: str) -> Callable[[], tuple[float, Any]]:
            return lambda: _timed(
                lambda: client.post(
                    f"/v1/envelopes/{envelope_id}/seal",
                    json={"seal": world.seals[party]},
                    headers=headers[party],
                ),
                200,
            )

        create_wall, create_cpu, created = _phase(
            server, concurrency, [create(n) for n in range(count)]
        )
        ids = [body["id"] for _, body in created]
        # Both enterprises of an envelope are sent together, so that ``concurrency`` envelopes
        # have both their parties sealing at the same moment.
        party_jobs = [seal(e, party) for e in ids for party in ENTERPRISES]
        party_wall, party_cpu, sealed = _phase(server, 2 * concurrency, party_jobs)
        last_wall, last_cpu, completed = _phase(server, concurrency, [seal(e, "dept") for e in ids])
    statuses = [body["status"] for _, body in completed]
    if statuses != ["completed"] * count:
        raise RuntimeError(f"Not every envelope completed: {statuses}")
    return HTTPRound(
        envelopes=count,
        wall=create_wall + party_wall + last_wall,
        cpu={
            KINDS[0]: create_cpu / count,
            KINDS[1]: party_cpu / (2 * count),
            KINDS[2]: last_cpu / count,
        },
        latencies={
            KINDS[0]: [t for t, _ in created],
            KINDS[1]: [t for t, _ in sealed],
            KINDS[2]: [t for t, _ in completed],
        },
    )


def first_completed_pdf(server: EContractServer, world: World) -> bytes:
    """The document of a completed envelope, as a party downloads it."""
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        headers = _headers(client, world)["dept"]
        listed = client.get("/v1/envelopes", params={"status": "completed"}, headers=headers)
        listed.raise_for_status()
        envelope_id = listed.json()["envelopes"][0]["id"]
        pdf = client.get(f"/v1/envelopes/{envelope_id}/pdf", headers=headers)
        pdf.raise_for_status()
        return pdf.content


# --- the baseline: the command line, one process per step ---------------------------------


def run_cli(world: World, work: Path, count: int) -> CLIRound:
    """``count`` envelopes, each as four ``econtract seal`` processes one after another."""
    source = work / "contract.pdf"
    source.write_bytes(contract_pdf())
    reserve = [f"{name}@1:{x},{FIELD_Y}={code}" for code, _, name, x in ENTERPRISES.values()] + [
        f"{BUYER_FIELD}@1:{BUYER_X},{FIELD_Y}={DEPARTMENT}"
    ]
    latencies: dict[str, list[float]] = {kind: [] for kind in KINDS}
    started = time.perf_counter()
    for number in range(count):
        prefix = work / f"envelope-{secrets.token_hex(4)}-{number}"
        certify = ["seal", str(source), "-o", f"{prefix}-0.pdf", "--seal", world.seals["dept"]]
        certify += ["--certify", "form-filling", "--visible", CERTIFY_VISIBLE]
        for entry in reserve:
            certify += ["--reserve", entry]
        latencies[KINDS[0]].append(_cli(certify, world, work))
        steps = [(name, party) for party, (_, _, name, _) in ENTERPRISES.items()]
        steps.append((BUYER_FIELD, "dept"))
        for index, (name, party) in enumerate(steps, 1):
            command = ["seal", f"{prefix}-{index - 1}.pdf", "-o", f"{prefix}-{index}.pdf"]
            command += ["--field", name, "--seal", world.seals[party]]
            kind = KINDS[2] if index == len(steps) else KINDS[1]
            latencies[kind].append(_cli(command, world, work))
    return CLIRound(envelopes=count, wall=time.perf_counter() - started, latencies=latencies)


def _cli(command: list[str], world: World, work: Path) -> float:
    started = time.perf_counter()
    _econtract(command, world.env, work)
    return time.perf_counter() - started


def last_cli_pdf(work: Path) -> bytes:
    """The last document the command line completed."""
    done = max(work.glob("envelope-*-3.pdf"), key=lambda p: p.stat().st_mtime)
    return done.read_bytes()


def count_seals(pdf: bytes) -> int:
    """How many seals a PDF carries (document timestamps apart)."""
    signatures = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    return sum(1 for s in signatures if s.sig_object_type == "/Sig")


# --- registry and printing ----------------------------------------------------------------


@contextlib.contextmanager
def registry(database_url: str | None) -> Iterator[dict[str, str]]:
    """The server's registry settings: SQLite in its data directory, or a new schema of the
    PostgreSQL database given (dropped on leaving)."""
    if database_url is None:
        yield {}
        return
    schema = f"bench_envelopes_{secrets.token_hex(4)}"
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        # The registry's migration would create pg_trgm in the bench's schema when the database
        # lacks it, and dropping the schema would then drop it from under other schemas.
        connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in database_url else "?"
    try:
        yield {"ECONTRACT_DATABASE_URL": f"{database_url}{sep}options=-csearch_path%3D{schema}"}
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _quantiles(rounds: Iterable[list[float]]) -> str:
    values = [1000 * t for times in rounds for t in times]
    return f"{_percentile(values, 0.5):.0f} / {_percentile(values, 0.95):.0f} ms"


def _spread(values: Sequence[float], unit: str, scale: float = 1.0, digits: int = 3) -> str:
    median, low, high = (scale * v for v in (statistics.median(values), min(values), max(values)))
    return (
        f"{median:9.{digits}f} {unit}  (min {low:.{digits}f}, max {high:.{digits}f}, "
        f"n={len(values)})"
    )


def report(http: list[HTTPRound], cli: list[CLIRound], args: argparse.Namespace) -> None:
    """Print the table, the ratio line and the load average."""
    print()
    print(
        f"HTTP: {args.envelopes} envelopes x {args.repeats}, {args.concurrency} at once; "
        f"command line: {args.cli_envelopes} envelopes x {args.repeats}, one step at a time"
    )
    label = "envelopes completed per second"
    print(f"  {label + ', HTTP':<48}{_spread([r.per_second for r in http], 'env/s')}")
    print(f"  {label + ', econtract seal':<48}{_spread([r.per_second for r in cli], 'env/s')}")
    print()
    heading = "server CPU per step, median (min, max)"
    print(f"  {'step':<16}{heading:<40}{'HTTP p50 / p95':<20}CLI p50 / p95")
    for kind in KINDS:
        cpu = [1000 * r.cpu[kind] for r in http]
        spread = f"{statistics.median(cpu):.1f} ms ({min(cpu):.1f}, {max(cpu):.1f})"
        print(f"  {kind:<16}{spread:<40}{_quantiles(r.latencies[kind] for r in http):<20}", end="")
        print(_quantiles(r.latencies[kind] for r in cli))
    per_envelope = [r.cpu[KINDS[0]] + 2 * r.cpu[KINDS[1]] + r.cpu[KINDS[2]] for r in http]
    print(f"  {'server CPU per envelope':<48}{_spread(per_envelope, 'ms', 1000, 1)}")
    print()
    ratio = statistics.median(r.per_second for r in http) / statistics.median(
        r.per_second for r in cli
    )
    print(f"  {'ratio HTTP / econtract seal, envelopes/s':<48}{ratio:9.2f}x")
    load = os.getloadavg()
    print(f"  load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")


def main(argv: list[str] | None = None) -> None:
    """Set up the parties, warm up, then alternate the two sides ``--repeats`` times."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--envelopes", type=int, default=20, help="HTTP envelopes per repetition")
    parser.add_argument("--concurrency", type=int, default=4, help="HTTP envelopes at once")
    parser.add_argument("--cli-envelopes", type=int, default=5, help="baseline envelopes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="econtract serve --workers")
    parser.add_argument(
        "--database-url", default=None, help="a PostgreSQL database (default: SQLite)"
    )
    args = parser.parse_args(argv)
    if min(args.envelopes, args.concurrency, args.cli_envelopes, args.repeats) < 1:
        parser.error("every count must be at least 1")
    print("Envelope benchmark (3 parties: two enterprises in parallel, then the department)")
    print(
        f"  {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
        f"econtract serve --workers {args.workers}; registry "
        f"{'PostgreSQL' if args.database_url else 'SQLite'}",
        flush=True,
    )
    passphrase = {"ECONTRACT_KEY_PASSPHRASE": secrets.token_urlsafe(24)}
    with (
        registry(args.database_url) as database,
        econtract_server(args.workers, database | passphrase) as server,
        tempfile.TemporaryDirectory(prefix="econtract-bench-cli-") as work_dir,
    ):
        work = Path(work_dir)
        world = make_world(server, database | passphrase)
        # One envelope each first: the workers' and the command line's first use of the seals.
        run_http(server, world, 1, 1)
        run_cli(world, work, 1)
        seals = [
            count_seals(first_completed_pdf(server, world)),
            count_seals(last_cli_pdf(work)),
        ]
        if seals != [4, 4]:
            raise SystemExit(f"Expected 4 seals on each side, found {seals}.")
        http: list[HTTPRound] = []
        cli: list[CLIRound] = []
        for repeat in range(1, args.repeats + 1):
            http.append(run_http(server, world, args.envelopes, args.concurrency))
            cli.append(run_cli(world, work, args.cli_envelopes))
            print(
                f"  repetition {repeat}: HTTP {http[-1].per_second:.2f} env/s, "
                f"econtract seal {cli[-1].per_second:.2f} env/s",
                flush=True,
            )
        report(http, cli, args)
        problems = server.log_problems()
    if problems:
        print("server log errors:", *problems, sep="\n  ", file=sys.stderr)


if __name__ == "__main__":
    main()
