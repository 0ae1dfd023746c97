"""Operations: liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from econtract import db, metrics
from econtract.errors import EContractError
from routes.deps import ServicesDep

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    """Liveness or readiness."""

    model_config = ConfigDict(extra="forbid")
    status: str
    checks: dict[str, str] = {}


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(services: ServicesDep) -> Response:
    """The database and the key store are reachable."""
    checks: dict[str, str] = {}
    try:
        db.check_database(services.engine)
        checks["database"] = "ok"
    except EContractError as exc:
        checks["database"] = exc.message
    try:
        services.key_store.check()
        checks["key_store"] = "ok"
    except EContractError as exc:
        checks["key_store"] = exc.message
    ready = all(v == "ok" for v in checks.values())
    body = Health(status="ok" if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response)
def prometheus_metrics() -> Response:
    """Prometheus text exposition."""
    payload, content_type = metrics.render()
    return Response(payload, media_type=content_type)
