"""Batches on a queue: many licences submitted at once, issued row by row by workers.

The rooms are private modules; this package's names are the interface:

- :func:`parse_upload` reads an upload's rows, CSV or JSON lines (``_rows``).
- :func:`submit_batch`, :func:`batch_progress`, :func:`batch_results` and
  :func:`cancel_batch` are a batch's use cases; :func:`process_row` issues one row exactly
  once however often it is delivered (``_store``, whose docstring gives the argument).
- :func:`open_runner` gives the :class:`BatchRunner` the settings ask for: the service's own
  threads, or a Dramatiq queue whose ``econtract worker`` processes run :func:`run_worker`
  (``_runners``, which says why Dramatiq on Redis).
- :class:`BatchClient` submits a batch to a running service and follows it (``_client``,
  for ``econtract batch issue --server``).
"""

from __future__ import annotations

from econtract.batches._client import BatchClient, BatchServerError, result_lines
from econtract.batches._rows import CSV_TYPE, MAX_ROWS, NDJSON_TYPE, Upload, parse_upload
from econtract.batches._runners import (
    BatchRunner,
    QueueRunner,
    ThreadRunner,
    open_runner,
    run_worker,
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
    process_row,
    queued_rows,
    submit_batch,
)

__all__ = [
    "CSV_TYPE",
    "MAX_ROWS",
    "NDJSON_TYPE",
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
    "open_runner",
    "parse_upload",
    "process_row",
    "queued_rows",
    "result_lines",
    "run_worker",
    "submit_batch",
]
