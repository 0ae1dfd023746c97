"""Judging a PDF or a QR token: integrity, coverage, changes after sealing, trust, revocation.

This package reads public material only (trust roots, CRLs, OCSP responses, the registry);
it never imports a private-key path.

Entry points: :func:`verify.pdf.verify_pdf` (in process) and
:func:`verify.limits.verify_pdf_bounded` (an upload: worker process, time and memory
limits); the report is :class:`verify.report.Report` (``econtract-report/1``).
"""
