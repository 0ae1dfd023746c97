"""An asyncio HTTP load generator, and the servers the HTTP benchmarks run it against.

The generator keeps a fixed number of requests in flight (one keep-alive connection each) for a
fixed time, and records every request's latency and outcome. It runs in its own process, so
that it does not share an interpreter (or a GIL) with what it measures::

    .venv/bin/python -m bench.load --url http://127.0.0.1:8000/healthz --seconds 10

The benchmarks start it with :func:`run_load`, which passes a :class:`LoadSpec` as JSON on
stdin and reads a :class:`LoadResult` back as JSON on stdout.

Two engines send the requests: ``raw`` writes HTTP/1.1 on asyncio streams (on uvloop when it is
installed) and parses just what it needs of the answer; ``httpx`` uses ``httpx.AsyncClient``
with a connection limit equal to the concurrency. They give the same figures on a slow route,
but httpx spends several times more CPU per request, which on a small machine is CPU taken
from the server, so ``raw`` is the default. Every result says how much CPU the generator used,
so that a run where it could have been the bottleneck shows it.

A request counts in the figures when it completes inside the measured window (after the
warm-up, before the deadline); an error is any answer outside 2xx or any exception (timeout,
reset connection), counted over the whole run, warm-up included. Only 127.0.0.1 is accepted.

The second half of the module starts and stops the servers under test: ``econtract serve``
on a fresh data directory (:func:`econtract_server`) and the bare FastAPI app of
``bench/bare_app.py`` (:func:`bare_server`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
"""The repository's root (where ``bench`` is importable from)."""
HOST = "127.0.0.1"
"""The only host the generator talks to."""
MAX_REQUESTS_PER_CONNECTION = 10_000_000
"""A bound on each connection's loop, far above what a run can reach."""
_HEAD_LIMIT = 64 * 1024
_T = TypeVar("_T")
_CHUNK_LINE_LIMIT = 1024


# --- the load generator ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ClientAuth:
    """OAuth client credentials: the generator gets a bearer token and refreshes it."""

    client_id: str
    client_secret: str
    token_path: str = "/v1/token"
    refresh_seconds: float = 600.0
    """Get a new token this often (access tokens live 15 minutes)."""


@dataclass(frozen=True, kw_only=True)
class LoadSpec:
    """What to send, how hard and for how long."""

    port: int
    paths: tuple[str, ...]
    """Request targets, used in turn (one per request, across all connections)."""
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    bodies: tuple[str, ...] = ()
    """Request bodies (UTF-8), used in turn alongside ``paths``; none when empty."""
    concurrency: int = 8
    seconds: float = 10.0
    """Length of the measured window."""
    warmup_seconds: float = 2.0
    """Load applied before the window opens, not counted in the figures."""
    timeout_seconds: float = 60.0
    """Time limit of one request; a request that takes longer is an error."""
    auth: ClientAuth | None = None
    collect: str | None = None
    """A top-level key of the JSON answers whose values are returned (2xx answers only)."""
    engine: str = "raw"
    """``raw`` (asyncio streams) or ``httpx``."""
    unique_header: str | None = None
    """A header sent with a value of its own on every request (``Idempotency-Key``), so that
    no request is taken for a retry of another."""

    def to_json(self) -> str:
        """The spec as JSON (what the generator's process reads on stdin)."""
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> LoadSpec:
        """A spec from :meth:`to_json`."""
        data: dict[str, Any] = json.loads(text)
        auth = data.pop("auth")
        data["paths"] = tuple(data["paths"])
        data["bodies"] = tuple(data["bodies"])
        return cls(**data, auth=ClientAuth(**auth) if auth else None)


