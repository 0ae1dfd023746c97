"""The rate limits as requests meet them: who the caller is, and a count that never stalls the
event loop (see :mod:`econtract.ratelimit` for the rules and the storage)."""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from econtract.ratelimit import RateLimiter


def limiter_of(request: Request) -> RateLimiter:
    """The application's rate limiter."""
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


def client_address(request: Request) -> str:
    """The caller's address as the server sees it: behind a reverse proxy, the one uvicorn
    takes from ``X-Forwarded-For`` when the proxy is trusted (``--forwarded-allow-ips``)."""
    return f"address:{request.client.host if request.client else 'unknown'}"


async def hit_per_address(request: Request, rule: str) -> None:
    """Count this request under ``rule`` for its address; raise ``RateLimitedError`` when
    the address has used up its window."""
    limiter = limiter_of(request)
    key = client_address(request)
    if limiter.shared:
        # Redis is a network round trip: it is waited for in the thread pool.
        await run_in_threadpool(limiter.hit, rule, key)
    else:
        limiter.hit(rule, key)
