"""The console's home page in five numbers: a period's certificates issued, revocations and
suspensions, envelopes still open, FORGED or UNKNOWN QR answers, and the early warnings open
now, for every department or one. Each is the sum of an overview figure's points (its one
aggregate query) or one count; the figures page draws them at length."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from econtract.services import Services
from econtract.supervision._conditions import Period
from econtract.supervision._models import SupervisionWarning, WarningStatus
from econtract.supervision._overview import (
    Series,
    envelopes_by_status,
    issued_per_day,
    scans_per_day,
)
from econtract.supervision._status_changes import status_changes_per_day


@dataclass(frozen=True, kw_only=True)
class Headline:
    """A period's totals for the home page."""

    issued: int
    status_changes: int
    envelopes_open: int
    failed_scans: int
    warnings_open: int


def headline(services: Services, period: Period, *, department_id: int | None = None) -> Headline:
    """The totals of ``period`` for ``department_id`` (every department when ``None``)."""

    def total(series: Series, *labels: str) -> int:
        return round(sum(p.y for p in series.points if not labels or p.label in labels))

    envelopes = envelopes_by_status(services, period, department_id=department_id)
    warnings = select(func.count()).where(SupervisionWarning.status == WarningStatus.OPEN.value)
    if department_id is not None:
        warnings = warnings.where(SupervisionWarning.department_id == department_id)
    with services.sessions() as session:
        warnings_open = session.scalar(warnings.select_from(SupervisionWarning)) or 0
    return Headline(
        issued=total(issued_per_day(services, period, department_id=department_id)),
        status_changes=total(status_changes_per_day(services, period, department_id=department_id)),
        envelopes_open=round(sum(p.y for p in envelopes.points if p.x == "open")),
        failed_scans=total(
            scans_per_day(services, period, department_id=department_id), "forged-or-unknown"
        ),
        warnings_open=warnings_open,
    )