@dataclass(frozen=True, kw_only=True)
class LoadResult:
    """What a run measured."""

    engine: str
    concurrency: int
    seconds: float
    """Length of the measured window."""
    completed: int
    """Requests completed inside the window."""
    ok: int
    """Of those, the 2xx answers."""
    errors: int
    """Errors over the whole run (warm-up and the requests finishing after the deadline too)."""
    error_kinds: dict[str, int]
    """The errors by kind (``HTTP 500``, ``ConnectionResetError``...)."""
    window_errors: int
    """The errors of the requests completed inside the window."""
    total_requests: int
    """Every request made, warm-up included."""
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    window_rates: tuple[float, ...]
    """2xx answers per second in each third of the window."""
    client_cpu_seconds: float
    """CPU time (user + system) the generator used during the window."""
    collected: tuple[str, ...]
    """The values of the ``collect`` key of every 2xx answer of the run."""

    @property
    def per_second(self) -> float:
        """2xx answers per second over the window."""
        return self.ok / self.seconds

    @property
    def client_cpu_share(self) -> float:
        """The generator's CPU time as a share of one core over the window."""
        return self.client_cpu_seconds / self.seconds

    @property
    def client_cpu_per_request_us(self) -> float:
        """The generator's CPU time per completed request, in microseconds."""
        return 1e6 * self.client_cpu_seconds / max(self.completed, 1)

    def summary(self, unit: str = "req/s") -> str:
        """One printable line: rate, latency, errors."""
        return (
            f"{self.per_second:10.1f} {unit}  p50 {self.p50_ms:.1f} ms  p99 {self.p99_ms:.1f} ms  "
            f"errors {self.errors} ({self.window_errors} in the window)  "
            f"(n={self.ok}, c={self.concurrency}, {self.seconds:g} s)"
        )

    def client_line(self) -> str:
        """How busy the load generator was."""
        return (
            f"load generator ({self.engine}): {self.client_cpu_seconds:.1f} s CPU in "
            f"{self.seconds:g} s = {100 * self.client_cpu_share:.0f}% of one core, "
            f"{self.client_cpu_per_request_us:.0f} us per request"
        )

    @classmethod
    def from_json(cls, text: str) -> LoadResult:
        """A result from the generator's JSON output."""
        data: dict[str, Any] = json.loads(text)
        data["window_rates"] = tuple(data["window_rates"])
        data["collected"] = tuple(data["collected"])
        return cls(**data)


@dataclass
class _Outcome:
    started: float
    finished: float
    error: str | None
    """None for a 2xx answer, else what went wrong."""


class Answer:
    """An HTTP answer's status and body."""

    __slots__ = ("body", "status")

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body


