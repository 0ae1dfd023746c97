"""Prometheus metrics of the service (multi-process aware when several workers serve)."""

from __future__ import annotations

import os

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
LATENCY = Histogram(
    "econtract_http_request_duration_seconds",
    "HTTP request latency.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
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


def render() -> tuple[bytes, str]:
    """The exposition text of every metric (all workers' when PROMETHEUS_MULTIPROC_DIR is set)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
