"""Rate limits: how often one caller may do something costly, in one process or across many.

Each rule (:data:`RULES`) is a limit in the ``limits`` library's notation (``"10/minute"``,
``"30/minute;5/second"``; empty for no limit) read from the settings, counted over a moving
window per key (a client id, an address). The counts live in this process's memory, or in Redis when
``ECONTRACT_REDIS_URL`` is set, so that every server process and machine shares them.

Two ways to count:

- :meth:`RateLimiter.hit` counts an attempt and refuses it when the window is full (the
  verification upload, the QR page);
- :meth:`RateLimiter.check` refuses without counting and :meth:`RateLimiter.count` counts
  without refusing, for what is counted only when it fails (a wrong client secret): a right
  secret is never counted, but once a client id or an address has used up its failures,
  every attempt from it is refused until the window moves on, the right secret too; that is
  what stops guessing.

A refusal is :class:`RateLimitedError`, with the seconds until the window has room again.

When Redis cannot be reached the limits are not enforced (they fail open): a rate limit
protects the service's capacity, and refusing everyone because the counter is down would do
more harm than the flood it guards against. The outage is logged as a warning, once, and
Redis is not asked again for :data:`RETRY_REDIS_SECONDS`, so that no request waits on a
dead connection in the meantime.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from econtract.config import ConfigurationError, Settings
from econtract.errors import EContractError

__all__ = ["RETRY_REDIS_SECONDS", "RULES", "RateLimitedError", "RateLimiter"]

log = logging.getLogger(__name__)

#: The rules and the setting each one is read from.
RULES: Mapping[str, str] = {
    "token-failures": "rate_token_failures",
    "verify": "rate_verify",
    "qr": "rate_qr",
}
#: How long Redis is left alone after it failed.
RETRY_REDIS_SECONDS = 5.0
# A local Redis answers in well under a millisecond; one that does not is treated as down
# rather than holding requests.
_REDIS_TIMEOUT_SECONDS = 0.25


class RateLimitedError(EContractError):
    """Too many attempts from one caller in the window; ``retry_after`` is in seconds."""

    code = "rate-limited"
    title = "Too many requests; try again later."

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class _Rule:
    name: str
    items: tuple[RateLimitItem, ...]


class RateLimiter:
    """Counts attempts per rule and key, in memory or in Redis; see the module."""

    def __init__(
        self,
        *,
        limits: Mapping[str, str],
        redis_url: str | None = None,
        key_prefix: str = "econtract",
    ) -> None:
        self.rules: dict[str, _Rule] = {}
        for name, text in limits.items():
            if not text.strip():
                continue  # no limit
            try:
                items = tuple(parse_many(text))
            except ValueError:
                raise ConfigurationError(
                    f"The rate limit {name} is {text!r}; write it like '10/minute'."
                ) from None
            self.rules[name] = _Rule(name, items)
        self.storage: Storage
        if redis_url:
            self.storage = RedisStorage(
                redis_url,
                key_prefix=key_prefix,
                socket_timeout=_REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=_REDIS_TIMEOUT_SECONDS,
            )
        else:
            self.storage = MemoryStorage()
        self.shared = redis_url is not None
        """Whether the counts are in Redis (a call may then wait on the network)."""
        self._strategy = MovingWindowRateLimiter(self.storage)
        self._lock = threading.Lock()
        self._down_until = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter:
        """The limiter the settings describe (``ECONTRACT_RATE_*``, ``ECONTRACT_REDIS_URL``)."""
        return cls(
            limits={name: getattr(settings, field) for name, field in RULES.items()},
            redis_url=settings.redis_url,
            key_prefix=settings.rate_key_prefix,
        )

    def hit(self, rule: str, *keys: str) -> None:
        """Count one attempt under each key; raise :class:`RateLimitedError` if any is full."""
        self._apply(rule, keys, count=True, refuse=True)

    def check(self, rule: str, *keys: str) -> None:
        """Raise :class:`RateLimitedError` if any key's window is full, counting nothing."""
        self._apply(rule, keys, count=False, refuse=True)

    def count(self, rule: str, *keys: str) -> None:
        """Count one attempt under each key, refusing nothing."""
        self._apply(rule, keys, count=True, refuse=False)

    def _apply(self, rule: str, keys: tuple[str, ...], *, count: bool, refuse: bool) -> None:
        if rule not in self.rules or time.monotonic() < self._down_until:
            return
        try:
            for item in self.rules[rule].items:
                for key in keys:
                    allowed = (
                        self._strategy.hit(item, rule, key)
                        if count
                        else self._strategy.test(item, rule, key)
                    )
                    if not allowed and refuse:
                        self._refuse(rule, item, key)
        except RateLimitedError:
            raise
        except Exception as exc:  # the store is down: fail open, see the module
            self._store_failed(exc)
            return
        if self._down_until:
            with self._lock:
                self._down_until = 0.0
            log.warning("rate limits are enforced again", extra={"rule": rule})

    def _refuse(self, rule: str, item: RateLimitItem, key: str) -> None:
        stats = self._strategy.get_window_stats(item, rule, key)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimitedError(
            f"More than {item} for this caller; try again in {retry_after} seconds.",
            retry_after=retry_after,
        )

    def _store_failed(self, exc: Exception) -> None:
        with self._lock:
            first = self._down_until == 0.0
            self._down_until = time.monotonic() + RETRY_REDIS_SECONDS
        if first:
            log.warning(
                "rate limits are not enforced: their store cannot be reached",
                extra={"reason": f"{type(exc).__name__}: {exc}"[:300]},
            )
