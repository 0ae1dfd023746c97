"""Issuance benchmark: ``POST /v1/certificates`` end to end against "the naive in-process
pipeline".

Run::

    .venv/bin/python -m bench.bench_issuance [--seconds 60] [--concurrency 8]

The project's figure: ``econtract serve --workers 2`` on a fresh data directory (SQLite),
issued to over HTTP by the load generator of ``bench/load.py`` in a process of its own, at
``--concurrency`` requests in flight for ``--seconds`` (after a short warm-up), each request a
business licence with the fields of the next row of the sample ``tests/data/holders.csv``. It
prints certificates per second, p50 and p99 latency and errors, how the generator's
connections were split over the server's worker processes in the middle of the window, and
checks that every issued certificate has a number of its own and that there was no error.

The baseline, in this process, once per certificate: render the same licence (the same row's
fields, a licence number and a QR code of a verification URL as long as the project's) with
reportlab in the project font, registered once per process, then seal it as "pyHanko as its
documentation shows" at PAdES B-LT (``SimpleSigner.load`` from PEM files,
``PdfSigner(PdfSignatureMetadata(..., embed_validation_info=True, validation_context=...))``
with a timestamper, ``sign_pdf``), with a key of the type the project's licence seal has:
certificates per second, median (min, max) of ``--repeats`` repetitions of ``--count``.
The ratio HTTP / naive has a target of at least 10x (the scale-out issue).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import date
from functools import cache
from importlib.metadata import version
from typing import Any

import httpx
import segno
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas

from bench.bench_sealing import baseline_contender
from bench.inputs import BenchPKI, _register_font, build_bench_pki
from bench.load import EContractServer, LoadResult, LoadSpec, econtract_server, process_group_cpu
from bench.load import run_load as run_load_process
from bench.timing import Rate, measure_rate
from econtract.issuance import TEMPLATES
from econtract.uscc import check_character, organisation_check_character
from keys.handles import KeyAlgorithm
from keys.signer import to_asn1
from tests.data import load_holders

TYPE_CODE = "business_licence"
"""The certificate type issued."""
LEVEL = "B-LT"
"""The PAdES level the project issues at, and so the baseline's."""
_TARGET_RATIO = 10.0
"""The scale-out issue's bar: HTTP issuance at least ten times the naive pipeline."""
_WARMUP_SECONDS = 3.0
_DEPARTMENT_NAME = "杭州市市场监督管理局"
# A QR token of the project is a signed JWT of about 330 characters; the baseline's QR code
# holds a URL as long, so that both draw a QR code of the same size.
_TOKEN_BYTES = 250


@cache
def holder_fields() -> list[dict[str, Any]]:
    """The licence fields of every row of the sample ``holders.csv`` (empty cells dropped)."""
    return [{k: v for k, v in row.items() if v} for row in load_holders()]


def distinct_holders(count: int) -> list[dict[str, Any]]:
    """``count`` holders, each with a credit code of its own: the rows of ``holders.csv`` in
    turn, from the second round on with fresh valid codes (a holder holds one valid licence of
    a type, so a row issued twice would be refused)."""
    rows = holder_fields()
    holders = []
    for n in range(count):
        fields = dict(rows[n % len(rows)])
        if n >= len(rows):
            body = f"{n:08d}"
            first17 = "91330100" + body + organisation_check_character(body)
            fields["credit_code"] = first17 + check_character(first17)
        holders.append(fields)
    return holders


def _wrap(text: str, width: int) -> list[str]:
    return [text[i : i + width] for i in range(0, len(text), width)] or [""]


