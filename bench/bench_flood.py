"""Upload flood benchmark: the QR page and /healthz while 50 uploads flood ``POST /v1/verify``.

Run::

    .venv/bin/python -m bench.bench_flood [--rounds 3] [--seconds 10] [--rate 100]
        [--flood 50] [--flood-pause 0.5]

Starts ``econtract serve --workers 2`` on a fresh data directory (SQLite) with the per-address
rate limits off (the flood comes from one address, and the verification pool is what is
measured here, not the limits), issues a few licences over the API and reads their QR codes
back, and downloads one sealed licence to upload. Then ``--rounds`` rounds of two phases,
unloaded then flooded, the other way round in the next round (so that a drift of the machine's
speed weighs on both phases alike):

1. unloaded: a probe asks for the QR pages (``Accept: text/html``, the tokens in turn) and
   then for ``/healthz``, ``--rate`` requests a second each for ``--seconds`` (after a second
   of warm-up), as phones do: at a steady pace, whatever the answers take. A closed-loop
   load generator (``bench/load.py``) would keep both cores busy by itself on a small machine,
   so that its latencies measured the CPU it takes, not the flood;
2. loaded: ``--flood`` clients, in a process of their own, upload the licence to
   ``POST /v1/verify`` over and over (each waits ``--flood-pause`` seconds after a refusal,
   impatient but not spinning), and after a few seconds for the flood to fill the pool the
   same two probes run again. Each client is a keep-alive connection that sends a prepared
   request (``bench.load``'s raw HTTP/1.1 on uvloop), so that the attacker, which would be on
   other machines, takes as little as it can of this one's two cores; its own CPU per upload
   is printed. After the flood stops, the server gets two seconds to finish what is queued.

During each flood the server's process tree (supervisor, workers, their forkservers and
verification processes) is sampled every 0.2 s for its resident memory: the sum of every
process's RSS, which counts pages that forked processes share once per process, so it is an
upper bound. Prints both p99 latencies of every round's answers pooled and their ratio
(target at most 2x), the ratio of each round (the spread), what the floods
received (200, 503 verification-busy, 429 rate-limited), and the peak memory against the bound
the pool sets: server processes x ``verify_workers`` x the per-verification memory limit, plus
the tree's memory at rest.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import os
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import httpx

from bench import placement
from bench.bench_issuance import holder_fields
from bench.bench_qr import issue_and_read_tokens
from bench.load import HOST, EContractServer, RawConnection, econtract_server, run_on_uvloop
from verify.limits import default_workers
from verify.policy import MiB, VerificationLimits

_TARGET_RATIO = 2.0
_WARMUP_SECONDS = 1.0
_PROBE_CONNECTIONS = 16
_FLOOD_RAMP_SECONDS = 4.0
_SETTLE_SECONDS = 2.0
_SAMPLE_SECONDS = 0.2
_SERVER_WORKERS = 2
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def process_tree_rss(root: int) -> int:
    """The sum of the resident memory (bytes) of a live process and all its descendants.

    By descent, not by process group: the server's verification workers lead sessions of
    their own (:func:`verify.limits.take_only_idle_cpu`)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # the process has gone
        pid = int(stat.parent.name)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21]) * _PAGE_SIZE
    total = 0
    pending = [root]
    while pending:
        pid = pending.pop()
        total += rss.get(pid, 0)
        pending.extend(children.get(pid, ()))
    return total


def _sample(root: int, idle: Path | None, stop: Event, out: Any) -> None:
    """The sampler's process: the tree's largest RSS and the number of samples, to ``out``.

    It takes only idle CPU, as the flood does: reading every process's ``stat`` takes
    milliseconds of a core five times a second, which the server's processes would otherwise
    wait for on a small machine (and show as their latency)."""
    placement.join(idle)
    peak = samples = 0
    while not stop.is_set():
        peak = max(peak, process_tree_rss(root))
        samples += 1
        stop.wait(_SAMPLE_SECONDS)
    out.put((peak, samples))


class MemorySampler:
    """Samples a process tree's RSS until stopped; keeps the largest.

    It runs in a process of its own: reading every ``/proc/<pid>/stat`` takes milliseconds of
    the interpreter's lock, which a thread would take from the probe's event loop (and show as
    the server's latency)."""

    def __init__(self, root: int, idle: Path | None) -> None:
        self.root = root
        self.peak = 0
        self.samples = 0
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._out: Any = context.Queue()
        self._process = context.Process(target=_sample, args=(root, idle, self._stop, self._out))

    def __enter__(self) -> MemorySampler:
        self._process.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self.peak, self.samples = self._out.get(timeout=60)
        self._process.join(timeout=10)


