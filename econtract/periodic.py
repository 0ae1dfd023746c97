"""A background thread of the service that does one step every tick (tree heads, webhooks).

A step that fails (the database restarting, a lock timeout) is logged and tried again at
the next tick: the thread must outlive it. The thread is a daemon, so that a process that
dies is not held up by it; :meth:`PeriodicThread.stop` ends it cleanly.
"""

from __future__ import annotations

import logging
import threading


class PeriodicThread:
    """Runs :meth:`step` every ``tick_seconds`` in a daemon thread until stopped."""

    def __init__(self, *, name: str, tick_seconds: float, log: logging.Logger) -> None:
        """A thread called ``name`` that logs a failed step to ``log``."""
        if tick_seconds <= 0:
            raise ValueError("A periodic thread's tick is positive.")
        self._name = name
        self._tick = tick_seconds
        self._log = log
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> None:
        """One tick's work (subclasses)."""
        raise NotImplementedError

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread and wait for it (a step in progress ends first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self._tick):
            try:
                self.step()
            except Exception:
                # "worker", not "thread": a LogRecord has a "thread" attribute already, and
                # logging refuses to overwrite it (a KeyError that would end this thread).
                self._log.exception("a periodic step failed", extra={"worker": self._name})
