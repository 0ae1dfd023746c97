"""A cache whose misses are computed once, however many threads ask at the same moment.

``functools.lru_cache`` lets every thread that misses compute the value itself. For the
font subsets and seal drawings of :mod:`signing.fonts` and :mod:`signing.appearance` (0.1 to
0.3 s each, all of it holding the interpreter lock) that multiplied the first requests' work
by the number of threads that arrived together: a service worker's first four seals drew the
same seal four times over, a second of CPU before any licence was issued. Here the
others wait for the first computation and take its result.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

_R = TypeVar("_R")


class ComputedOnce(Generic[_R]):
    """``function`` behind an LRU cache of ``maxsize`` entries and a lock.

    The lock is held while a value is looked up or computed, so a miss is computed by one
    thread while the others wait for it. A hit costs the lookup and an uncontended lock.
    Exceptions are not cached: the next caller computes again (and raises again).
    """

    __wrapped__: Callable[..., _R]
    """The function itself (set by ``functools.update_wrapper``), uncached."""

    def __init__(self, function: Callable[..., _R], *, maxsize: int) -> None:
        self._cached = functools.lru_cache(maxsize=maxsize)(function)
        self._lock = threading.Lock()
        functools.update_wrapper(self, function)

    def __call__(self, *args: Hashable) -> _R:
        """The value for ``args``, computed now if no thread computed it before."""
        with self._lock:
            return self._cached(*args)

    def cache_clear(self) -> None:
        """Forget every value (tests that swap the font)."""
        with self._lock:
            self._cached.cache_clear()


def computed_once(*, maxsize: int) -> Callable[[Callable[..., _R]], ComputedOnce[_R]]:
    """Decorate a function of hashable positional arguments as :class:`ComputedOnce`."""

    def decorate(function: Callable[..., _R]) -> ComputedOnce[_R]:
        return ComputedOnce(function, maxsize=maxsize)

    return decorate
