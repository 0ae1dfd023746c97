"""What is read back of usage records: the issuing department's list of the uses of one of its
licences, and the auditor's export, in which every record comes with the log entry that
commits to it.

The export gives each record's every digested column, its salt and :func:`usage_digest`,
and the ``licence.use`` entry (leaf index and canonical bytes) that names the record: an
auditor recomputes the digest from the columns, finds it in the entry, and proves the entry
in the log with ``GET /log/…``; a record changed or erased after the fact shows there.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from econtract.certificates import get_certificate
from econtract.models import Certificate, Department, UsageRecord
from econtract.sharing._usage import list_usage, masked_holder, usage_body, usage_digest
from econtract.translog import subject_entries

#: The most records one export answer holds.
MAX_EXPORT = 10_000


@dataclass(frozen=True, kw_only=True)
class UsageView:
    """A usage record as the issuing department sees it: the holder masked."""

    cursor: int
    """The record's row number: the ``after`` of the next page."""
    usage_id: str
    time: datetime
    department_code: str
    """The using department's credit code."""
    department_name: str
    action: str
    use_cause: str
    matter: str
    case_number: str | None
    result: str
    holder: str | None
    """The holder's code, an identity number masked."""


def _departments(session: Session, ids: set[int]) -> dict[int, Department]:
    if not ids:
        return {}
    return {d.id: d for d in session.scalars(select(Department).where(Department.id.in_(ids)))}


def certificate_usage(
    session: Session,
    *,
    certificate_id: str,
    department_id: int,
    after: int | None = None,
    limit: int = 50,
) -> list[UsageView]:
    """The uses of one of the department's licences, newest first; another department's
    licence is a :class:`~econtract.errors.NotFoundError`, as one that does not exist."""
    get_certificate(session, certificate_id, department_id=department_id)
    records = list_usage(session, certificate_id=certificate_id, after=after, limit=limit)
    users = _departments(session, {r.department_id for r in records})
    return [
        UsageView(
            cursor=r.id,
            usage_id=r.usage_id,
            time=r.created_at,
            department_code=users[r.department_id].code,
            department_name=users[r.department_id].name,
            action=r.action,
            use_cause=r.use_cause,
            matter=r.matter,
            case_number=r.case_number,
            result=r.result,
            holder=masked_holder(r.holder_code, r.holder_type),
        )
        for r in records
    ]


def usage_export(
    session: Session,
    *,
    department_id: int,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """The usage records an auditor of the department reads, oldest first: the uses the
    department made, and the uses of its licences by any department. Each with its digest
    and its log entry (see the module's docstring)."""
    own_licences = select(Certificate.id).where(Certificate.department_id == department_id)
    query = select(UsageRecord).where(
        or_(
            UsageRecord.department_id == department_id,
            UsageRecord.certificate_id.in_(own_licences),
        )
    )
    if since is not None:
        query = query.where(UsageRecord.created_at >= since)
    if until is not None:
        query = query.where(UsageRecord.created_at < until)
    records = session.scalars(query.order_by(UsageRecord.id).limit(min(limit, MAX_EXPORT)))
    return [_exported(session, record) for record in records]


def _exported(session: Session, record: UsageRecord) -> dict[str, Any]:
    entries = subject_entries(session, record.usage_id, limit=1)
    return {
        **usage_body(record),
        "usage_digest": usage_digest(record),
        "log_entry": None
        if not entries
        else {
            "leaf_index": entries[0][0],
            "entry": base64.b64encode(entries[0][1]).decode("ascii"),
        },
    }
