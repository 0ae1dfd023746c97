"""Whether a department may use a licence: its grant for the type and matter, and, where the
grant requires it, the holder's consent.

:func:`authorise_use` answers for one licence type (and, when the call names one, one
licence) or raises the :class:`~econtract.sharing.UseRefusedError` that says which rule
refused it, each with its own problem code:

- ``no-grant``: the department holds no live grant for the type, or its grant does not list
  the matter;
- ``consent-required``: the grant requires consent and none was given, or the consent named
  does not exist;
- ``consent-mismatch``: the consent was given to another department, for another holder,
  type, licence, matter or case (the message says which);
- ``consent-withdrawn`` and ``consent-expired``.

A consent that belongs to another department is refused before anything else about it is
said: a department learns nothing of another department's consents.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from econtract.licence_metadata import HolderType
from econtract.models import Certificate, Consent, Grant
from econtract.sharing._usage import LicenceRef, UseContext, UseRefusedError


class NoGrantError(UseRefusedError):
    """The department holds no grant for the type, or not for the matter."""

    code = "no-grant"
    title = "The department holds no grant for this use."


class ConsentRequiredError(UseRefusedError):
    """The grant requires the holder's consent and none (or an unknown one) was given."""

    code = "consent-required"
    title = "This use needs the holder's consent."


class ConsentMismatchError(UseRefusedError):
    """The consent given does not cover this use: another department, holder, type, licence,
    matter or case."""

    code = "consent-mismatch"
    title = "The consent does not cover this use."


class ConsentWithdrawnError(UseRefusedError):
    """The holder withdrew the consent."""

    code = "consent-withdrawn"
    title = "The holder withdrew this consent."


class ConsentExpiredError(UseRefusedError):
    """The consent's time is over."""

    code = "consent-expired"
    title = "The consent has expired."


@dataclass(frozen=True, kw_only=True)
class UseAuthorisation:
    """What allows a use: the grant, and the consent when one was needed or given."""

    grant: Grant
    consent: Consent | None


def live_grants(session: Session, department_id: int) -> dict[str, Grant]:
    """The department's standing grants, by licence type."""
    rows = session.scalars(
        select(Grant).where(Grant.department_id == department_id, Grant.revoked_at.is_(None))
    )
    return {grant.type_code: grant for grant in rows}


def grant_for(
    session: Session,
    context: UseContext,
    type_code: str,
    *,
    holder: tuple[str, HolderType] | None = None,
    licences: tuple[LicenceRef, ...] = (),
) -> Grant:
    """The department's grant to use ``type_code`` for the context's matter;
    :class:`NoGrantError` naming what is missing otherwise."""
    grant = live_grants(session, context.department_id).get(type_code)
    if grant is None:
        raise NoGrantError(
            f"Department {context.department_code} holds no grant to use {type_code} "
            "licences; the operator records one with `econtract grants add`.",
            holder=holder,
            licences=licences,
        )
    if context.matter not in grant.matters:
        listed = "; ".join(grant.matters)
        raise NoGrantError(
            f"The grant of {type_code} to department {context.department_code} does not "
            f"list the matter {context.matter!r}; it lists: {listed}.",
            holder=holder,
            licences=licences,
        )
    return grant


def authorise_use(
    session: Session,
    context: UseContext,
    *,
    type_code: str,
    holder: tuple[str, HolderType],
    consent_id: str | None,
    now: datetime,
    certificate: Certificate | None = None,
) -> UseAuthorisation:
    """Whether the context's department may use the holder's ``type_code`` licences (or the
    one ``certificate``) for its matter, now; see the module's docstring for the refusals.

    A consent given although the grant does not require one is still checked: a department
    that names a consent relies on it, and a wrong one is an error worth hearing of.
    """
    licences = () if certificate is None else (LicenceRef.of(certificate),)
    grant = grant_for(session, context, type_code, holder=holder, licences=licences)
    if consent_id is None:
        if grant.requires_consent:
            raise ConsentRequiredError(
                f"The grant of {type_code} to department {context.department_code} requires "
                "the holder's consent for each use; name the consent the holder gave "
                "(consent), or scan the holder's 亮证码.",
                holder=holder,
                licences=licences,
            )
        return UseAuthorisation(grant=grant, consent=None)
    consent = session.get(Consent, consent_id)
    if consent is None or consent.department_id != context.department_id:
        # Another department's consent reads as an unknown one: its existence is not ours
        # to tell.
        if consent is not None:
            raise ConsentMismatchError(
                f"Consent {consent_id} was not given to department {context.department_code}.",
                holder=holder,
                licences=licences,
            )
        raise ConsentRequiredError(
            f"There is no consent {consent_id}; the holder gives one through the holder app.",
            holder=holder,
            licences=licences,
        )
    _check_consent(consent, context, type_code=type_code, holder=holder, licences=licences)
    if consent.withdrawn_at is not None:
        raise ConsentWithdrawnError(
            f"The holder withdrew consent {consent.id} at {consent.withdrawn_at.isoformat()}.",
            holder=holder,
            licences=licences,
            consent_id=consent.id,
        )
    if consent.valid_until <= now:
        raise ConsentExpiredError(
            f"Consent {consent.id} ended at {consent.valid_until.isoformat()}.",
            holder=holder,
            licences=licences,
            consent_id=consent.id,
        )
    return UseAuthorisation(grant=grant, consent=consent)


def _check_consent(
    consent: Consent,
    context: UseContext,
    *,
    type_code: str,
    holder: tuple[str, HolderType],
    licences: tuple[LicenceRef, ...],
) -> None:
    """Refuse a consent of this department given for something else, naming what."""
    mismatch: str | None = None
    if consent.holder_code != holder[0] or consent.holder_type != holder[1].value:
        mismatch = "was given by another holder"
    elif consent.type_code != type_code:
        mismatch = f"is for {consent.type_code} licences, not {type_code}"
    elif licences and consent.certificate_id not in (None, licences[0].certificate_id):
        mismatch = "is for another licence of the holder"
    elif consent.matter != context.matter:
        mismatch = f"is for the matter {consent.matter!r}, not {context.matter!r}"
    elif consent.case_number is not None and consent.case_number != context.case_number:
        mismatch = "is for another case number"
    if mismatch is not None:
        raise ConsentMismatchError(
            f"Consent {consent.id} {mismatch}.",
            holder=holder,
            licences=licences,
            consent_id=consent.id,
        )
