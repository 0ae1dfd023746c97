"""The department's audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from econtract.audit import AuditQuery, event_json, query_events, to_csv, to_jsonl
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
