"""Bounded verification in a worker process: a report, or a typed error, in bounded time."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.verify import forge
from tests.verify.forge import Sealed
from verify import limits
from verify.errors import MalformedPDFError, TooLargeError, VerificationTimeoutError
from verify.limits import verify_pdf_bounded
from verify.pdf import verify_pdf
from verify.policy import VerificationLimits, VerificationPolicy
from verify.registry import InMemoryRegistry
from verify.report import Report, Verdict
from verify.structure import nesting_depth


def test_a_genuine_file_is_valid_in_a_worker(
    policy: VerificationPolicy, licence_lt: Sealed
) -> None:
    registry = InMemoryRegistry([licence_lt.record()])
    report = verify_pdf_bounded(
        licence_lt.pdf, policy=dataclasses.replace(policy, registry=registry)
    )
    assert report.verdict is Verdict.VALID
    assert report.registry.matched_by == "file"


def test_too_large_is_refused_before_any_work(
    policy: VerificationPolicy, licence_lt: Sealed
) -> None:
    small = dataclasses.replace(policy, limits=VerificationLimits(max_file_size=1000))
    with pytest.raises(TooLargeError, match="at most 1000 are accepted") as info:
        verify_pdf_bounded(licence_lt.pdf, policy=small)
    assert info.value.code == "too-large"
    assert info.value.limit == 1000


def test_timeout_stops_the_worker(policy: VerificationPolicy, licence_lt: Sealed) -> None:
    hurried = dataclasses.replace(policy, limits=VerificationLimits(wall_seconds=0.001))
    with pytest.raises(VerificationTimeoutError, match="stopped"):
        verify_pdf_bounded(licence_lt.pdf, policy=hurried)


def _idle_pids() -> list[int]:
    return [w.process.pid for w in limits._IDLE._workers if w.process.pid is not None]


def test_a_worker_verifies_one_file_after_another(
    policy: VerificationPolicy, licence_lt: Sealed
) -> None:
    limits._IDLE.stop_all()
    verify_pdf_bounded(licence_lt.pdf, policy=policy)
    [first] = _idle_pids()
    verify_pdf_bounded(licence_lt.pdf, policy=policy)
    assert _idle_pids() == [first]
    # It takes only the CPU that nothing else wants: SCHED_IDLE, and where the kernel
    # schedules sessions as groups, in a session of its own at the lowest weight (inside
    # the caller's, SCHED_IDLE alone let it keep a serving thread waiting a whole tick).
    assert os.sched_getscheduler(first) == os.SCHED_IDLE
    if limits._autogroups_enabled():
        assert os.getsid(first) == first != os.getsid(0)
        assert Path(f"/proc/{first}/autogroup").read_text().rstrip().endswith("nice 19")
        assert not Path("/proc/self/autogroup").read_text().rstrip().endswith("nice 19")


def test_a_worker_that_timed_out_is_killed_and_replaced(
    policy: VerificationPolicy, licence_lt: Sealed
) -> None:
    limits._IDLE.stop_all()
    verify_pdf_bounded(licence_lt.pdf, policy=policy)
    [first] = _idle_pids()
    hurried = dataclasses.replace(policy, limits=VerificationLimits(wall_seconds=0.001))
    with pytest.raises(VerificationTimeoutError):
        verify_pdf_bounded(licence_lt.pdf, policy=hurried)
    assert _idle_pids() == []
    with pytest.raises(ProcessLookupError):  # killed and reaped
        os.kill(first, 0)
    assert verify_pdf_bounded(licence_lt.pdf, policy=policy).verdict is Verdict.VALID
    assert _idle_pids() != [first]


def test_a_worker_is_replaced_after_an_error(policy: VerificationPolicy) -> None:
    limits._IDLE.stop_all()
    with pytest.raises(MalformedPDFError):
        verify_pdf_bounded(b"hello", policy=policy)
    assert _idle_pids() == []


def test_malformed_pdf_error_crosses_the_process_boundary(policy: VerificationPolicy) -> None:
    with pytest.raises(MalformedPDFError, match="no %PDF- header"):
        verify_pdf_bounded(b"hello", policy=policy)


def test_too_many_objects(policy: VerificationPolicy, licence_lt: Sealed) -> None:
    few = dataclasses.replace(policy, limits=VerificationLimits(max_objects=3))
    with pytest.raises(TooLargeError, match="objects"):
        verify_pdf(licence_lt.pdf, policy=few)


@pytest.mark.parametrize(
    ("data", "depth"),
    [
        (b"<< /A [1 [2] (]]]) ] >>", 3),
        (b"% [[[[ comment\n[ ]", 1),
        (b"<< /Length 4 >>\nstream\n[[[[\nendstream", 1),
        (b"(a \\( [[[) [", 1),
        (b"<< /Contents <3082 [[[[ 0A> /B [<00>] >>", 2),
        (b"<</A<0A0B>>>[[[", 3),
    ],
)
def test_nesting_depth_ignores_strings_comments_and_streams(data: bytes, depth: int) -> None:
    assert nesting_depth(data, 100) == depth


def test_prev_loop_in_a_worker_is_malformed(policy: VerificationPolicy, licence_lt: Sealed) -> None:
    with pytest.raises(MalformedPDFError, match="cannot be read"):
        verify_pdf_bounded(forge.prev_loop(licence_lt.pdf), policy=policy)


# --- what the worker says goes through the caller's logging --------------------------------


@dataclasses.dataclass(frozen=True)
class _DiffError:
    """What verifying the file gave: the report, the caller's log records, the raw stderr."""

    report: Report
    records: list[logging.LogRecord]
    err: str


