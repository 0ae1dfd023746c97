"""The log's public endpoints, over HTTP (requests, the one HTTP client of the package)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import requests

from econtract.auditor._findings import AuditError, AuditUsageError
from econtract.translog import LogError, SignedTreeHead, b64decode

_TIMEOUT_SECONDS = 30.0


class LogClient:
    """The log's public endpoints."""

    def __init__(self, base_url: str, session: requests.Session) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session

    def _get(self, path: str, **params: int | str) -> requests.Response:
        try:
            response = self.session.get(
                self.base_url + path, params=params, timeout=_TIMEOUT_SECONDS
            )
        except requests.RequestException as exc:
            raise AuditError(
                f"The log at {self.base_url} is unreachable: {_reason(exc)}."
            ) from None
        if response.status_code != 200:
            try:
                detail = response.json().get("detail", response.text)
            except (ValueError, AttributeError):
                detail = response.text[:200]
            raise AuditError(f"GET {path} answered {response.status_code}: {detail}")
        return response

    def _json(self, path: str, **params: int | str) -> dict[str, Any]:
        try:
            body = self._get(path, **params).json()
        except ValueError:
            raise AuditError(f"GET {path} did not answer JSON.") from None
        if not isinstance(body, dict):
            raise AuditError(f"GET {path} did not answer a JSON object.")
        return body

    def key_pem(self) -> str:
        response = self._get("/log/key")
        if "json" in response.headers.get("content-type", ""):
            try:
                pem = response.json().get("public_key_pem")
            except (ValueError, AttributeError):
                pem = None
            if not isinstance(pem, str):
                raise AuditError("GET /log/key answered JSON without public_key_pem.")
            return pem
        return response.text

    def sth(self) -> SignedTreeHead:
        try:
            return SignedTreeHead.from_json(self._json("/log/sth"))
        except LogError as exc:
            raise AuditError(f"GET /log/sth answered a malformed tree head: {exc}") from None

    def consistency(self, first: int, second: int) -> list[bytes]:
        body = self._json("/log/proof/consistency", first=first, second=second)
        return self._hashes(body, "consistency")

    def inclusion(self, leaf_index: int, tree_size: int) -> list[bytes]:
        body = self._json("/log/proof/inclusion", leaf_index=leaf_index, tree_size=tree_size)
        return self._hashes(body, "audit_path")

    @staticmethod
    def _hashes(body: dict[str, Any], name: str) -> list[bytes]:
        try:
            return [b64decode(h) for h in body[name]]
        except (KeyError, TypeError, ValueError):
            raise AuditError(f"A proof's {name} is not a list of base64 hashes.") from None

    def entries(self, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        """Entries ``[start, end)`` as served, page by page, with the index each claims."""
        at = start
        while at < end:
            body = self._json("/log/entries", start=at, end=end)
            try:
                page_end = int(body["end"])
                rows = [(int(e["leaf_index"]), b64decode(e["entry"])) for e in body["entries"]]
            except (KeyError, TypeError, ValueError):
                raise AuditError("GET /log/entries answered a malformed page.") from None
            if page_end <= at:
                raise AuditError(f"GET /log/entries made no progress at {at}.")
            yield from rows
            at = page_end


def _reason(exc: BaseException) -> str:
    """Why a request failed, in the words of the operating system where it said something
    (requests wraps the socket's error in two layers of its own and urllib3's)."""
    if isinstance(exc, requests.Timeout):
        return f"no answer within {_TIMEOUT_SECONDS:.0f} s"
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    reason = type(exc).__name__
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            reason = current.strerror[:1].lower() + current.strerror[1:]
        todo += [
            e
            for e in (
                current.__cause__,
                current.__context__,
                getattr(current, "reason", None),
                *current.args,
            )
            if isinstance(e, BaseException)
        ]
    return reason


@contextmanager
def open_log(base_url: str) -> Iterator[LogClient]:
    scheme = urlsplit(base_url).scheme
    if scheme not in ("http", "https") or not urlsplit(base_url).netloc:
        raise AuditUsageError(
            f"{base_url!r} is not an http:// or https:// URL of a service.", parameter="url"
        )
    with requests.Session() as session:
        yield LogClient(base_url, session)
