"""Where the benchmarks' own processes run (bench/placement.py), checked in the kernel's view:
``/proc/<pid>/cgroup``, ``/proc/<pid>/autogroup`` and the scheduling policy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench import placement
from verify import limits

_REPORT = """
import json, os, sys
from pathlib import Path
from bench import placement
from verify import limits
group = sys.argv[1]
placement.join(Path(group) if group else None)
autogroup = Path("/proc/self/autogroup")
print(json.dumps({
    "policy": os.sched_getscheduler(0),
    "session_leader": os.getsid(0) == os.getpid(),
    "cgroup": Path("/proc/self/cgroup").read_text(),
    "autogroup": autogroup.read_text() if autogroup.exists() else None,
}))
"""


def _joined(group: Path | None) -> dict[str, object]:
    """What a fresh process that joined ``group`` sees of itself."""
    done = subprocess.run(
        [sys.executable, "-c", _REPORT, str(group or "")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    report: dict[str, object] = json.loads(done.stdout)
    return report


def test_without_a_group_the_process_leads_an_idle_session_of_the_lowest_weight() -> None:
    seen = _joined(None)
    assert seen["policy"] == os.SCHED_IDLE
    if limits._autogroups_enabled():
        assert seen["session_leader"] is True
        assert str(seen["autogroup"]).rstrip().endswith("nice 19")
    else:
        assert seen["session_leader"] is False


def test_an_idle_group_holds_its_processes_and_is_removed_after_them() -> None:
    with placement.IdleGroup("econtract-test-placement") as idle:
        if placement._cpu_hierarchy() is None:
            # Nowhere to make a group: the fallback is named, and joining it takes the session.
            assert idle.path is None
            assert "autogroup" in idle.describe()
            return
        assert idle.path is not None
        assert (idle.path / "cpu.idle").read_text().strip() == "1"
        assert idle.describe() == "a cgroup with cpu.idle"
        seen = _joined(idle.path)
        assert seen["policy"] == os.SCHED_IDLE
        assert seen["session_leader"] is False
        assert f"/{idle.path.name}\n" in str(seen["cgroup"])
        made = idle.path
    assert not made.exists()


def test_measuring_priority_is_real_time_for_the_block_only_and_not_inherited() -> None:
    before = os.sched_getscheduler(0)
    with placement.measuring_priority() as realtime:
        inside = os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK
        child = subprocess.run(
            [sys.executable, "-c", "import os; print(os.sched_getscheduler(0))"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
    assert os.sched_getscheduler(0) == before
    assert int(child.stdout) == os.SCHED_OTHER
    if realtime:
        assert inside == os.SCHED_FIFO
    else:
        assert inside == before
