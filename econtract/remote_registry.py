"""The registry's view of a file, asked of a running service over its public status endpoint.

An auditor with the service's root certificate and its URL, and nothing else, can then learn
that a licence was revoked after it was sealed: :class:`HTTPRegistryView` plugs into the
verification policy where the service itself plugs its database (``verify/`` stays offline and
never knows it is HTTP). It asks ``GET /v1/status`` as verification would look the file up:
first by the whole file's SHA-256, then by each seal's signed-bytes digest, and, for a file
it does not know, whether its seal is one of the service's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests

from econtract.errors import EContractError
from verify.registry import RegistryMatch

#: What the CLI waits for one answer of the registry.
TIMEOUT_SECONDS = 20.0


class RegistryUnreachableError(EContractError):
    """The registry could not be asked, or gave an answer that is not a status; the status of
    the file is then unknown, never assumed."""

    code = "registry-unreachable"
    title = "The registry could not be asked for the file's status."


@dataclass
class HTTPRegistryView:
    """A :class:`verify.registry.RegistryView` over a service's ``GET /v1/status``."""

    base_url: str
    """The service's public base URL (``https://econtract.example``)."""
    session: requests.Session = field(default_factory=requests.Session, repr=False)
    """The HTTP session (one connection for every file of a run)."""
    answers: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    """The answers received, by the record id of the match made of each (what a report
    cannot carry, such as the kind of reason for a revocation, is read from here)."""
    _seals: dict[str, bool] = field(default_factory=dict, repr=False)

    def lookup(self, pdf_sha256: str, signed_digests: list[str]) -> RegistryMatch | None:
        """The record the file is, by its SHA-256 first, then by a seal's signed digest;
        ``None`` when the service did not issue it."""
        queries = [("sha256", pdf_sha256), *(("signed_digest", d) for d in signed_digests)]
        for name, digest in queries:
            answer = self._ask(name, digest)
            if answer is not None:
                match = _match(answer, digest, self.base_url)
                self.answers[match.record_id] = answer
                return match
        return None

    def knows_seal(self, certificate_sha256: str) -> bool:
        """Whether the service says the seal certificate is one of its own (a file sealed by
        it that :meth:`lookup` did not find was sealed there but never registered)."""
        known = self._seals.get(certificate_sha256)
        if known is None:
            known = self._ask("seal_sha256", certificate_sha256) is not None
            self._seals[certificate_sha256] = known
        return known

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()

    def _ask(self, name: str, digest: str) -> dict[str, Any] | None:
        url = self.base_url.rstrip("/") + "/v1/status"
        try:
            response = self.session.get(url, params={name: digest}, timeout=TIMEOUT_SECONDS)
        except requests.RequestException as exc:
            raise RegistryUnreachableError(
                f"Cannot reach the registry at {self.base_url}: {_first_line(exc)}"
            ) from None
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise RegistryUnreachableError(
                f"The registry at {self.base_url} answered HTTP {response.status_code} "
                f"to {name}={digest}."
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise RegistryUnreachableError(
                f"The registry at {self.base_url} did not answer with a status (not JSON)."
            )
        return body


def _match(answer: dict[str, Any], digest: str, base_url: str) -> RegistryMatch:
    try:
        return RegistryMatch(
            # The public answer names no internal id: the number (or the digest asked about)
            # stands for the record.
            record_id=str(answer.get("number") or f"sha256:{digest}"),
            kind=answer["kind"],
            status=answer["status"],
            seal_fingerprint=answer["seal_sha256"],
            matched_by=answer["matched_by"],
            number=answer.get("number"),
            status_changed_at=answer.get("status_changed_at"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RegistryUnreachableError(
            f"The registry at {base_url} gave a status that cannot be read: {_first_line(exc)}"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
