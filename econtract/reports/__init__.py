"""Reports the service issues about itself: the monthly supervision report (月度通报).

- :class:`Month` is a China month (``Month.parse("2026-11")``); :func:`monthly_report`
  reads its figures for the province or one department into a :class:`MonthlyReport`,
  :func:`reported_departments` the departments it may be about (``_monthly``);
- :func:`monthly_report_pdf` draws it (``_pdf``);
- :func:`make_monthly_report` draws, seals and registers it (``_sealed``).
"""

from econtract.reports._monthly import (
    REPORT_FORMAT,
    DepartmentRow,
    Month,
    MonthlyReport,
    ReasonCount,
    Totals,
    monthly_report,
    reported_departments,
)
from econtract.reports._pdf import monthly_report_pdf, title_of
from econtract.reports._sealed import file_name_of, make_monthly_report

__all__ = [
    "REPORT_FORMAT",
    "DepartmentRow",
    "Month",
    "MonthlyReport",
    "ReasonCount",
    "Totals",
    "file_name_of",
    "make_monthly_report",
    "monthly_report",
    "monthly_report_pdf",
    "reported_departments",
    "title_of",
]