def render_naive_licence(fields: dict[str, Any], number: str, verify_url: str) -> bytes:
    """A business licence drawn with reportlab as a script would: the project font (registered
    once per process), the fields as label/value rows, a QR code of ``verify_url`` as vector
    modules with segno."""
    font = _register_font()
    properties = TEMPLATES[TYPE_CODE].schema["properties"]
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4)
    width, height = A4
    page.setTitle("营业执照")
    page.setStrokeColorRGB(0.6, 0.1, 0.1)
    page.setLineWidth(3)
    page.rect(12 * mm, 12 * mm, width - 24 * mm, height - 24 * mm)
    page.setFont(font, 36)
    page.drawCentredString(width / 2, height - 50 * mm, "营 业 执 照")
    page.setFont(font, 12)
    page.drawCentredString(width / 2, height - 60 * mm, "（副 本）")
    page.setFont(font, 10)
    page.drawRightString(width - 25 * mm, height - 30 * mm, f"证照编号：{number}")
    rows: list[tuple[str, str]] = []
    for key in ("credit_code", "name", "kind", "legal_representative", "registered_capital"):
        rows.append((properties[key]["title"], str(fields.get(key, ""))))
    rows.append(("营业期限", f"{fields['established']}至{fields.get('business_term', '长期')}"))
    for key in ("address", "business_scope"):
        lines = _wrap(str(fields.get(key, "")), 26)
        rows.append((properties[key]["title"], lines[0]))
        rows.extend(("", line) for line in lines[1:])
    y = height - 80 * mm
    page.setFont(font, 13)
    for label, value in rows:
        if label:
            page.drawString(30 * mm, y, label)
        page.drawString(72 * mm, y, value)
        y -= 9 * mm
    page.setFont(font, 14)
    page.drawString(width - 95 * mm, 55 * mm, "登记机关  " + _DEPARTMENT_NAME)
    today = date.today()
    page.drawString(width - 75 * mm, 45 * mm, f"{today.year} 年 {today.month} 月 {today.day} 日")
    qr = segno.make(verify_url, error="m")
    module = 0.7 * mm
    left, top = 30 * mm, 25 * mm + qr.symbol_size(scale=1)[1] * module
    page.setFillColorRGB(0, 0, 0)
    for row_index, row in enumerate(qr.matrix_iter(scale=1, border=0)):
        for column_index, dark in enumerate(row):
            if dark:
                page.rect(
                    left + column_index * module,
                    top - (row_index + 1) * module,
                    module,
                    module,
                    stroke=0,
                    fill=1,
                )
    page.showPage()
    page.save()
    return out.getvalue()


def naive_pipeline(pki: BenchPKI, algorithm: KeyAlgorithm) -> Callable[[], bytes]:
    """One certificate per call: render the next holder's licence, then seal it at B-LT as
    pyHanko's documentation shows (signer loaded from PEM files for each document)."""
    contender = baseline_contender(pki.seals[algorithm], pki, LEVEL)
    rows = holder_fields()
    year = date.today().year
    counter = iter(range(1, 1_000_000))

    def issue_one() -> bytes:
        sequence = next(counter)
        number = f"YYZZ330100{year}{sequence:06d}"
        url = f"http://127.0.0.1:8000/v/{secrets.token_urlsafe(_TOKEN_BYTES)}"
        pdf = render_naive_licence(rows[sequence % len(rows)], number, url)
        return contender.seal(pdf)

    return issue_one


def _check_sealed(pki: BenchPKI, sealed: bytes) -> None:
    """Refuse to time a baseline whose seal does not validate."""
    context = ValidationContext(trust_roots=[to_asn1(pki.root.certificate)])
    signature = PdfFileReader(io.BytesIO(sealed)).embedded_signatures[0]
    status = validate_pdf_signature(signature, context, ts_validation_context=context)
    if not (status.intact and status.valid and status.trusted):
        raise SystemExit(f"The naive pipeline made a seal that does not validate: {status}")


def measure_naive(algorithm: KeyAlgorithm, count: int, repeats: int) -> Rate:
    """Certificates per second of the naive pipeline, in this process."""
    pki = build_bench_pki((algorithm,))
    issue_one = naive_pipeline(pki, algorithm)
    _check_sealed(pki, issue_one())
    return measure_rate(
        f"naive in-process ({algorithm.value} {LEVEL})", issue_one, count=count, repeats=repeats
    )


def measure_http(
    server: EContractServer, seconds: float, concurrency: int, engine: str
) -> tuple[LoadResult, float, list[int]]:
    """Issue over HTTP for ``seconds``; return the load's figures, the server's CPU seconds
    per certificate (over the whole load, warm-up included) and the connections per server
    process in the middle of the window."""
    # A holder per request, for more requests than the run can make (the service issues far
    # fewer than 100 licences a second on the machines measured).
    bodies = tuple(
        json.dumps({"type": TYPE_CODE, "fields": fields}, ensure_ascii=False)
        for fields in distinct_holders(int((seconds + _WARMUP_SECONDS) * 100))
    )
    spec = LoadSpec(
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
        # Every issuance is a new case: the API refuses one without a key (428), and a key
        # sent twice would replay the first certificate instead of issuing.
        unique_header="Idempotency-Key",
    )
    before = process_group_cpu(server.process_group)
    connections: list[int] = []
    middle = threading.Timer(
        _WARMUP_SECONDS + seconds / 2,
        lambda: connections.extend(connections_per_process([server.port])),
    )
    middle.start()
    result = run_load_process(spec)
    middle.join()
    used = process_group_cpu(server.process_group) - before
    return result, used / max(result.total_requests, 1), connections


