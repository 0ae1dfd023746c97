"""Where a benchmark's own processes run, so that they do not stand in for the server's load.

On one small machine the load generator, the attacker and the measuring probe share the cores
with the server they measure, which clients on other machines would not. Two tools keep them
apart, each used only where the kernel permits it; every benchmark that uses one prints which
one it got (:meth:`IdleGroup.describe`):

- :class:`IdleGroup` holds processes that may use only CPU nothing else wants: a cgroup with
  ``cpu.idle`` set (the attacker of ``bench_flood``, its memory sampler). ``SCHED_IDLE`` alone
  is not enough, because Linux schedules each cgroup or session (autogroup) first and a task's
  policy counts only inside its group: ``perf sched`` showed the server's serving thread
  waiting up to 7 ms behind a ``SCHED_IDLE`` flood in another session. Without a writable
  cgroup hierarchy the process leads a session of its own whose autogroup has the lowest
  weight (niceness 19), and runs ``SCHED_IDLE`` in it.
- :func:`measuring_priority` runs the probe (the instrument) at real-time priority, as latency
  probes such as ``cyclictest`` do, so that its own wake-ups never wait behind the server's
  work; in both phases of a measurement alike, so that only the server's waits differ.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from verify.limits import take_only_idle_cpu

_CPU_HIERARCHIES = (
    Path("/sys/fs/cgroup/cpu"),
    Path("/sys/fs/cgroup/unified"),
    Path("/sys/fs/cgroup"),
)


def _cpu_hierarchy() -> Path | None:
    """The root of a cgroup hierarchy whose groups have ``cpu.idle``, if one is writable."""
    for root in _CPU_HIERARCHIES:
        if (root / "cpu.idle").exists() or (root / "cgroup.subtree_control").exists():
            controllers = root / "cgroup.subtree_control"
            if controllers.exists() and "cpu" not in controllers.read_text().split():
                continue  # cgroup v2 without the cpu controller delegated to children
            if os.access(root, os.W_OK):
                return root
    return None


class IdleGroup:
    """A cgroup for processes that take only idle CPU; removed on exit.

    :attr:`path` is ``None`` where no cgroup could be made; :func:`join` then falls back to an
    autogroup of the lowest weight."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.path: Path | None = None

    def __enter__(self) -> IdleGroup:
        root = _cpu_hierarchy()
        if root is None:
            return self
        path = root / f"{self.name}-{os.getpid()}"
        try:
            path.mkdir()
            (path / "cpu.idle").write_text("1")
        except OSError:
            with contextlib.suppress(OSError):
                path.rmdir()
            return self
        self.path = path
        return self

    def __exit__(self, *_: object) -> None:
        if self.path is None:
            return
        # The group can be removed once its processes have exited.
        for _attempt in range(100):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.05)

    def describe(self) -> str:
        """How the group's processes are kept off the server's CPU."""
        if self.path is not None:
            return "a cgroup with cpu.idle"
        return "SCHED_IDLE in a session of autogroup niceness 19 (no writable cgroup)"


def join(group: Path | None) -> None:
    """Move the calling process into an idle cgroup (``group``) or, without one, into a
    session of its own at the lowest autogroup weight (as the server's verification workers
    do, :func:`verify.limits.take_only_idle_cpu`); either way at ``SCHED_IDLE``."""
    if group is None:
        take_only_idle_cpu()
        return
    (group / "cgroup.procs").write_text(str(os.getpid()))
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


@contextlib.contextmanager
def measuring_priority() -> Iterator[bool]:
    """Run the calling thread at real-time priority (``SCHED_FIFO`` 1) for the block, if
    permitted; yields whether it was. Processes started inside the block do not inherit it."""
    before = os.sched_getscheduler(0)
    param = os.sched_getparam(0)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(1))
    except PermissionError:
        yield False
        return
    try:
        yield True
    finally:
        os.sched_setscheduler(0, before, param)
