"""Usage records (用证记录): every use of a licence, granted or refused, written down.

A using department's call names why (``use_cause``), for which matter (事项) and, when it
has one, the case (办件) number: :class:`UseContext` holds them with who called, validated
once. :func:`record_use` writes the records of one call in the caller's transaction and
appends one ``licence.use`` entry per record to the transparency log. The entry carries the
record's id, the using department's code and :func:`usage_digest`, a salted SHA-256 of the
whole record: the public log names no holder and no licence, yet a record changed or erased
later no longer matches it, so a department cannot deny a use.

A refused call is recorded too: :func:`run_use` runs a use case in its transaction and, when
it is refused (:class:`UseRefusedError`, or an object that is not there), records the refusal
in a transaction of its own before the refusal reaches the caller. Licences are named by
:class:`LicenceRef` values, plain data that outlive the refused transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from econtract import db
from econtract.clock import Clock
from econtract.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from econtract.issuance import is_valid_id_number, mask
from econtract.licence_metadata import HolderType
from econtract.models import Certificate, UsageRecord, new_public_id
from econtract.text import clean_text
from econtract.translog import LogEntry, LogEntryKind, append_entries, canonical_json
from econtract.uscc import InvalidCreditCodeError, validate_credit_code

if TYPE_CHECKING:
    from econtract.services import Services

_T = TypeVar("_T")

#: The longest use cause (用证事由) a call may give.
MAX_USE_CAUSE_LENGTH = 200
#: The longest matter (事项) name, as grants keep them.
MAX_MATTER_LENGTH = 200
#: The longest case (办件) number.
MAX_CASE_NUMBER_LENGTH = 64

#: What a usage record says a call did.
ACTIONS = ("lookup", "check", "copy", "scan")
#: The result of a call that was allowed and found what it asked for.
GRANTED = "granted"
#: The result of a call that was allowed and found nothing.
NOT_FOUND = "not-found"


@dataclass(frozen=True, kw_only=True)
class LicenceRef:
    """A licence as a usage record names it."""

    certificate_id: str
    identifier: str
    holder_code: str | None
    holder_type: str | None

    @classmethod
    def of(cls, certificate: Certificate) -> LicenceRef:
        """The reference of a registered certificate."""
        return cls(
            certificate_id=certificate.id,
            identifier=certificate.identifier,
            holder_code=certificate.national_holder_code,
            holder_type=certificate.national_holder_type,
        )


class UseRefusedError(PermissionDeniedError):
    """A use the grants or the holder's consent do not allow (403); ``code`` says which
    rule refused it, and the usage record keeps that code as its result."""

    code = "use-refused"
    title = "This use of the licence is not allowed."

    def __init__(
        self,
        message: str,
        *,
        holder: tuple[str, HolderType] | None = None,
        licences: Sequence[LicenceRef] = (),
        consent_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.holder = holder
        self.licences = tuple(licences)
        self.consent_id = consent_id


@dataclass(frozen=True, kw_only=True)
class UseContext:
    """Who uses a licence, why and for what: the part every use call shares."""

    department_id: int
    """The using department's registry id."""
    department_code: str
    """Its credit code (the log names it)."""
    client_id: str
    """The API client that called."""
    use_cause: str
    """Why (用证事由), at most 200 characters."""
    matter: str
    """The matter (事项) the use is for; a grant must list it."""
    case_number: str | None = None
    """The case (办件) number, when there is one."""
    remote_addr: str | None = None
    """The caller's address, as the service saw it."""
    request_id: str | None = None
    """The request's id (the records of one call share it)."""

    @classmethod
    def create(
        cls,
        *,
        department_id: int,
        department_code: str,
        client_id: str,
        use_cause: str,
        matter: str,
        case_number: str | None = None,
        remote_addr: str | None = None,
        request_id: str | None = None,
    ) -> UseContext:
        """A context with its free texts cleaned; :class:`InvalidInputError` by pointer for
        an empty or over-long ``use_cause``, ``matter`` or ``case_number``."""
        return cls(
            department_id=department_id,
            department_code=department_code,
            client_id=client_id,
            use_cause=clean_text(use_cause, field="use_cause", max_length=MAX_USE_CAUSE_LENGTH),
            matter=clean_text(matter, field="matter", max_length=MAX_MATTER_LENGTH),
            case_number=None
            if case_number is None
            else clean_text(case_number, field="case_number", max_length=MAX_CASE_NUMBER_LENGTH),
            remote_addr=remote_addr[:64] if remote_addr else None,
            request_id=request_id,
        )


def parse_holder(holder_code: str, holder_type: str) -> tuple[str, HolderType]:
    """The holder's code and type, checked: ``001`` takes a unified social credit code (GB
    32100), ``111`` a resident identity number (GB 11643). :class:`InvalidInputError` by
    pointer names an unknown type or a malformed code (an identity number is never echoed).
    """
    try:
        kind = HolderType(holder_type)
    except ValueError:
        known = ", ".join(f"{k.value} ({k.name.lower().replace('_', ' ')})" for k in HolderType)
        raise InvalidInputError(
            f"holder_type {holder_type[:10]!r} is not known; it is one of {known}.",
            errors=[("/holder_type", "unknown holder type")],
        ) from None
    code = holder_code.strip().upper()
    if kind is HolderType.CREDIT_CODE:
        try:
            validate_credit_code(code)
        except InvalidCreditCodeError as exc:
            # A person's identity number sent as a credit code must not come back whole:
            # the checker's message quotes the code, so it is said with the code masked.
            said = str(exc).replace(repr(code), mask(code))
            if is_valid_id_number(code):
                said = f"{mask(code)} is a resident identity number; its holder_type is 111."
            raise InvalidInputError(
                f"holder_code is not a unified social credit code: {said}",
                errors=[("/holder_code", "not a unified social credit code")],
            ) from None
    elif not is_valid_id_number(code):
        raise InvalidInputError(
            f"holder_code {mask(code)} is not a resident identity number (GB 11643): "
            "18 characters, a valid date of birth and the right check character.",
            errors=[("/holder_code", "not a resident identity number")],
        )
    return code, kind


