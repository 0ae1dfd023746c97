"""Supervision (电子监察): early warnings raised by rules over the registry, and the overview
figures a supervisor or a department reads."""

from econtract.supervision._models import ScanCount, SupervisionWarning, WarningStatus
from econtract.supervision._rules import RULES, Candidate
from econtract.supervision._scans import FAILED_ANSWERS, count_qr_answer, count_scan, flush_scans
from econtract.supervision._warnings import (
    Supervisor,
    WarningClosedError,
    WarningView,
    acknowledge,
    close,
    evaluate_warnings,
    list_warnings,
)

__all__ = [
    "FAILED_ANSWERS",
    "RULES",
    "Candidate",
    "ScanCount",
    "SupervisionWarning",
    "Supervisor",
    "WarningClosedError",
    "WarningStatus",
    "WarningView",
    "acknowledge",
    "close",
    "count_qr_answer",
    "count_scan",
    "evaluate_warnings",
    "flush_scans",
    "list_warnings",
]