@pytest.fixture
def diff_error(
    policy: VerificationPolicy,
    approval_bb: Sealed,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> _DiffError:
    """A file whose later update pyHanko's difference analysis cannot explain: pyHanko logs
    "Error in diff operation" with a traceback, in the worker."""
    forged = forge.update(approval_bb.pdf, forge.evil_annotation)
    with caplog.at_level(logging.WARNING):
        report = verify_pdf_bounded(forged, policy=policy)
    return _DiffError(report, list(caplog.records), capfd.readouterr().err)


def test_an_unexplained_update_found_in_the_worker_is_modified(diff_error: _DiffError) -> None:
    assert diff_error.report.verdict is Verdict.MODIFIED


def test_the_workers_log_records_are_logged_by_the_caller(diff_error: _DiffError) -> None:
    [record] = [
        r for r in diff_error.records if r.getMessage().startswith("Error in diff operation")
    ]
    assert record.name.startswith("pyhanko.")
    assert record.worker == "verification"  # type: ignore[attr-defined]
    assert "SuspiciousModification" in (record.exc_text or "")


def test_the_worker_writes_no_raw_traceback(diff_error: _DiffError) -> None:
    assert "Traceback" not in diff_error.err
    assert "Error in diff operation" not in diff_error.err


def test_an_unexpected_failure_in_the_worker_is_an_error_not_a_traceback(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    job = limits._Job(
        data=b"%PDF-1.7\n",
        roots=(b"not a certificate",),
        crls=(),
        ocsp_responses=(),
        now=None,
        limits=VerificationLimits(),
    )
    worker = limits._Worker()
    try:
        worker.connection.send(job)
        with caplog.at_level(logging.WARNING):
            kind, payload = limits._answer(worker.connection, 30)
    finally:
        worker.stop()
    assert kind == "error"
    assert payload[0] == "verification-failed"
    assert "could not be verified (ValueError)" in payload[1]
    [record] = [r for r in caplog.records if r.name == "verify.worker"]
    assert "ValueError" in (record.exc_text or "")
    assert "Traceback" not in capfd.readouterr().err


def test_a_worker_left_alone_stops_when_its_cpu_time_is_up() -> None:
    # A worker outlives a caller that was killed (it leads a session of its own); its file's
    # CPU time is bounded all the same, by the kernel.
    spin = "from verify.limits import bound_cpu\nbound_cpu(1)\nwhile True:\n    pass\n"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", spin],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGXCPU
    assert time.monotonic() - started < 60
