"""Batches on a queue: many licences submitted at once, issued row by row by workers.

The rooms are private modules; this package's names are the interface:

- :func:`parse_upload` reads an upload's rows, CSV or JSON lines (``_rows``).
- :func:`submit_batch`, :func:`batch_progress`, :func:`batch_results` and
  :func:`cancel_batch` are a batch's use cases; :func:`process_row` issues one row exactly
  once however often it is delivered (``_store``, whose docstring gives the argument);
  :func:`fail_row` fails a row that kept raising an unexpected error.
- :func:`open_runner` gives the :class:`BatchRunner` the settings ask for: the service's own
  threads, or a Dramatiq queue whose ``econtract worker`` processes run :func:`run_worker`
  (``_runners``, which says why Dramatiq on Redis, and how many times a row is tried).
- :func:`resend_rows` sends again the rows whose messages never reached the broker or were
  lost there; every worker sweeps at its start and periodically (``_resend``).
- :class:`BatchClient` submits a batch to a running service and follows it (``_client``,
  for ``econtract batch issue --server``).
"""

from __future__ import annotations

from econtract.batches._client import BatchClient, BatchServerError, result_lines
from econtract.batches._resend import mark_sent, resend_rows
from econtract.batches._rows import CSV_TYPE, MAX_ROWS, NDJSON_TYPE, Upload, parse_upload
from econtract.batches._runners import (
    ACTOR_NAME,
    ROW_ERROR_CODE,
    BatchRunner,
    QueueRunner,
    ThreadRunner,
    make_broker,
    open_runner,
    run_worker,
    start_worker,
)
from econtract.batches._store import (
    STATES,
    ParsedRow,
    Progress,
    RowBusyError,
    Submitted,
    batch_owner,
    batch_progress,
    batch_results,
    cancel_batch,
    fail_row,
    process_row,
    queued_rows,
    submit_batch,
    waiting_batches,
)

__all__ = [
    "ACTOR_NAME",
    "CSV_TYPE",
    "MAX_ROWS",
    "NDJSON_TYPE",
    "ROW_ERROR_CODE",
    "STATES",
    "BatchClient",
    "BatchRunner",
    "BatchServerError",
    "ParsedRow",
    "Progress",
    "QueueRunner",
    "RowBusyError",
    "Submitted",
    "ThreadRunner",
    "Upload",
    "batch_owner",
    "batch_progress",
    "batch_results",
    "cancel_batch",
    "fail_row",
    "make_broker",
    "mark_sent",
    "open_runner",
    "parse_upload",
    "process_row",
    "queued_rows",
    "resend_rows",
    "result_lines",
    "run_worker",
    "start_worker",
    "submit_batch",
    "waiting_batches",
]