@dataclass
class FloodOutcome:
    """What the flooding clients received."""

    statuses: Counter[str] = field(default_factory=Counter)
    verified_seconds: list[float] = field(default_factory=list)
    """Time of each upload answered 200 (queueing included)."""
    cpu_seconds: float = 0.0
    """The flooding process's own CPU time."""

    def add(self, other: FloodOutcome) -> None:
        """Count ``other``'s uploads with these (another flood against the same server)."""
        self.statuses.update(other.statuses)
        self.verified_seconds.extend(other.verified_seconds)
        self.cpu_seconds += other.cpu_seconds


def upload_request(port: int, pdf: bytes) -> bytes:
    """``POST /v1/verify`` with ``pdf`` as the form's one file, as raw HTTP/1.1."""
    boundary = "econtract-bench-flood"
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="licence.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode("latin-1")
        + pdf
        + f"\r\n--{boundary}--\r\n".encode("latin-1")
    )
    head = (
        f"POST /v1/verify HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    return head + body


def _flood(
    port: int, pdf: bytes, clients: int, pause: float, idle: Path | None, stop: Event, out: Any
) -> None:
    """The flood's process: ``clients`` uploads in flight until ``stop``; the outcome to ``out``.

    It takes only idle CPU, and as little as it can: a flood comes from other machines, and on
    this small one the attacker's own CPU must not be what the probes measure. So each client
    is a keep-alive connection that writes the same prepared request and reads just the answer
    (``bench.load``'s raw HTTP/1.1 on uvloop); with httpx the flood took a third of a core,
    about 1.3 ms of CPU per upload, and ``perf sched`` found the serving threads waiting behind
    it as they did behind the server's own verifications."""
    placement.join(idle)
    outcome = FloodOutcome()
    wire = upload_request(port, pdf)

    async def upload() -> None:
        connection = RawConnection(port)
        try:
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    answer = await connection.send(wire)
                except (OSError, EOFError, ValueError) as exc:
                    # A reset or cut connection (asyncio's IncompleteReadError is an EOFError),
                    # or an answer that is not HTTP.
                    outcome.statuses[type(exc).__name__] += 1
                    await connection.close()
                    await asyncio.sleep(pause)
                    continue
                outcome.statuses[str(answer.status)] += 1
                if answer.status == 200:
                    outcome.verified_seconds.append(time.perf_counter() - started)
                else:
                    await asyncio.sleep(pause)
        finally:
            await connection.close()

    async def main() -> None:
        tasks = [asyncio.create_task(upload()) for _ in range(clients)]
        while not stop.is_set():
            await asyncio.sleep(0.1)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    started = time.process_time()
    run_on_uvloop(main())
    outcome.cpu_seconds = time.process_time() - started
    out.put((dict(outcome.statuses), outcome.verified_seconds, outcome.cpu_seconds))


class Flood:
    """The flood in a process of its own (it shares no interpreter with the probe)."""

    def __init__(
        self, port: int, pdf: bytes, clients: int, pause: float, idle: Path | None
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._out: Any = context.Queue()
        self._process = context.Process(
            target=_flood, args=(port, pdf, clients, pause, idle, self._stop, self._out)
        )
        self.outcome = FloodOutcome()

    def __enter__(self) -> Flood:
        self._process.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        statuses, verified, cpu = self._out.get(timeout=180)
        self._process.join(timeout=30)
        self.outcome = FloodOutcome(Counter(statuses), verified, cpu)


@dataclass(frozen=True)
class ProbeResult:
    """Latencies of a paced probe."""

    n: int
    errors: int
    p50_ms: float
    p99_ms: float

    @classmethod
    def of(cls, latencies: list[float], errors: int) -> ProbeResult:
        """The percentiles of ``latencies`` (milliseconds)."""
        ordered = sorted(latencies)
        return cls(len(ordered), errors, _percentile(ordered, 0.50), _percentile(ordered, 0.99))

    def summary(self) -> str:
        """One printable line."""
        return (
            f"p50 {self.p50_ms:6.1f} ms  p99 {self.p99_ms:6.1f} ms  "
            f"(n={self.n}, errors {self.errors})"
        )


@dataclass
class Answers:
    """The latencies (milliseconds) of a probe's answers, and how many were errors; the
    answers of several probes of the same kind pooled."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0

    def add(self, other: Answers) -> None:
        """Pool ``other``'s answers with these."""
        self.latencies.extend(other.latencies)
        self.errors += other.errors

    def result(self) -> ProbeResult:
        """Their percentiles."""
        return ProbeResult.of(self.latencies, self.errors)


UNLOADED = "unloaded"
FLOODED = "flooded"


def _percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, max(0, int(share * len(ordered) + 0.5) - 1))]


