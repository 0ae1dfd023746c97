"""QR page benchmark: ``GET /v/{token}`` against a bare FastAPI endpoint, over HTTP.

Run::

    .venv/bin/python -m bench.bench_qr [--seconds 20] [--concurrency 8] [--repeats 3]
        [--writes-per-second W]

Starts ``econtract serve --workers 2`` on a fresh data directory (SQLite), issues
``--certificates`` licences (20) over the API and reads their QR codes back from the sealed PDFs
(``pdftoppm`` and ``zbarimg``), then starts the baseline (``bench/README.md``): a bare
FastAPI route returning a constant small JSON document (``bench/bare_app.py``), served by
uvicorn with 2 workers as the project is. The load generator (``bench/load.py``, in a process
of its own) then asks for the QR pages as a phone does (``Accept: text/html``, the tokens in
turn) and for the bare route, at the same concurrency, alternately, ``--repeats`` times for
``--seconds`` each (after a 2-second warm-up). Prints requests per second of both (median, min,
max), latencies, errors, the ratio QR page / bare (target at least 0.50), the server CPU
time per request of both, which the load generator's share of the machine does not skew, and
how each run's connections were split over the server's processes (``econtract serve`` hands
each to the worker with the fewest; uvicorn's workers race for them, and one may take all).

With ``--writes-per-second W`` a thread of this process also suspends and reinstates one more
licence over the API, W times a second, while the QR pages are asked for: every write makes
every worker read the certificate rows again instead of answering from the ones it remembered.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.bench_issuance import connections_per_process, holder_fields
from bench.load import (
    BARE_PATH,
    EContractServer,
    LoadResult,
    LoadSpec,
    bare_server,
    econtract_server,
    process_group_cpu,
    run_load,
)
from bench.timing import Rate, ratio_line

_TARGET_RATIO = 0.50
_WARMUP_SECONDS = 2.0


def qr_url(pdf: bytes) -> str:
    """The URL in a sealed licence's QR code (the page drawn at 150 dpi, then decoded)."""
    with tempfile.TemporaryDirectory(prefix="econtract-bench-qr-") as directory:
        source = Path(directory) / "licence.pdf"
        source.write_bytes(pdf)
        image = Path(directory) / "page"
        command = ["pdftoppm", "-r", "150", "-png", "-singlefile", "-f", "1", "-l", "1"]
        subprocess.run(
            [*command, str(source), str(image)],
            check=True,
            capture_output=True,
            timeout=60,
        )
        decoded = subprocess.run(
            ["zbarimg", "--raw", "-q", f"{image}.png"],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
    return decoded.stdout.strip()


def issue_and_read_tokens(server: EContractServer, count: int) -> list[str]:
    """Issue ``count`` licences and return the tokens of their QR codes, each checked VALID."""
    headers = {"Authorization": f"Bearer {server.token()}"}
    pdfs: list[bytes] = []
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
        for n, fields in enumerate(holder_fields()[:count]):
            response = client.post(
                "/v1/certificates",
                json={"type": "business_licence", "fields": fields},
                headers={"Idempotency-Key": f"bench-qr-{n}"},
            )
            response.raise_for_status()
            pdf = client.get(response.json()["pdf_url"])
            pdf.raise_for_status()
            pdfs.append(pdf.content)
    return read_tokens(server, pdfs)


def read_tokens(server: EContractServer, pdfs: list[bytes]) -> list[str]:
    """The tokens of the QR codes of sealed licences, each page checked VALID."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        urls = list(pool.map(qr_url, pdfs))
    prefix = f"{server.base_url}/v/"
    tokens = []
    for url in urls:
        if not url.startswith(prefix):
            raise SystemExit(f"A QR code holds {url!r}, not a URL under {prefix}")
        token = url.removeprefix(prefix)
        check = httpx.get(url, headers={"Accept": "application/json"}, timeout=30)
        if check.status_code != 200 or check.json()["verdict"] != "VALID":
            raise SystemExit(f"The QR page of {url} does not say VALID: {check.text[:300]}")
        tokens.append(token)
    if len(set(tokens)) != len(tokens):
        raise SystemExit("Two licences carry the same QR token.")
    return tokens


@contextmanager
def registry_writes(server: EContractServer, per_second: float) -> Iterator[list[int]]:
    """While the block runs, suspend and reinstate a licence of its own ``per_second`` times a
    second over the API; yields a list holding the number of writes made (when done)."""
    made = [0]
    if per_second <= 0:
        yield made
        return
    headers = {"Authorization": f"Bearer {server.token()}"}
    stop = threading.Event()
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
        created = client.post(
            "/v1/certificates",
            json={"type": "business_licence", "fields": holder_fields()[-1]},
            headers={"Idempotency-Key": "bench-qr-writes"},
        )
        created.raise_for_status()
        certificate_id = created.json()["id"]

        def write() -> None:
            actions = ("suspend", "reinstate")
            next_at = time.monotonic()
            while not stop.is_set():
                action = actions[made[0] % 2]
                answer = client.post(
                    f"/v1/certificates/{certificate_id}/{action}", json={"reason": "bench"}
                )
                answer.raise_for_status()
                made[0] += 1
                next_at += 1 / per_second
                stop.wait(max(0.0, next_at - time.monotonic()))

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        try:
            yield made
        finally:
            stop.set()
            writer.join(timeout=60)


def _measure(spec: LoadSpec, group: int) -> tuple[LoadResult, float, list[int]]:
    """Run a load; return what it measured, the server's CPU seconds per request and the
    generator's connections per server process in the middle of the window."""
    connections: list[int] = []
    middle = threading.Timer(
        spec.warmup_seconds + spec.seconds / 2,
        lambda: connections.extend(connections_per_process([spec.port])),
    )
    before = process_group_cpu(group)
    middle.start()
    result = run_load(spec)
    middle.join()
    used = process_group_cpu(group) - before
    return result, used / max(result.total_requests, 1), connections


def run(
    seconds: float,
    concurrency: int,
    repeats: int,
    certificates: int,
    engine: str,
    writes_per_second: float = 0.0,
) -> None:
    """Measure and print every figure."""
    print("QR page benchmark")
    print(
        f"  {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; concurrency "
        f"{concurrency}, {repeats} x {seconds:g} s per contender (alternating, after "
        f"{_WARMUP_SECONDS:g} s of warm-up each), load generator engine {engine}"
    )
    with econtract_server(workers=2) as server:
        tokens = issue_and_read_tokens(server, certificates)
        print(f"  {len(tokens)} licences issued, their QR codes read back and checked VALID")
        qr_spec = LoadSpec(
            port=server.port,
            paths=tuple(f"/v/{token}" for token in tokens),
            headers={"Accept": "text/html"},
            concurrency=concurrency,
            seconds=seconds,
            warmup_seconds=_WARMUP_SECONDS,
            engine=engine,
        )
        with bare_server(workers=2) as (bare_port, bare_group):
            bare_spec = LoadSpec(
                port=bare_port,
                paths=(BARE_PATH,),
                concurrency=concurrency,
                seconds=seconds,
                warmup_seconds=_WARMUP_SECONDS,
                engine=engine,
            )
            print()
            runs: dict[str, list[tuple[LoadResult, float]]] = {"qr": [], "bare": []}
            for repetition in range(1, repeats + 1):
                for name, spec, group in (
                    ("qr", qr_spec, server.process_group),
                    ("bare", bare_spec, bare_group),
                ):
                    with registry_writes(
                        server, writes_per_second if name == "qr" else 0.0
                    ) as writes:
                        result, cpu, connections = _measure(spec, group)
                    runs[name].append((result, cpu))
                    label = "GET /v/{token}" if name == "qr" else f"bare GET {BARE_PATH}"
                    print(f"  #{repetition} {label:<22}{result.summary()}")
                    print(
                        f"  {'':<25}server CPU {1e6 * cpu:.0f} us/request; {result.client_line()}"
                    )
                    split = "/".join(str(n) for n in connections) or "unknown"
                    print(f"  {'':<25}connections per server process mid-window: {split}")
                    if writes[0]:
                        print(f"  {'':<25}registry writes during the run: {writes[0]}")
                    if result.error_kinds:
                        print(f"  {'':<25}errors: {result.error_kinds}")
                    sys.stdout.flush()
    qr_rate = Rate(
        f"GET /v/{{token}} (HTML, {certificates} tokens in turn)",
        tuple(r.per_second for r, _ in runs["qr"]),
    )
    bare_rate = Rate(f"bare FastAPI GET {BARE_PATH}", tuple(r.per_second for r, _ in runs["bare"]))
    print()
    print(qr_rate.line("req/s"))
    print(bare_rate.line("req/s"))
    value = qr_rate.median / bare_rate.median
    verdict = "met" if value >= _TARGET_RATIO else "MISSED"
    print(ratio_line("QR page / bare", qr_rate, bare_rate, f"target >= {_TARGET_RATIO}: {verdict}"))
    qr_cpu = sorted(cpu for _, cpu in runs["qr"])[len(runs["qr"]) // 2]
    bare_cpu = sorted(cpu for _, cpu in runs["bare"])[len(runs["bare"]) // 2]
    print(
        f"{'server CPU per request, QR page / bare':<48} {qr_cpu / bare_cpu:10.2f}x  "
        f"({1e6 * qr_cpu:.0f} us vs {1e6 * bare_cpu:.0f} us, median; not a target)"
    )
    errors = sum(r.errors for results in runs.values() for r, _ in results)
    print(f"{'errors (all runs, warm-up included)':<48} {errors:10d}")
    if errors:
        raise SystemExit("The runs had errors.")


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each run")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    parser.add_argument("--repeats", type=int, default=3, help="runs per contender")
    parser.add_argument("--certificates", type=int, default=20, help="licences (QR tokens)")
    parser.add_argument("--engine", choices=("raw", "httpx"), default="raw")
    parser.add_argument(
        "--writes-per-second",
        type=float,
        default=0.0,
        help="status changes per second made to the registry while the QR pages are asked for",
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.concurrency < 1 or args.repeats < 1:
        parser.error("--seconds, --concurrency and --repeats must be positive")
    if args.writes_per_second < 0:
        parser.error("--writes-per-second must not be negative")
    if not 1 <= args.certificates <= 59:
        parser.error("--certificates must be between 1 and 59 (the rows of holders.csv)")
    run(
        args.seconds,
        args.concurrency,
        args.repeats,
        args.certificates,
        args.engine,
        args.writes_per_second,
    )


if __name__ == "__main__":
    main()
