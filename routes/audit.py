"""The department's audit trail."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from econtract.audit import AuditQuery, event_json, query_events, to_csv, to_jsonl
from econtract.sharing import usage_export
from routes.deps import AuditorDep, ServicesDep

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get(
    "/events",
    responses={
        200: {"content": {"application/json": {}, "application/x-ndjson": {}, "text/csv": {}}}
    },
)
def audit_events(
    services: ServicesDep,
    principal: AuditorDep,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    certificate: Annotated[str | None, Query(max_length=64)] = None,
    format: Annotated[str, Query(pattern="^(json|jsonl|csv)$")] = "json",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> Response:
    """The department's audit trail (scope ``audit``): who did what, when, with which outcome;
    as JSON, JSON Lines or CSV."""
    with services.sessions() as session:
        events = query_events(
            session,
            AuditQuery(
                department_id=principal.department_id,
                since=since,
                until=until,
                actor=actor,
                target_id=certificate,
                limit=limit,
            ),
        )
    if format == "jsonl":
        return Response(to_jsonl(events), media_type="application/x-ndjson")
    if format == "csv":
        return Response(
            to_csv(events),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
        )
    return JSONResponse([event_json(e) for e in events])


@router.get(
    "/usage",
    responses={200: {"content": {"application/json": {}, "application/x-ndjson": {}}}},
)
def audit_usage(
    services: ServicesDep,
    principal: AuditorDep,
    since: datetime | None = None,
    until: datetime | None = None,
    format: Annotated[str, Query(pattern="^(json|jsonl)$")] = "json",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> Response:
    """The usage records (用证记录) of the department's uses and of the uses of its licences,
    oldest first (scope ``audit``), each with every digested column, its ``usage_digest`` and
    the ``licence.use`` log entry committing to it (leaf index, canonical bytes in base64):
    recompute the SHA-256 of the record's canonical JSON and find it in the entry."""
    with services.sessions() as session:
        records = usage_export(
            session, department_id=principal.department_id, since=since, until=until, limit=limit
        )
    if format == "jsonl":
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        return Response(lines, media_type="application/x-ndjson")
    return JSONResponse(records)
