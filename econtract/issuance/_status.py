"""Which licences count as held: the status a person sees, and one valid licence per holder.

:func:`effective_status` derives what a person sees from the registry status and the
validity dates (a valid licence past its last day is EXPIRED). :func:`refuse_second_licence`
keeps the issuing rule that a holder holds at most one valid licence of a type from a
department; it runs in the claiming transaction, after the claim that holds the holder
(:mod:`econtract.issuance._claims`).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from econtract.clock import SYSTEM_CLOCK
from econtract.errors import LicenceExistsError
from econtract.issuance._request import ValidatedRequest
from econtract.models import Certificate, CertificateStatus, Department


class EffectiveStatus(StrEnum):
    """The status a certificate shows a person: its registry status (:class:`CertificateStatus`),
    except that a valid one is EXPIRED after its last day and NOT_YET_VALID before its first.

    A ``StrEnum``, so that JSON and templates keep the same words."""

    VALID = "valid"
    REVOKED = "revoked"
    SUSPENDED = "suspended"
    SUPERSEDED = "superseded"
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"


class Validity(Protocol):
    """What the effective status is computed from."""

    @property
    def status(self) -> str: ...
    @property
    def valid_from(self) -> date: ...
    @property
    def valid_until(self) -> date | None: ...


def effective_status(certificate: Validity, on: date | None = None) -> EffectiveStatus:
    """The status a person sees on ``on`` (today in China when unset): expiry is derived from
    the validity dates."""
    on = on or SYSTEM_CLOCK.today()
    if (
        certificate.status == CertificateStatus.VALID
        and certificate.valid_until is not None
        and on > certificate.valid_until
    ):
        return EffectiveStatus.EXPIRED
    if certificate.status == CertificateStatus.VALID and on < certificate.valid_from:
        return EffectiveStatus.NOT_YET_VALID
    return EffectiveStatus(certificate.status)


def refuse_second_licence(
    session: Session,
    *,
    department: Department,
    request: ValidatedRequest,
    today: date,
) -> None:
    """Refuse a licence for a holder who holds a valid one of this type from this department.

    Valid means what a person would call valid: not revoked nor superseded, and not past its
    last day (a suspended licence is still held). The one being superseded does not count.
    Runs after the request's pending claim is written (:mod:`econtract.issuance._claims`), so
    it sees every licence registered before.
    """
    holder_code = request.holder_code
    if holder_code is None:
        return
    held = (
        select(Certificate.id, Certificate.number)
        .where(
            Certificate.department_id == department.id,
            Certificate.type_code == request.template.code,
            Certificate.holder_code == holder_code,
            Certificate.status.in_(
                (CertificateStatus.VALID.value, CertificateStatus.SUSPENDED.value)
            ),
            (Certificate.valid_until.is_(None)) | (Certificate.valid_until >= today),
        )
        .order_by(Certificate.issued_at)
    )
    if request.supersedes is not None:
        held = held.where(Certificate.id != request.supersedes)
    existing = session.execute(held.limit(1)).first()
    if existing is not None:
        raise LicenceExistsError(
            f"{holder_code} already holds a valid {request.template.name} of this department, "
            f"number {existing.number} ({existing.id}); supersede it to renew or amend it.",
            certificate_id=existing.id,
            number=existing.number,
        )
