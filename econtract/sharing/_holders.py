"""The holder as the holder app names it: a code in a URL, and the licences held under it.

The holder app authenticates a citizen or an enterprise and then names them by their national
code alone: a unified social credit code (GB 32100) is an enterprise's (``001``), a resident
identity number (GB 11643) a person's (``111``). The two formats cannot be mistaken for each
other in practice (a credit code's check character is rarely a valid identity number's too),
so the type is read from the code; the app may still say it, and is then held to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from econtract.errors import InvalidInputError
from econtract.issuance import is_valid_id_number, mask
from econtract.licence_metadata import HolderType
from econtract.models import Certificate, Department, UsageRecord
from econtract.sharing._usage import list_usage, parse_holder
from econtract.uscc import InvalidCreditCodeError, validate_credit_code

#: The most licences one holder's list answers with: a holder holds a handful per department.
MAX_HOLDER_LICENCES = 500


def read_holder(holder_code: str, holder_type: str | None = None) -> tuple[str, HolderType]:
    """The holder named by ``holder_code``, its type read from the code unless
    ``holder_type`` says it; :class:`InvalidInputError` by pointer for an unknown type or a
    code that is neither kind (an identity number is never echoed)."""
    code = holder_code.strip().upper()
    if holder_type is not None:
        try:
            return parse_holder(code, holder_type)
        except InvalidInputError as exc:
            # The credit code check quotes what it was given, which may be a person's
            # identity number sent with the wrong type.
            raise InvalidInputError(
                exc.message.replace(code, mask(code)), errors=exc.errors
            ) from None
    try:
        validate_credit_code(code)
    except InvalidCreditCodeError:
        if is_valid_id_number(code):
            return code, HolderType.CITIZEN_ID
        raise InvalidInputError(
            f"holder_code {mask(code)} is neither a unified social credit code (GB 32100) nor "
            "a resident identity number (GB 11643).",
            errors=[("/holder_code", "not a credit code nor an identity number")],
        ) from None
    return code, HolderType.CREDIT_CODE


def holder_licences(
    session: Session, holder: tuple[str, HolderType], *, type_code: str | None = None
) -> list[Certificate]:
    """The holder's licences from every department, newest first; of one type if asked."""
    query = select(Certificate).where(
        Certificate.national_holder_code == holder[0],
        Certificate.national_holder_type == holder[1].value,
    )
    if type_code is not None:
        query = query.where(Certificate.type_code == type_code)
    query = query.order_by(Certificate.issued_at.desc(), Certificate.id.desc())
    return list(session.scalars(query.limit(MAX_HOLDER_LICENCES)))


@dataclass(frozen=True, kw_only=True)
class HolderUsage:
    """A use of the holder's licences as the holder sees it: who used what, why, and whether
    it was allowed."""

    row: int
    """The record's row number: the cursor of the next page."""
    usage_id: str
    """The record's public id (``use_…``)."""
    time: datetime
    """When."""
    action: str
    """``lookup``, ``check``, ``copy`` or ``scan``."""
    department_code: str
    """The using department's credit code."""
    department_name: str
    """Its name."""
    identifier: str | None
    """The licence identifier used, when a licence was."""
    use_cause: str
    """Why (用证事由)."""
    matter: str
    """The matter (事项)."""
    case_number: str | None
    """The case (办件) number, if given."""
    result: str
    """``granted``, ``not-found`` or the problem code of the refusal."""
    consent_id: str | None
    """The consent the use relied on, if any."""


def holder_usage(
    session: Session,
    holder: tuple[str, HolderType],
    *,
    after: int | None = None,
    limit: int = 50,
) -> list[HolderUsage]:
    """The uses of the holder's licences (用证记录), newest first; ``after`` is the row number
    of the last record of the page before."""
    # A credit code and an identity number are told apart by their check characters, so the
    # code alone names the holder.
    records = list_usage(session, holder_code=holder[0], after=after, limit=limit)
    names = {
        d.id: d
        for d in session.scalars(
            select(Department).where(Department.id.in_({r.department_id for r in records}))
        )
    }
    return [_usage_of(r, names[r.department_id]) for r in records]


def _usage_of(record: UsageRecord, department: Department) -> HolderUsage:
    return HolderUsage(
        row=record.id,
        usage_id=record.usage_id,
        time=record.created_at,
        action=record.action,
        department_code=department.code,
        department_name=department.name,
        identifier=record.identifier,
        use_cause=record.use_cause,
        matter=record.matter,
        case_number=record.case_number,
        result=record.result,
        consent_id=record.consent_id,
    )
