"""Every route of a client declares the scope it needs, as a dependency it cannot forget."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

import routes.audit
import routes.auth
import routes.certificates
import routes.documents
import routes.log
import routes.ops
import routes.pki
import routes.verification
from routes.deps import get_principal

ROUTERS = (
    routes.audit.router,
    routes.auth.router,
    routes.certificates.router,
    routes.certificates.seals_router,
    routes.documents.router,
    routes.log.router,
    routes.ops.router,
    routes.pki.router,
    routes.verification.router,
)

#: Routes that take one of several scopes and check them in their body (a client without
#: any of them gets 403: tests/econtract/ses/test_seal_data.py and the seals list tests).
EITHER_SCOPE = {"/v1/seals", "/v1/seals/{seal_id}/ses"}


def _calls(dependant: Dependant) -> Iterator[object]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _authenticated_routes() -> list[APIRoute]:
    return [
        route
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute) and get_principal in _calls(route.dependant)
    ]


def test_every_authenticated_route_declares_a_scope() -> None:
    unscoped = [
        f"{sorted(route.methods or ())} {route.path}"
        for route in _authenticated_routes()
        if route.path not in EITHER_SCOPE
        and not any(
            getattr(call, "__qualname__", "").startswith("require_scope.")
            for call in _calls(route.dependant)
        )
    ]
    assert unscoped == []


def test_the_client_routes_are_found() -> None:
    # The rule above would hold vacuously if the walk found no route of a client.
    paths = {route.path for route in _authenticated_routes()}
    assert {"/v1/certificates", "/v1/documents/seal", "/v1/audit/events"} <= paths