class _Requests:
    """The requests to send, in turn; rebuilt when the bearer token changes."""

    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        self.token: str | None = None
        self.count = 0
        self.wire: list[bytes] = []
        self._run = secrets.token_hex(6)
        self._sent = 0
        self._build()

    def unique_headers(self) -> dict[str, str]:
        """The spec's unique header with a value never sent before (none when it has none)."""
        if self.spec.unique_header is None:
            return {}
        self._sent += 1
        return {self.spec.unique_header: f"load-{self._run}-{self._sent}"}

    def message(self, index: int) -> bytes:
        """The raw request ``index``, with the unique header added when the spec has one."""
        extra = self.unique_headers()
        if not extra:
            return self.wire[index]
        lines = "".join(f"\r\n{name}: {value}" for name, value in extra.items())
        return self.wire[index].replace(b"\r\n\r\n", lines.encode("latin-1") + b"\r\n\r\n", 1)

    def headers(self) -> dict[str, str]:
        headers = dict(self.spec.headers)
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def set_token(self, token: str) -> None:
        self.token = token
        self._build()

    def _build(self) -> None:
        spec = self.spec
        size = max(len(spec.paths), len(spec.bodies), 1)
        self.wire = []
        for index in range(size):
            path = spec.paths[index % len(spec.paths)]
            body = spec.bodies[index % len(spec.bodies)].encode() if spec.bodies else b""
            lines = [f"{spec.method} {path} HTTP/1.1", f"Host: {HOST}:{spec.port}"]
            lines += [f"{name}: {value}" for name, value in self.headers().items()]
            if body or spec.method in ("POST", "PUT", "PATCH"):
                lines.append(f"Content-Length: {len(body)}")
            self.wire.append(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def next_index(self) -> int:
        index = self.count % len(self.wire)
        self.count += 1
        return index


async def _read_answer(reader: asyncio.StreamReader) -> tuple[Answer, bool]:
    """Read one HTTP/1.1 answer; the second value says whether the connection stays open."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length: int | None = None
    chunked = False
    keep_alive = True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        value = value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value
        elif name == b"connection":
            keep_alive = value != b"close"
    if chunked:
        parts = []
        for _ in range(1_000_000):
            size = int((await reader.readline())[:_CHUNK_LINE_LIMIT].split(b";")[0], 16)
            if size == 0:
                while (await reader.readline()).strip():
                    pass
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(parts)
    elif length is not None:
        body = await reader.readexactly(length)
    else:
        body = await reader.read()
        keep_alive = False
    return Answer(status, body), keep_alive


class _RawEngine:
    """HTTP/1.1 over asyncio streams: one keep-alive connection per worker."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def connection(self) -> RawConnection:
        return RawConnection(self.port)

    async def aclose(self) -> None:
        return None


class RawConnection:
    """One keep-alive HTTP/1.1 connection to ``HOST:port``, opened again when the server
    closes it; :meth:`send` writes a raw request and reads its answer."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def send(self, wire: bytes) -> Answer:
        """Send the raw request ``wire`` and read its answer (the body whole)."""
        if self.streams is not None and self.streams[0].at_eof():
            await self.close()  # the server closed this connection after its last answer
        if self.streams is None:
            self.streams = await asyncio.open_connection(HOST, self.port, limit=_HEAD_LIMIT)
        reader, writer = self.streams
        writer.write(wire)
        try:
            answer, keep_alive = await _read_answer(reader)
        except BaseException:
            await self.close()
            raise
        if not keep_alive:
            await self.close()
        return answer

    async def close(self) -> None:
        """Close the connection (the next :meth:`send` opens another)."""
        if self.streams is not None:
            writer = self.streams[1]
            self.streams = None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class _HttpxEngine:
    """``httpx.AsyncClient`` with as many connections as requests in flight."""

    def __init__(self, port: int, concurrency: int, timeout: float) -> None:
        self.client = httpx.AsyncClient(
            base_url=f"http://{HOST}:{port}",
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            timeout=timeout,
        )

    async def connection(self) -> _HttpxConnection:
        return _HttpxConnection(self.client)

    async def aclose(self) -> None:
        await self.client.aclose()


class _HttpxConnection:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def request(self, method: str, path: str, headers: dict[str, str], body: str) -> Answer:
        response = await self.client.request(
            method, path, headers=headers, content=body.encode() if body else None
        )
        return Answer(response.status_code, response.content)

    async def close(self) -> None:
        return None


async def _get_token(spec: LoadSpec, auth: ClientAuth) -> str:
    """A bearer token from the client credentials grant (on a connection of its own)."""
    basic = base64.b64encode(f"{auth.client_id}:{auth.client_secret}".encode()).decode()
    form = b"grant_type=client_credentials"
    wire = (
        f"POST {auth.token_path} HTTP/1.1\r\nHost: {HOST}:{spec.port}\r\n"
        f"Authorization: Basic {basic}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(form)}\r\nConnection: close\r\n\r\n"
    ).encode() + form
    connection = RawConnection(spec.port)
    try:
        answer = await asyncio.wait_for(connection.send(wire), spec.timeout_seconds)
    finally:
        await connection.close()
    if answer.status != 200:
        raise RuntimeError(f"The token request failed: HTTP {answer.status} {answer.body[:300]!r}")
    token: str = json.loads(answer.body)["access_token"]
    return token


async def _refresh_tokens(spec: LoadSpec, auth: ClientAuth, requests: _Requests) -> None:
    """Replace the bearer token every ``refresh_seconds`` until cancelled."""
    rounds = int((spec.warmup_seconds + spec.seconds) / auth.refresh_seconds) + 1
    for _ in range(rounds):
        await asyncio.sleep(auth.refresh_seconds)
        requests.set_token(await _get_token(spec, auth))


async def _worker(
    spec: LoadSpec,
    engine: _RawEngine | _HttpxEngine,
    requests: _Requests,
    deadline: float,
    outcomes: list[_Outcome],
    collected: list[str],
) -> None:
    connection = await engine.connection()
    try:
        for _ in range(MAX_REQUESTS_PER_CONNECTION):
            started = time.perf_counter()
            if started >= deadline:
                break
            index = requests.next_index()
            error: str | None = None
            try:
                async with asyncio.timeout(spec.timeout_seconds):
                    if isinstance(connection, RawConnection):
                        answer = await connection.send(requests.message(index))
                    else:
                        answer = await connection.request(
                            spec.method,
                            spec.paths[index % len(spec.paths)],
                            requests.headers() | requests.unique_headers(),
                            spec.bodies[index % len(spec.bodies)] if spec.bodies else "",
                        )
            except Exception as exc:  # every failure is an error of the run, never a crash
                error = type(exc).__name__
                if isinstance(connection, RawConnection):
                    await connection.close()
            else:
                if not 200 <= answer.status < 300:
                    error = f"HTTP {answer.status}"
                elif spec.collect is not None:
                    collected.append(str(json.loads(answer.body)[spec.collect]))
            outcomes.append(_Outcome(started, time.perf_counter(), error))
    finally:
        await connection.close()


def _percentile(ordered: Sequence[float], share: float) -> float:
    """The nearest-rank percentile of an ascending sequence (0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), int(-(-share * len(ordered) // 1))))
    return ordered[rank - 1]


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


async def generate(spec: LoadSpec) -> LoadResult:
    """Apply the load and measure it (in the current process)."""
    if spec.concurrency < 1 or spec.seconds <= 0 or not spec.paths:
        raise ValueError("A load needs a concurrency of at least 1, a duration and a path.")
    requests = _Requests(spec)
    refresher: asyncio.Task[None] | None = None
    if spec.auth is not None:
        requests.set_token(await _get_token(spec, spec.auth))
        refresher = asyncio.create_task(_refresh_tokens(spec, spec.auth, requests))
    engine: _RawEngine | _HttpxEngine
    if spec.engine == "raw":
        engine = _RawEngine(spec.port)
    elif spec.engine == "httpx":
        engine = _HttpxEngine(spec.port, spec.concurrency, spec.timeout_seconds)
    else:
        raise ValueError(f"Unknown engine {spec.engine!r}.")
    outcomes: list[_Outcome] = []
    collected: list[str] = []
    start = time.perf_counter()
    opens = start + spec.warmup_seconds
    deadline = opens + spec.seconds
    cpu: dict[str, float] = {}
    loop = asyncio.get_running_loop()
    # Note the CPU clock when the window opens and closes (timers on the loop's clock).
    now = loop.time()
    loop.call_at(now + spec.warmup_seconds, lambda: cpu.setdefault("open", _cpu_seconds()))
    loop.call_at(
        now + spec.warmup_seconds + spec.seconds, lambda: cpu.setdefault("close", _cpu_seconds())
    )
    try:
        await asyncio.gather(
            *(
                _worker(spec, engine, requests, deadline, outcomes, collected)
                for _ in range(spec.concurrency)
            )
        )
    finally:
        if refresher is not None:
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
        await engine.aclose()
    cpu_open = cpu.get("open", 0.0)
    cpu_close = cpu.get("close", _cpu_seconds())
    inside = [o for o in outcomes if opens <= o.finished <= deadline]
    latencies = sorted(1000 * (o.finished - o.started) for o in inside)
    thirds = [0, 0, 0]
    for o in inside:
        if o.error is None:
            thirds[min(2, int(3 * (o.finished - opens) / spec.seconds))] += 1
    kinds = Counter(o.error for o in outcomes if o.error is not None)
    return LoadResult(
        engine=spec.engine,
        concurrency=spec.concurrency,
        seconds=spec.seconds,
        completed=len(inside),
        ok=sum(1 for o in inside if o.error is None),
        errors=sum(kinds.values()),
        error_kinds=dict(kinds),
        window_errors=sum(1 for o in inside if o.error is not None),
        total_requests=len(outcomes),
        p50_ms=_percentile(latencies, 0.50),
        p99_ms=_percentile(latencies, 0.99),
        mean_ms=sum(latencies) / len(latencies) if latencies else 0.0,
        max_ms=latencies[-1] if latencies else 0.0,
        window_rates=tuple(3 * n / spec.seconds for n in thirds),
        client_cpu_seconds=cpu_close - cpu_open,
        collected=tuple(collected),
    )


def run_on_uvloop(main: Coroutine[Any, Any, _T]) -> _T:
    """Run ``main`` to its end on uvloop when it is installed (less CPU per request than
    asyncio's own loop, CPU that a client on this machine takes from the server)."""
    try:
        import uvloop  # noqa: PLC0415  # optional: uvicorn[standard] brings it
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def run_load(spec: LoadSpec) -> LoadResult:
    """Run the load generator in a process of its own and return what it measured."""
    budget = spec.warmup_seconds + spec.seconds + spec.timeout_seconds + 60
    completed = subprocess.run(
        [sys.executable, "-m", "bench.load", "--spec", "-"],
        input=spec.to_json(),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=budget,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"The load generator failed:\n{completed.stderr[-3000:]}")
    return LoadResult.from_json(completed.stdout.strip().splitlines()[-1])


# --- the servers under test -----------------------------------------------------------------


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def process_group_cpu(group: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of a process group
    (a server started in its own session: its supervisor and its workers); Linux only."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # the process has gone
        if int(fields[2]) == group:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def _wait_until_up(process: subprocess.Popen[bytes], url: str, log: Path, limit: float) -> None:
    """Poll ``url`` until it answers 200; fail if the process exits or ``limit`` s pass."""
    deadline = time.monotonic() + limit
    for _ in range(int(limit / 0.2) + 1):
        if process.poll() is not None:
            raise RuntimeError(f"The server exited with {process.returncode}:\n{_tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    raise RuntimeError(f"The server did not answer {url} within {limit:g} s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server started in its own session: SIGTERM, then SIGKILL to its group."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
    # uvicorn's worker processes are in the server's process group; none may outlive it.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


@dataclass(frozen=True, kw_only=True)
class EContractServer:
    """A running ``econtract serve`` on a fresh data directory, with an API client."""

    port: int
    data_dir: Path
    client_id: str
    client_secret: str
    department: str
    licence_seal_algorithm: str
    """The key algorithm of the department's licence seal (what issuance seals with)."""
    log: Path
    process_group: int
    """The process group of the server and its workers (for :func:`process_group_cpu`)."""

    def log_problems(self, limit: int = 3) -> list[str]:
        """The distinct errors of the server's log (JSON lines): the message and the last
        lines of the exception (the error and, for the database, the statement)."""
        found: list[str] = []
        for line in self.log.read_text(errors="replace").splitlines():
            if '"level": "error"' not in line and '"level": "critical"' not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            tail = [
                text.strip()
                for text in str(record.get("exception", "")).splitlines()
                if text.strip() and not text.startswith("(Background")
            ][-2:]
            summary = " | ".join([str(record.get("message", "")).strip(), *tail])[:400]
            if summary not in found:
                found.append(summary)
                if len(found) >= limit:
                    break
        return found

    @property
    def base_url(self) -> str:
        """Where it listens."""
        return f"http://{HOST}:{self.port}"

    def auth(self) -> ClientAuth:
        """The API client's credentials, for the load generator."""
        return ClientAuth(client_id=self.client_id, client_secret=self.client_secret)

    def token(self) -> str:
        """A fresh bearer token."""
        response = httpx.post(
            f"{self.base_url}/v1/token",
            data={"grant_type": "client_credentials"},
            auth=(self.client_id, self.client_secret),
            timeout=30,
        )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token


DEPARTMENT = "11330100002502899U"
"""The demo department ``econtract init`` creates."""


def _server_env(data_dir: Path, port: int) -> dict[str, str]:
    """The process environment: ours, without any ECONTRACT_* setting from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECONTRACT_")}
    env.update(
        ECONTRACT_DATA_DIR=str(data_dir),
        ECONTRACT_PUBLIC_BASE_URL=f"http://{HOST}:{port}",
        ECONTRACT_KEY_PASSPHRASE=base64.urlsafe_b64encode(os.urandom(24)).decode(),
        # The load comes from one address: the per-address limits would measure themselves.
        ECONTRACT_RATE_QR="",
        ECONTRACT_RATE_VERIFY="",
    )
    return env


def _econtract(args: list[str], env: dict[str, str], cwd: Path) -> Any:
    """Run an ``econtract`` command with ``--json`` and return its parsed output."""
    executable = Path(sys.executable).with_name("econtract")
    completed = subprocess.run(
        [str(executable), *args, "--json"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"econtract {' '.join(args)} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout)


@contextlib.contextmanager
def econtract_server(
    workers: int = 2,
    settings: dict[str, str] | None = None,
    *,
    instance_of: EContractServer | None = None,
) -> Iterator[EContractServer]:
    """``econtract serve --workers N`` on a free port and a fresh temporary data directory
    (SQLite), with an API client of the demo department (scopes issue, read, revoke); stopped and
    removed on leaving, also on failure. ``settings`` are more ``ECONTRACT_*`` variables.

    ``instance_of`` makes a second instance of a running server's service: its data directory
    gets a copy of the other's key files and nothing else, no ``init`` and no client are made,
    and the other's API client is used. ``settings`` must then name the same database and
    ``ECONTRACT_KEY_PASSPHRASE`` as the other's."""
    data_dir = Path(tempfile.mkdtemp(prefix="econtract-bench-")).resolve()
    port = free_port()
    env = _server_env(data_dir, port) | (settings or {})
    log = data_dir / "server.log"
    process: subprocess.Popen[bytes] | None = None
    try:
        # Every command runs in the data directory, so that nothing lands in the repository.
        if instance_of is None:
            _econtract(["init"], env, data_dir)
            client = _econtract(
                ["clients", "create", "--department", DEPARTMENT, "--scopes", "issue,read,revoke"],
                env,
                data_dir,
            )
        else:
            shutil.copytree(instance_of.data_dir / "keys", data_dir / "keys", dirs_exist_ok=True)
            client = {
                "client_id": instance_of.client_id,
                "client_secret": instance_of.client_secret,
            }
        seals = _econtract(["seals", "list", "--department", DEPARTMENT], env, data_dir)
        algorithm = next(s["algorithm"] for s in seals if s["kind"] == "licence")
        executable = str(Path(sys.executable).with_name("econtract"))
        command = [executable, "serve", "--host", HOST, "--port", str(port)]
        command += ["--workers", str(workers)]
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                command,
                env=env,
                cwd=data_dir,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_until_up(process, f"http://{HOST}:{port}/healthz", log, limit=90)
        yield EContractServer(
            port=port,
            data_dir=data_dir,
            client_id=client["client_id"],
            client_secret=client["client_secret"],
            department=DEPARTMENT,
            licence_seal_algorithm=algorithm,
            log=log,
            process_group=process.pid,
        )
    except BaseException:
        print(f"--- server log (tail) ---\n{_tail(log)}", file=sys.stderr)
        raise
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(data_dir, ignore_errors=True)


BARE_PATH = "/bare"
"""The bare app's route."""


@contextlib.contextmanager
def bare_server(workers: int = 2) -> Iterator[tuple[int, int]]:
    """``uvicorn bench.bare_app:app --workers N`` on a free port, with the settings
    ``econtract serve`` gives uvicorn (no access log, no server header); yields the port and
    the server's process group."""
    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="econtract-bench-bare-"))
    log = log_dir / "bare.log"
    command = [str(Path(sys.executable).with_name("uvicorn")), "bench.bare_app:app"]
    command += ["--host", HOST, "--port", str(port), "--workers", str(workers)]
    command += ["--no-access-log", "--no-server-header"]
    process: subprocess.Popen[bytes] | None = None
    try:
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_until_up(process, f"http://{HOST}:{port}{BARE_PATH}", log, limit=60)
        yield port, process.pid
    except BaseException:
        print(f"--- bare server log (tail) ---\n{_tail(log)}", file=sys.stderr)
        raise
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(log_dir, ignore_errors=True)


# --- command line ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Run one load from the command line (``--url``) or from a JSON spec (``--spec -``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--spec", help="'-' to read a JSON LoadSpec on stdin (prints JSON)")
    parser.add_argument("--url", help="http://127.0.0.1:PORT/PATH to GET")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before the window")
    parser.add_argument("--engine", choices=("raw", "httpx"), default="raw")
    parser.add_argument("--header", action="append", default=[], help="NAME: VALUE (repeat)")
    args = parser.parse_args(argv)
    if args.spec == "-":
        result = run_on_uvloop(generate(LoadSpec.from_json(sys.stdin.read())))
        print(json.dumps(asdict(result), ensure_ascii=False))
        return
    if not args.url:
        parser.error("give --url or --spec -")
    url = urlsplit(args.url)
    if url.scheme != "http" or url.hostname != HOST or url.port is None:
        parser.error(f"only http://{HOST}:PORT/... is allowed")
    headers = dict(h.split(":", 1) for h in args.header)
    spec = LoadSpec(
        port=url.port,
        paths=(url.path + (f"?{url.query}" if url.query else "") or "/",),
        headers={k.strip(): v.strip() for k, v in headers.items()},
        concurrency=args.concurrency,
        seconds=args.seconds,
        warmup_seconds=args.warmup,
        engine=args.engine,
    )
    result = run_on_uvloop(generate(spec))
    print(result.summary())
    print(result.client_line())
    if result.error_kinds:
        print(f"errors: {result.error_kinds}")


if __name__ == "__main__":
    main()