def round_order(rounds: int) -> list[tuple[str, str]]:
    """The phases of each round: unloaded then flooded, the other way round in the next round,
    so that a drift of the machine's speed over the run weighs on both phases alike."""
    return [
        (UNLOADED, FLOODED) if number % 2 == 0 else (FLOODED, UNLOADED) for number in range(rounds)
    ]


def pooled(rounds: list[Answers]) -> ProbeResult:
    """The percentiles of every round's answers together."""
    together = Answers()
    for answers in rounds:
        together.add(answers)
    return together.result()


def p99_ratios(unloaded: list[Answers], flooded: list[Answers]) -> tuple[float, list[float]]:
    """The flooded p99 over the unloaded p99: of all rounds' answers pooled (the verdict: a
    quiet round cannot average a bad round's tail away), and of each round (its spread)."""
    each = [
        flooded_round.result().p99_ms / unloaded_round.result().p99_ms
        for unloaded_round, flooded_round in zip(unloaded, flooded, strict=True)
    ]
    return pooled(flooded).p99_ms / pooled(unloaded).p99_ms, each


def probe(
    base_url: str, paths: list[str], headers: dict[str, str], rate: float, seconds: float
) -> Answers:
    """``rate`` requests a second to ``paths`` in turn for ``seconds`` (after a warm-up),
    started on time whatever the answers take (at most 16 in flight)."""

    async def main() -> Answers:
        limits = httpx.Limits(max_connections=_PROBE_CONNECTIONS)
        latencies: list[float] = []
        errors = 0
        async with httpx.AsyncClient(
            base_url=base_url, headers=headers, limits=limits, timeout=60
        ) as client:

            async def one(path: str, counted: bool) -> None:
                nonlocal errors
                started = time.perf_counter()
                try:
                    response = await client.get(path)
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if counted:
                    latencies.append(1000 * (time.perf_counter() - started))
                    errors += not ok

            total = int(rate * (_WARMUP_SECONDS + seconds))
            warmup = int(rate * _WARMUP_SECONDS)
            begin = time.perf_counter()
            tasks = []
            for n in range(total):
                await asyncio.sleep(max(0.0, begin + n / rate - time.perf_counter()))
                tasks.append(asyncio.create_task(one(paths[n % len(paths)], n >= warmup)))
            await asyncio.gather(*tasks)
        return Answers(latencies, errors)

    # The probe is the measuring instrument: a full pass of its own cyclic collector would
    # show as the server's latency.
    gc.collect()
    gc.disable()
    try:
        with placement.measuring_priority():
            return asyncio.run(main())
    finally:
        gc.enable()


