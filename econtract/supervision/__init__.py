"""Supervision (电子监察): early warnings raised by rules over the registry, and the overview
figures a supervisor or a department reads."""

from econtract.supervision._models import ScanCount, SupervisionWarning, WarningStatus

__all__ = ["ScanCount", "SupervisionWarning", "WarningStatus"]
