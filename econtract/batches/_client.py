"""A batch submitted to a running service and followed until it is done (the CLI's
``econtract batch issue --server``), over HTTP with the client credentials of an API client.

The batch's ``Idempotency-Key`` is the file's digest, so running the command again over the
same file follows the batch submitted the first time instead of submitting another.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from econtract.errors import EContractError

_TIMEOUT_SECONDS = 60.0


class BatchServerError(EContractError):
    """The service refused the batch or could not be reached."""

    code = "batch-server"
    title = "The service did not take the batch."


@dataclass
class BatchClient:
    """The batch endpoints of a service, for one API client."""

    base_url: str
    client_id: str
    client_secret: str
    session: requests.Session

    def token(self) -> str:
        """An access token from the client credentials grant."""
        body = self._call(
            "POST",
            "/v1/token",
            data={"grant_type": "client_credentials"},
            auth=(self.client_id, self.client_secret),
        )
        return str(body["access_token"])

    def submit(self, token: str, *, type_code: str, csv_bytes: bytes, key: str) -> dict[str, Any]:
        """Submit the CSV as a batch of ``type_code``."""
        batch: dict[str, Any] = self._call(
            "POST",
            "/v1/batches",
            params={"type": type_code},
            data=csv_bytes,
            headers=_auth(token) | {"Content-Type": "text/csv", "Idempotency-Key": key},
        )
        return batch

    def follow(
        self,
        token: str,
        batch_id: str,
        *,
        on_progress: Callable[[dict[str, Any]], None],
        every_seconds: float = 1.0,
    ) -> dict[str, Any]:
        """Ask for the batch until no row is queued, telling ``on_progress`` each answer."""
        while True:
            batch: dict[str, Any] = self._call(
                "GET", f"/v1/batches/{batch_id}", headers=_auth(token)
            )
            on_progress(batch)
            if batch["done"]:
                return batch
            time.sleep(every_seconds)

    def results(self, token: str, batch_id: str) -> list[dict[str, Any]]:
        """The batch's rows."""
        rows: list[dict[str, Any]] = self._call(
            "GET", f"/v1/batches/{batch_id}/results", headers=_auth(token)
        )
        return rows

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        url = self.base_url.rstrip("/") + path
        try:
            response = self.session.request(method, url, timeout=_TIMEOUT_SECONDS, **kwargs)
        except requests.RequestException as exc:
            raise BatchServerError(f"Cannot reach {self.base_url}: {type(exc).__name__}.") from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail") or response.text[:200]
            except (ValueError, AttributeError):
                detail = response.text[:200]
            raise BatchServerError(f"{method} {path} answered {response.status_code}: {detail}")
        return response.json()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def result_lines(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The service's rows as the local run's result lines (``econtract.batch``'s columns)."""
    lines = []
    for r in rows:
        errors = "; ".join(f"{e['pointer']}: {e['message']}" for e in r.get("errors") or [])
        lines.append(
            {
                "row": str(r["row"]),
                "status": r["state"],
                "certificate_id": r.get("certificate_id") or "",
                "number": r.get("number") or "",
                "error": errors,
            }
        )
    return lines
