"""The monthly report as the service issues it: drawn, sealed by the platform seal at B-LT
and registered as a document of the platform body, like an envelope's completion
certificate (:func:`econtract.sharing.seal_by_platform`), so that ``econtract verify`` and
the verification page find it VALID and know where it came from.

The figures are read first, outside any write transaction; the sealing registers the file
in its own short one.
"""

from __future__ import annotations

from econtract import audit
from econtract.models import SealedDocument
from econtract.reports._monthly import Month, monthly_report
from econtract.reports._pdf import monthly_report_pdf
from econtract.services import Services
from econtract.sharing import seal_by_platform


def file_name_of(month: Month, department_code: str | None) -> str:
    """The report's file name: ``monthly-report-2026-11[-CODE].pdf``."""
    return f"monthly-report-{month}" + (f"-{department_code}" if department_code else "") + ".pdf"


def make_monthly_report(
    services: Services,
    month: Month,
    *,
    department_code: str | None = None,
    actor: audit.Actor,
) -> SealedDocument:
    """Make, seal and register the report of ``month`` for the province or one department;
    the registered document (its PDF in the blob store under ``blob_key``).

    ``actor`` is who asked (the operator, a console account); it names no department, since
    the platform seals on the service's behalf."""
    report = monthly_report(services, month, department_code=department_code)
    pdf = monthly_report_pdf(report)
    sealed = seal_by_platform(
        services,
        pdf,
        actor=audit.Actor(name=actor.name, request_id=actor.request_id),
        file_name=file_name_of(month, department_code),
    )
    return sealed.document