def sealed_licence(server: EContractServer) -> bytes:
    """A licence issued and sealed by the server, as a citizen would upload it."""
    headers = {"Authorization": f"Bearer {server.token()}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
        created = client.post(
            "/v1/certificates",
            json={"type": "business_licence", "fields": holder_fields()[-1]},
            headers={"Idempotency-Key": "bench-flood-upload"},
        )
        created.raise_for_status()
        pdf = client.get(created.json()["pdf_url"])
        pdf.raise_for_status()
    return pdf.content


def _probes(
    server: EContractServer, tokens: list[str], rate: float, seconds: float
) -> dict[str, Answers]:
    qr = [f"/v/{token}" for token in tokens]
    return {
        "GET /v/{token}": probe(server.base_url, qr, {"Accept": "text/html"}, rate, seconds),
        "GET /healthz": probe(server.base_url, ["/healthz"], {}, rate, seconds),
    }


def _gib(value: float) -> str:
    return f"{value / 1024 / MiB:.2f} GiB"


def run(seconds: float, rate: float, flood_clients: int, pause: float, rounds: int) -> None:
    """Measure and print every figure."""
    verify_workers = default_workers()
    limit = VerificationLimits().memory_bytes
    print("Upload flood benchmark")
    print(
        f"  {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; {_SERVER_WORKERS} "
        f"server processes x {verify_workers} verification workers (queue {2 * verify_workers} "
        f"each); {rounds} rounds of probes at {rate:g} requests/s for {seconds:g} s unloaded "
        f"and {seconds:g} s flooded; {flood_clients} flooding uploads, {pause:g} s pause after "
        "a refusal"
    )
    with placement.measuring_priority() as realtime:
        pass
    answers: dict[str, dict[str, list[Answers]]] = {UNLOADED: {}, FLOODED: {}}
    outcome = FloodOutcome()
    peak = samples = 0
    with (
        placement.IdleGroup("econtract-bench-flood") as idle,
        econtract_server(workers=_SERVER_WORKERS) as server,
    ):
        print(
            f"  the probe at {'real-time priority' if realtime else 'default priority'}; "
            f"the flood and the memory sampler on idle CPU only: {idle.describe()}"
        )
        tokens = issue_and_read_tokens(server, 10)
        pdf = sealed_licence(server)
        # Each server process starts its forkserver at its first upload: warm both up.
        for _ in range(4):
            check = httpx.post(
                f"{server.base_url}/v1/verify",
                files={"file": ("licence.pdf", pdf, "application/pdf")},
                timeout=120,
            )
            check.raise_for_status()
            if check.json()["verdict"] != "VALID":
                raise SystemExit(f"The uploaded licence is not VALID: {check.text[:300]}")
        print(f"  {len(tokens)} licences issued; the {len(pdf):,}-byte upload verifies VALID")
        base = process_tree_rss(server.process_group)
        for order in round_order(rounds):
            for phase in order:
                if phase == UNLOADED:
                    measured = _probes(server, tokens, rate, seconds)
                else:
                    with (
                        MemorySampler(server.process_group, idle.path) as memory,
                        Flood(server.port, pdf, flood_clients, pause, idle.path) as flood,
                    ):
                        time.sleep(_FLOOD_RAMP_SECONDS)
                        measured = _probes(server, tokens, rate, seconds)
                    outcome.add(flood.outcome)
                    peak, samples = max(peak, memory.peak), samples + memory.samples
                    # The uploads still queued finish, and the flood's connections close.
                    time.sleep(_SETTLE_SECONDS)
                for name, result in measured.items():
                    answers[phase].setdefault(name, []).append(result)
        problems = server.log_problems()
    print()
    for name, quiet_rounds in answers[UNLOADED].items():
        busy_rounds = answers[FLOODED][name]
        quiet, busy = pooled(quiet_rounds), pooled(busy_rounds)
        ratio, each = p99_ratios(quiet_rounds, busy_rounds)
        print(f"  {name:<16} unloaded {quiet.summary()}")
        print(f"  {'':<16} flooded  {busy.summary()}")
        verdict = "met" if ratio <= _TARGET_RATIO else "MISSED"
        print(
            f"  {'':<16} p99 flooded / unloaded {ratio:.2f}x "
            f"(target <= {_TARGET_RATIO:g}x: {verdict})"
        )
        if rounds > 1:
            print(f"  {'':<16} round by round {' / '.join(f'{r:.2f}' for r in each)}x")
    statuses = outcome.statuses
    verified = outcome.verified_seconds
    print()
    print(
        f"  flood: {sum(statuses.values())} uploads answered: {statuses.get('200', 0)} verified, "
        f"{statuses.get('503', 0)} refused 503 (pool busy), {statuses.get('429', 0)} refused 429 "
        f"(rate limit); all: {dict(sorted(statuses.items()))}"
    )
    if verified:
        print(
            f"  verified uploads took {statistics.median(verified):.2f} s median, "
            f"{max(verified):.2f} s at most (queueing included)"
        )
    answered = sum(statuses.values())
    if answered:
        print(
            f"  the flooding process's own CPU: {outcome.cpu_seconds:.2f} s, "
            f"{1000 * outcome.cpu_seconds / answered:.2f} ms per upload"
        )
    pool = _SERVER_WORKERS * verify_workers
    bound = base + pool * limit
    verdict = "met" if peak <= bound else "MISSED"
    print(
        f"  server memory (RSS, process tree): {_gib(base)} at rest, {_gib(peak)} peak "
        f"during the floods ({samples} samples)"
    )
    print(
        f"  bound: {_gib(base)} at rest + {pool} verifications x {_gib(limit)} memory limit = "
        f"{_gib(bound)}: {verdict}"
    )
    if problems:
        print(f"  server log errors: {problems}")
    errors = sum(a.errors for phase in answers.values() for each in phase.values() for a in each)
    if errors:
        raise SystemExit(f"The probes had {errors} errors.")


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="length of each probe of each round"
    )
    parser.add_argument("--rate", type=float, default=100.0, help="probe requests per second")
    parser.add_argument("--flood", type=int, default=50, help="uploads in flight")
    parser.add_argument(
        "--flood-pause", type=float, default=0.5, help="seconds a refused uploader waits"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of an unloaded and a flooded probe"
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.rate <= 0 or args.flood < 1 or args.flood_pause < 0:
        parser.error("--seconds, --rate and --flood must be positive")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    run(args.seconds, args.rate, args.flood, args.flood_pause, args.rounds)


if __name__ == "__main__":
    main()