def masked_holder(code: str | None, holder_type: str | None) -> str | None:
    """A holder code as it may be shown outside an authorised use: an identity number with
    its middle hidden, a credit code whole (it is public)."""
    if code is None:
        return None
    return mask(code) if holder_type == HolderType.CITIZEN_ID.value else code


def usage_digest(record: UsageRecord) -> str:
    """Hex SHA-256 of the record's canonical JSON (:func:`usage_body`): what its
    ``licence.use`` log entry commits to."""
    return hashlib.sha256(canonical_json(usage_body(record))).hexdigest()


def usage_body(record: UsageRecord) -> dict[str, object]:
    """Every column of the record but the row number, the salt included, as JSON values:
    what :func:`usage_digest` digests, and what an auditor recomputes it from."""
    return {
        "usage_id": record.usage_id,
        "department_id": record.department_id,
        "client_id": record.client_id,
        "action": record.action,
        "holder_code": record.holder_code,
        "holder_type": record.holder_type,
        "certificate_id": record.certificate_id,
        "identifier": record.identifier,
        "use_cause": record.use_cause,
        "matter": record.matter,
        "case_number": record.case_number,
        "consent_id": record.consent_id,
        "result": record.result,
        "remote_addr": record.remote_addr,
        "request_id": record.request_id,
        "salt": record.salt,
        "created_at": record.created_at.isoformat(),
    }


def record_use(
    session: Session,
    context: UseContext,
    *,
    action: str,
    result: str,
    clock: Clock,
    holder: tuple[str, HolderType] | None = None,
    licences: Sequence[LicenceRef] = (),
    consent_id: str | None = None,
) -> list[UsageRecord]:
    """Write the usage records of one call and their log entries, in the caller's
    transaction: one record per licence in ``licences``, or one without a licence when
    there are none. ``holder`` is the holder asked about, when the call named one."""
    if action not in ACTIONS:
        raise ValueError(f"A usage record's action is one of {', '.join(ACTIONS)}.")
    now = clock.now()
    targets: Sequence[LicenceRef | None] = list(licences) or [None]
    records: list[UsageRecord] = []
    for licence in targets:
        holder_code, holder_type = _holder_of(holder, licence)
        record = UsageRecord(
            usage_id=new_public_id("use"),
            department_id=context.department_id,
            client_id=context.client_id,
            action=action,
            holder_code=holder_code,
            holder_type=holder_type,
            certificate_id=None if licence is None else licence.certificate_id,
            identifier=None if licence is None else licence.identifier,
            use_cause=context.use_cause,
            matter=context.matter,
            case_number=context.case_number,
            consent_id=consent_id,
            result=result,
            remote_addr=context.remote_addr,
            request_id=context.request_id,
            salt=secrets.token_hex(16),
            created_at=now,
        )
        session.add(record)
        records.append(record)
    append_entries(session, [_log_entry(record, context.department_code) for record in records])
    return records


def _holder_of(
    holder: tuple[str, HolderType] | None, licence: LicenceRef | None
) -> tuple[str | None, str | None]:
    if holder is not None:
        return holder[0], holder[1].value
    if licence is not None:
        return licence.holder_code, licence.holder_type
    return None, None


def run_use(
    services: Services,
    context: UseContext,
    *,
    action: str,
    work: Callable[[Session], _T],
    holder: tuple[str, HolderType] | None = None,
) -> _T:
    """Run ``work`` (which records its own granted use with :func:`record_use`) in one
    transaction. When it is refused, by a :class:`UseRefusedError` or because what it
    names is not there (:class:`NotFoundError`), the refusal is recorded in a transaction
    of its own, and then raised."""
    try:
        with db.transaction(services.sessions) as session:
            return work(session)
    except (UseRefusedError, NotFoundError) as refusal:
        refused = refusal if isinstance(refusal, UseRefusedError) else None
        with db.transaction(services.sessions) as session:
            record_use(
                session,
                context,
                action=action,
                result=refusal.code,
                clock=services.clock,
                holder=refused.holder if refused and refused.holder else holder,
                licences=refused.licences if refused else (),
                consent_id=refused.consent_id if refused else None,
            )
        raise


def _log_entry(record: UsageRecord, department_code: str) -> LogEntry:
    return LogEntry(
        kind=LogEntryKind.LICENCE_USE,
        time=record.created_at,
        department=department_code,
        usage_id=record.usage_id,
        record_sha256=usage_digest(record),
    )


def list_usage(
    session: Session,
    *,
    holder_code: str | None = None,
    certificate_id: str | None = None,
    department_id: int | None = None,
    after: int | None = None,
    limit: int = 100,
) -> list[UsageRecord]:
    """Usage records, newest first, of one holder, one licence or one using department (at
    least one must be given; they combine). ``after`` is the row number of the last record
    of the page before (the cursor a list answer hands out)."""
    if holder_code is None and certificate_id is None and department_id is None:
        raise ValueError("Usage records are listed per holder, licence or department.")
    query = select(UsageRecord)
    if holder_code is not None:
        query = query.where(UsageRecord.holder_code == holder_code)
    if certificate_id is not None:
        query = query.where(UsageRecord.certificate_id == certificate_id)
    if department_id is not None:
        query = query.where(UsageRecord.department_id == department_id)
    if after is not None:
        query = query.where(UsageRecord.id < after)
    return list(session.scalars(query.order_by(UsageRecord.id.desc()).limit(limit)))