def connections_per_process(ports: list[int]) -> list[int]:
    """The established connections to ``ports``, counted per server process, most first (from
    ``ss``, Linux): whether ``econtract serve`` spread the generator's long-lived connections
    over its workers."""
    found: list[str] = []
    for port in ports:
        listing = subprocess.run(
            ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        found += re.findall(r"pid=(\d+)", listing)
    return sorted((found.count(pid) for pid in set(found)), reverse=True)


def number_lock_quantiles(port: int) -> str:
    """The p50 and p99 of ``econtract_number_lock_seconds`` from the server's ``/metrics``,
    as the upper bounds of the histogram buckets they fall in (all workers' observations)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("econtract_number_lock_seconds_bucket"):
            label = line.split('le="', 1)[1].split('"', 1)[0]
            le = float("inf") if label == "+Inf" else float(label)
            buckets[le] = buckets.get(le, 0.0) + float(line.split()[-1])
    total = buckets.get(float("inf"), 0.0)
    if not total:
        return "no observations"

    def bound(q: float) -> str:
        le = next(le for le in sorted(buckets) if buckets[le] >= q * total)
        return "> 1 s" if le == float("inf") else f"<= {1000 * le:g} ms"

    return f"{int(total)} issuances, p50 {bound(0.5)}, p99 {bound(0.99)}"


def run(
    seconds: float, concurrency: int, count: int, repeats: int, engine: str, skip_naive: bool
) -> None:
    """Measure and print every figure."""
    logging.disable(logging.WARNING)
    print("Issuance benchmark")
    print(
        f"  {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; pyHanko "
        f"{version('pyHanko')}; {len(holder_fields())} holder rows used in turn"
    )
    print(
        f"  HTTP: econtract serve --workers 2 (SQLite), concurrency {concurrency}, "
        f"{seconds:g} s after {_WARMUP_SECONDS:g} s of warm-up, load generator engine {engine}"
    )
    with econtract_server(workers=2) as server:
        algorithm = KeyAlgorithm(server.licence_seal_algorithm)
        result, server_cpu, connections = measure_http(server, seconds, concurrency, engine)
        problems = server.log_problems() if result.errors else []
        lock = number_lock_quantiles(server.port)
    numbers = result.collected
    print()
    print(f"{'HTTP POST /v1/certificates':<48} {result.summary('certs/s')}")
    thirds = ", ".join(f"{rate:.1f}" for rate in result.window_rates)
    print(
        f"{'':<48} thirds of the window: {thirds} certs/s; mean {result.mean_ms:.0f} ms, max "
        f"{result.max_ms:.0f} ms"
    )
    print(f"{'':<48} server CPU {1000 * server_cpu:.1f} ms per certificate; {result.client_line()}")
    split = "/".join(str(n) for n in connections) or "unknown"
    print(f"{'':<48} connections per server process mid-window: {split}")
    distinct = len(set(numbers)) == len(numbers)
    print(
        f"{'certificates issued (warm-up included)':<48} {len(numbers):10d}  "
        f"numbers distinct: {'yes' if distinct else 'NO'}"
    )
    print(f"{'errors (warm-up included)':<48} {result.errors:10d}  {result.error_kinds or ''}")
    print(f"{'number counter lock held (server histogram)':<48} {lock}")
    for line in problems:
        print(f"  server log: {line}")
    sys.stdout.flush()
    if skip_naive:
        return
    print()
    print(f"  naive: {count} certificates per repetition, {repeats} repetitions, one process")
    naive = measure_naive(algorithm, count, repeats)
    print(naive.line("certs/s"))
    print(f"{'':<48} {1000 / naive.median:.1f} ms of one core per certificate")
    value = result.per_second / naive.median
    verdict = "met" if value >= _TARGET_RATIO else "MISSED"
    print()
    print(f"{'HTTP / naive (certs/s)':<48} {value:10.2f}x  target >= {_TARGET_RATIO}x: {verdict}")
    print(
        f"{'CPU per certificate, naive / server':<48} "
        f"{(1 / naive.median) / server_cpu:10.2f}x  (not a target; independent of the "
        f"number of cores)"
    )
    if result.errors or not distinct:
        raise SystemExit("The HTTP run had errors or issued a number twice.")


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the HTTP run")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    parser.add_argument("--count", type=int, default=20, help="naive certificates per repetition")
    parser.add_argument("--repeats", type=int, default=3, help="naive repetitions")
    parser.add_argument("--engine", choices=("raw", "httpx"), default="raw")
    parser.add_argument("--skip-naive", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.concurrency < 1 or args.count < 1 or args.repeats < 1:
        parser.error("--seconds, --concurrency, --count and --repeats must be positive")
    run(args.seconds, args.concurrency, args.count, args.repeats, args.engine, args.skip_naive)


if __name__ == "__main__":
    main()
