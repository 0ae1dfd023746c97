"""Prometheus metrics of the service (multi-process aware when several workers serve)."""

from __future__ import annotations

import os
import threading
from bisect import bisect_left

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter(
    "econtract_http_requests_total", "HTTP requests served.", ["method", "route", "status"]
)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LATENCY = Histogram(
    "econtract_http_request_duration_seconds",
    "HTTP request latency.",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
)
ERRORS = Counter("econtract_errors_total", "Errors answered, by problem code.", ["code"])
CERTIFICATES_ISSUED = Counter(
    "econtract_certificates_issued_total", "Certificates issued.", ["type"]
)
SEALS_MADE = Counter("econtract_seals_made_total", "PDF seals applied.", ["level"])
TIMESTAMPS_ISSUED = Counter("econtract_timestamps_issued_total", "RFC 3161 timestamps granted.")
OCSP_RESPONSES = Counter("econtract_ocsp_responses_total", "OCSP responses, by status.", ["status"])
# The time other issuances of the same department and type wait behind this one (target: p99
# under 5 ms). The number is taken by one statement that is a transaction of its own
# (econtract.issuance._numbering): on PostgreSQL measured by the server, from the counter's
# increment to the end of the commit; on SQLite the wall time of the statement's call, an upper
# bound (it includes waiting for another worker's write transaction, and taking the GIL back).
NUMBER_LOCK = Histogram(
    "econtract_number_lock_seconds",
    "Time an issuance holds its number counter's lock: from the increment to the end of the "
    "commit as PostgreSQL sees it; on SQLite the one statement's call (an upper bound).",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
NUMBERS_VOIDED = Counter(
    "econtract_numbers_voided_total", "Licence numbers allocated but never issued (void)."
)


class RequestCounts:
    """HTTP requests counted in this process's memory and added to :data:`REQUESTS` and
    :data:`LATENCY` in batches (:data:`HTTP_REQUESTS`).

    Every answer is counted and timed; done in the metrics themselves that is two label
    look-ups and, with several workers, four writes to a memory-mapped file, each under a
    lock and checking the process id: a sixth of the QR page's time. Here an answer adds to
    plain numbers, and :meth:`flush` adds them to the metrics: :func:`render` flushes before
    every exposition, so this process's figures are exact; the HTTP layer flushes at most
    :data:`FLUSH_SECONDS` after an answer, so another worker's show that much later at most.
    """

    def __init__(self, requests: Counter, latency: Histogram, buckets: tuple[float, ...]) -> None:
        self._requests = requests
        self._latency = latency
        self._bounds = (*buckets, float("inf"))
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, int], int] = {}
        # Per method and route: the sum of the durations, then the count per bucket (the
        # first bound at or above the duration, as Histogram.observe counts it).
        self._latencies: dict[tuple[str, str], list[float]] = {}

    def count(self, method: str, route: str, status: int, seconds: float) -> bool:
        """Count one answer; true when it is the first since the last flush (the caller
        then arranges a flush)."""
        key = (method, route, status)
        with self._lock:
            first = not self._counts
            self._counts[key] = self._counts.get(key, 0) + 1
            latency = self._latencies.get(key[:2])
            if latency is None:
                latency = self._latencies[key[:2]] = [0.0] * (len(self._bounds) + 1)
            latency[0] += seconds
            latency[1 + bisect_left(self._bounds, seconds)] += 1
        return first

    def flush(self) -> None:
        """Add the answers counted since the last flush to the metrics."""
        with self._lock:
            counts, self._counts = self._counts, {}
            latencies, self._latencies = self._latencies, {}
        for (method, route, status), n in counts.items():
            self._requests.labels(method, route, str(status)).inc(n)
        for (method, route), (total, *per_bucket) in latencies.items():
            add_observations(self._latency.labels(method, route), total, per_bucket)


def add_observations(child: Histogram, total: float, per_bucket: list[float]) -> None:
    """Add many observations to a histogram's child at once: their sum, and how many fell in
    each bucket (the first whose bound is at or above the value).

    prometheus_client has no call for this; its child keeps, as ``observe`` adds to them, the
    sum and a count per bucket (not cumulative), which are added to here.
    """
    child._sum.inc(total)
    for bucket, n in zip(child._buckets, per_bucket, strict=True):
        if n:
            bucket.inc(n)


HTTP_REQUESTS = RequestCounts(REQUESTS, LATENCY, _LATENCY_BUCKETS)
"""The HTTP layer's count of answers (see :class:`RequestCounts`)."""

FLUSH_SECONDS = 1.0
"""How long an answer stays counted in memory alone, at most."""


def render() -> tuple[bytes, str]:
    """The exposition text of every metric (all workers' when PROMETHEUS_MULTIPROC_DIR is set)."""
    HTTP_REQUESTS.flush()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
