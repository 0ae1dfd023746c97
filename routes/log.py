"""The transparency log: tree heads, proofs, entries and the log's key."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from econtract.translog import (
    consistency_json,
    entries_json,
    inclusion_json,
    log_key_json,
    log_key_pem,
    sth_json,
)
from routes.deps import ServicesDep, wants_json

router = APIRouter(prefix="/log", tags=["transparency log"])
LogNumber = Annotated[str | None, Query(max_length=40)]


@router.get("/sth")
def log_sth(services: ServicesDep) -> dict[str, Any]:
    """The latest signed tree head (RFC 6962 TreeHeadSignature, ECDSA P-256)."""
    with services.sessions() as session:
        return sth_json(session)


@router.get("/proof/inclusion")
def log_inclusion(
    services: ServicesDep,
    tree_size: LogNumber = None,
    leaf_index: LogNumber = None,
    entry_hash: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    """An inclusion proof of a leaf (by index or entry hash) in a published tree size."""
    with services.sessions() as session:
        return inclusion_json(
            session, leaf_index=leaf_index, entry_hash=entry_hash, tree_size=tree_size
        )


@router.get("/proof/consistency")
def log_consistency(
    services: ServicesDep, first: LogNumber = None, second: LogNumber = None
) -> dict[str, Any]:
    """A consistency proof between two published tree sizes."""
    with services.sessions() as session:
        return consistency_json(session, first=first, second=second)


@router.get("/entries")
def log_entries(
    services: ServicesDep, start: LogNumber = None, end: LogNumber = None
) -> dict[str, Any]:
    """Entries ``[start, end)``, at most 1000, within the latest signed tree head."""
    with services.sessions() as session:
        return entries_json(session, start=start, end=end)


@router.get("/key", response_class=Response)
def log_key(request: Request, services: ServicesDep) -> Response:
    """The log's public key: PEM, or JSON with ``Accept: application/json``."""
    public_key = services.pki.log_key.public_key()
    if wants_json(request):
        return JSONResponse(log_key_json(public_key))
    return Response(log_key_pem(public_key), media_type="application/x-pem-file")
