"""Judging a PDF or a QR token: integrity, coverage, changes after sealing, trust, revocation.

This package reads public material only (trust roots, CRLs, OCSP responses, the registry);
it never imports a private-key path.
"""
