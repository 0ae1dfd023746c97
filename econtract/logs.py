"""JSON logs with the request id of the current request.

Every line the service writes to stderr is one JSON object: its own records, the records of
the libraries it uses (uvicorn, pyHanko, ...), Python's warnings, and the records of the
verification worker, which :mod:`verify.limits` hands back to this process. An exception
travels inside its record as the ``exception`` field, never as raw lines; characters that
could end a line for some reader (C0 and C1 controls, U+2028 and U+2029) are escaped, so a
hostile certificate name or file name cannot forge a line.

The command line writes people's messages on stderr, one line per error; there the records
of the libraries are details for a developer, shown only at ``ECONTRACT_LOG_LEVEL=DEBUG``
(pyHanko's findings, for example, are already in the verification report).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import time
from datetime import UTC, datetime
from typing import TextIO

#: The id of the HTTP request being served, for every log line written while serving it.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()) | {"message"}

# json.dumps escapes C0 controls but, with ensure_ascii=False, leaves DEL, the C1 controls
# and the Unicode line and paragraph separators as they are: str.splitlines() and some log
# shippers break lines on them. Outside strings JSON holds only ASCII, so escaping them
# everywhere keeps the line valid JSON.
_LINE_BREAKERS = re.compile("[\x7f-\x9f\u2028\u2029]")

#: Loggers whose records are the service's own; the command line shows only these.
OWN_LOGGERS = ("econtract", "api", "verify", "signing", "keys")


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match[0]):04x}"


#: The last second :func:`_utc_time` formatted, and its text.
_LAST_SECOND: list[tuple[int, str]] = [(-1, "")]


def _utc_time(created: float) -> str:
    """``created`` as ISO 8601 in UTC to the millisecond, the date and time of its second
    formatted once per second (every request writes a line: formatting the whole timestamp
    each time was a tenth of the line's cost)."""
    second = int(created)
    micro = round((created - second) * 1e6)
    if not 0 <= micro < 1_000_000:
        return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    # One tuple, replaced whole: threads that log at once see either second, never a mix.
    cached_second, prefix = _LAST_SECOND[0]
    if cached_second != second:
        prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _LAST_SECOND[0] = (second, prefix)
    return f"{prefix}.{micro // 1000:03d}+00:00"


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": _utc_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            # A record rebuilt from another process carries its traceback as text.
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return _one_line(json.dumps(entry, ensure_ascii=False, default=str))


def _one_line(line: str) -> str:
    """A JSON line with the characters that could break it for some reader escaped."""
    # An ASCII line (an access line, as a rule) has none of them; the check is cheaper than
    # the search.
    return line if line.isascii() and "\x7f" not in line else _LINE_BREAKERS.sub(_escape, line)


class _ServiceHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The service's handler (:func:`configure_logging`): JSON lines on a stream."""


_ACCESS = logging.getLogger("econtract.api")
_json_string = json.encoder.encode_basestring


def log_request(method: str, path: str, status: int, ms: float) -> None:
    """Log the access line of an HTTP request: the record ``request`` of ``econtract.api`` at
    INFO with ``method``, ``path``, ``status`` and ``ms`` as fields.

    Every request writes one, so when the line would reach the service's handler alone (as
    :func:`configure_logging` sets it up: no other handler or filter on the way) it is
    written as :class:`JSONFormatter` would write it, field by field, without making a log
    record, formatting it through a dictionary and passing it down the loggers: that took
    a quarter of the QR page's time. Otherwise (tests capturing records, another setup) the
    record is logged.
    """
    handler = _service_handler()
    if handler is None:
        _ACCESS.info("request", extra={"method": method, "path": path, "status": status, "ms": ms})
        return
    request_id = request_id_var.get()
    line = _one_line(
        f'{{"time": "{_utc_time(time.time())}", "level": "info", "logger": "econtract.api", '
        f'"message": "request"'
        + (f', "request_id": {_json_string(request_id)}' if request_id else "")
        + f', "method": {_json_string(method)}, "path": {_json_string(path)}, '
        f'"status": {int(status)}, "ms": {float(ms)!r}}}'
    )
    handler.acquire()
    try:
        handler.stream.write(line + handler.terminator)
        handler.flush()
    except Exception:  # as logging does: reported on stderr, the request goes on
        handler.handleError(logging.makeLogRecord({"name": _ACCESS.name, "msg": line}))
    finally:
        handler.release()


def _service_handler() -> _ServiceHandler | None:
    """The service's handler when an access record would reach it and nothing else."""
    if not _ACCESS.isEnabledFor(logging.INFO):
        return None
    logger: logging.Logger | None = _ACCESS
    while logger is not None:
        if logger.filters:
            return None
        if logger.handlers:
            break
        logger = logger.parent if logger.propagate else None
    if logger is not logging.root or len(logger.handlers) != 1:
        return None
    handler = logger.handlers[0]
    if (
        type(handler) is not _ServiceHandler
        or handler.filters
        or handler.level > logging.INFO
        or type(handler.formatter) is not JSONFormatter
    ):
        return None
    return handler


class _CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the record (tests swap it)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


class _LibraryRecordsAsDebug(logging.Filter):
    """Demote the records of libraries to DEBUG, for the command line's handler."""

    def __init__(self, threshold: int) -> None:
        super().__init__()
        self.threshold = threshold

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.split(".", 1)[0] in OWN_LOGGERS:
            return True
        if self.threshold > logging.DEBUG:
            return False
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


def configure_logging(level: str = "INFO") -> None:
    """Send every log record to stderr as JSON lines."""
    handler = _ServiceHandler(sys.stderr)
    handler.setFormatter(JSONFormatter())
    _install(handler, level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Every request is logged once, by the API's middleware, with its request id.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # The JSON lines carry no thread, process or source location, so the records need not
    # collect them (the logging HOWTO's "Optimization"): this halves the cost of the access
    # log line every request writes.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None


def configure_cli_logging() -> None:
    """The command line's logging: JSON lines on stderr, the service's own records only.

    Warnings and errors of the service's own loggers are shown; the records of libraries
    (pyHanko's tracebacks among them) only with ``ECONTRACT_LOG_LEVEL=DEBUG``. The level is
    read from the environment, not the settings, so that a command that never opens the
    service still logs the same way.
    """
    level = os.environ.get("ECONTRACT_LOG_LEVEL", "WARNING").upper()
    if level not in logging.getLevelNamesMapping():
        level = "WARNING"
    handler = _CurrentStderrHandler()
    handler.setFormatter(JSONFormatter())
    handler.addFilter(_LibraryRecordsAsDebug(logging.getLevelNamesMapping()[level]))
    _install(handler, level)


def _install(handler: logging.Handler, level: str) -> None:
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Python's warnings become records too, instead of raw lines on stderr.
    logging.captureWarnings(True)
    # A library that configured a handler of its own would write around the formatter.
    for name in ("pyhanko", "pyhanko_certvalidator", "py.warnings"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
