"""The log key heads are checked with: given, pinned on the first fetch, or served."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from econtract.auditor._client import LogClient
from econtract.auditor._findings import AuditError, AuditUsageError, Finding
from econtract.auditor._store import AuditStore
from econtract.translog import log_key_pem


def load_log_key(pem: bytes) -> PublicKeyTypes:
    """The log's public key from PEM (SubjectPublicKeyInfo), as ``GET /log/key`` serves it.

    Raises :class:`AuditUsageError` (``log-key``) when ``pem`` is not a PEM public key.
    """
    try:
        return load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise AuditUsageError(
            "The log key given is not a PEM public key.", parameter="log-key"
        ) from None


def _served_key(log: LogClient) -> PublicKeyTypes:
    try:
        return load_pem_public_key(log.key_pem().encode())
    except (ValueError, TypeError):
        raise AuditError("GET /log/key did not answer a PEM public key.") from None


def _stored_key(store: AuditStore) -> PublicKeyTypes | None:
    pem = store.key_pem()
    if pem is None:
        return None
    try:
        return load_pem_public_key(pem.encode())
    except (ValueError, TypeError):
        raise AuditUsageError(
            f"{store.key_path} is not a PEM public key; the store is damaged.",
            parameter="store",
        ) from None


def trusted_key(
    log: LogClient,
    store: AuditStore,
    findings: list[Finding],
    *,
    pin: bool,
    given: PublicKeyTypes | None,
) -> PublicKeyTypes:
    """The key heads are checked with: the one given, else the one pinned, else the one served
    (pinned then, when ``pin``). A key that differs from it is a finding, never trusted."""
    served = _served_key(log)
    stored = _stored_key(store)
    if given is not None:
        expected = log_key_pem(given)
        if log_key_pem(served) != expected:
            findings.append(
                Finding(
                    "key-mismatch",
                    "The log serves a different public key from the one given (--log-key); "
                    "heads are checked with the given key.",
                )
            )
        if stored is None:
            if pin:
                store.save_key(expected)
        elif log_key_pem(stored) != expected:
            findings.append(
                Finding(
                    "key-mismatch",
                    f"The key pinned in {store.key_path} differs from the one given "
                    "(--log-key); heads are checked with the given key.",
                )
            )
        return given
    if stored is None:
        if pin:
            store.save_key(log_key_pem(served))
        return served
    if log_key_pem(stored) != log_key_pem(served):
        findings.append(
            Finding(
                "key-changed",
                "The log now serves a different public key from the one pinned in "
                f"{store.key_path}; heads are checked with the pinned key.",
            )
        )
    return stored
