"""The HTTP layer's request counts: counted in memory, added to the metrics in batches, with
the same figures as counting each request in the metrics themselves."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from econtract.metrics import RequestCounts

_BUCKETS = (0.005, 0.01, 0.1, 1.0)


def _metrics() -> tuple[CollectorRegistry, Counter, Histogram]:
    registry = CollectorRegistry()
    requests = Counter("requests_total", "r", ["method", "route", "status"], registry=registry)
    latency = Histogram(
        "latency_seconds", "l", ["method", "route"], buckets=_BUCKETS, registry=registry
    )
    return registry, requests, latency


def _samples(registry: CollectorRegistry) -> list[str]:
    # The creation times differ between two sets of metrics made one after the other.
    return [
        line for line in generate_latest(registry).decode().splitlines() if "_created" not in line
    ]


ANSWERS = [
    ("GET", "/v/{token}", 200, 0.0004),
    ("GET", "/v/{token}", 200, 0.005),  # on a bucket's bound: counted in that bucket
    ("GET", "/v/{token}", 429, 0.02),
    ("POST", "/v1/verify", 200, 0.7),
    ("GET", "/v/{token}", 200, 3.0),  # past the last bound: +Inf only
]


def test_a_flush_gives_the_figures_of_counting_each_answer() -> None:
    counted_registry, counted_requests, counted_latency = _metrics()
    for method, route, status, seconds in ANSWERS:
        counted_requests.labels(method, route, str(status)).inc()
        counted_latency.labels(method, route).observe(seconds)
    batched_registry, batched_requests, batched_latency = _metrics()
    counts = RequestCounts(batched_requests, batched_latency, _BUCKETS)
    for method, route, status, seconds in ANSWERS[:2]:
        counts.count(method, route, status, seconds)
    counts.flush()
    for method, route, status, seconds in ANSWERS[2:]:
        counts.count(method, route, status, seconds)
    counts.flush()
    assert _samples(batched_registry) == _samples(counted_registry)


def test_nothing_shows_before_a_flush_and_the_first_answer_asks_for_one() -> None:
    registry, requests, latency = _metrics()
    counts = RequestCounts(requests, latency, _BUCKETS)
    assert counts.count("GET", "/healthz", 200, 0.001)
    assert not counts.count("GET", "/healthz", 200, 0.001)
    assert "requests_total{" not in generate_latest(registry).decode()
    counts.flush()
    assert 'requests_total{method="GET",route="/healthz",status="200"} 2.0' in (
        generate_latest(registry).decode()
    )
    assert counts.count("GET", "/healthz", 200, 0.001)
