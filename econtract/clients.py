"""API clients: the machine credentials of a department's approval system, or of an
enterprise's system that seals with the enterprise's own seals."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from econtract import audit
from econtract.bodies import BodyKind
from econtract.config import Settings
from econtract.departments import get_department
from econtract.errors import ConflictError, InvalidInputError, NotFoundError
from econtract.models import ApiClient
from econtract.text import clean_text

#: The scopes a client may hold: ``use`` for a using department (用证部门) that pulls and
#: checks licences it is granted, ``holder`` for the holder app that acts for the citizens
#: and enterprises it has authenticated, ``sign`` for an enterprise's own system (its seals
#: only).
SCOPES = ("issue", "seal", "revoke", "read", "audit", "use", "holder", "sign")

#: The only scopes an enterprise's client may hold; a department's client may hold all the
#: others.
ENTERPRISE_SCOPES = ("sign",)

# scrypt parameters: about 15 ms per check, 16 MiB of memory; a stolen table resists guessing.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}

#: The scheme of hashes made with the pepper: scrypt over HMAC-SHA256(secret key, secret).
PEPPERED_SCHEME = "scrypt-hmac"
#: The scheme of hashes made before the pepper: scrypt over the secret alone. They still
#: verify, and the token endpoint rewrites them as :data:`PEPPERED_SCHEME` on their next use.
LEGACY_SCHEME = "scrypt"


def pepper_of(settings: Settings) -> bytes:
    """The pepper of client-secret hashes: ``ECONTRACT_SECRET_KEY``, kept out of the registry,
    so that a copy of the registry alone gives nothing to guess against."""
    return settings.secret_key.get_secret_value().encode("utf-8")


def hash_secret(secret: str, *, pepper: bytes | None) -> str:
    """A salted, self-describing scrypt hash of a client secret, peppered when ``pepper`` is
    given (``scrypt-hmac$salt$digest``); without it, the legacy ``scrypt$salt$digest``."""
    salt = secrets.token_bytes(16)
    scheme = LEGACY_SCHEME if pepper is None else PEPPERED_SCHEME
    digest = _digest(scheme, secret, salt, pepper)
    return f"{scheme}${salt.hex()}${digest.hex()}"


def check_secret(secret: str, stored: str, *, pepper: bytes | None = None) -> bool:
    """Whether ``secret`` matches ``stored`` (constant time); a peppered hash needs ``pepper``."""
    try:
        scheme, salt_hex, digest_hex = stored.split("$")
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    if scheme not in (LEGACY_SCHEME, PEPPERED_SCHEME):
        return False
    if scheme == PEPPERED_SCHEME and pepper is None:
        return False
    digest = _digest(scheme, secret, salt, pepper)
    return hmac.compare_digest(digest.hex(), digest_hex)


def needs_rehash(stored: str) -> bool:
    """Whether a stored hash predates the pepper and should be made again on the next use."""
    return not stored.startswith(PEPPERED_SCHEME + "$")


def _digest(scheme: str, secret: str, salt: bytes, pepper: bytes | None) -> bytes:
    material = secret.encode()
    if scheme == PEPPERED_SCHEME:
        assert pepper is not None
        # HMAC first: the scrypt input is a keyed digest, worthless without the secret key.
        material = hmac.new(pepper, material, hashlib.sha256).digest()
    return hashlib.scrypt(material, salt=salt, dklen=32, **_SCRYPT)


def parse_scopes(scopes: str | list[str]) -> list[str]:
    """The scopes of a comma- or space-separated list; refuses unknown ones."""
    items = scopes if isinstance(scopes, list) else scopes.replace(",", " ").split()
    unknown = [s for s in items if s not in SCOPES]
    if unknown or not items:
        raise InvalidInputError(
            f"Scopes are some of {', '.join(SCOPES)}; got {', '.join(unknown) or 'none'}.",
            errors=[("/scopes", "unknown or empty")],
        )
    return sorted(set(items), key=SCOPES.index)


def create_client(
    session: Session,
    *,
    department_code: str,
    name: str,
    scopes: str | list[str],
    actor: audit.Actor,
    pepper: bytes | None = None,
    owner_kind: BodyKind | None = None,
) -> tuple[ApiClient, str]:
    """Register a client; return it and its secret, which is shown this once and never stored.

    The secret is hashed with ``pepper`` (:func:`pepper_of` the settings); without it, the
    hash is of the legacy scheme, which the client's first token request upgrades.
    ``owner_kind`` says what the owner must be (a department or an enterprise); either when
    not given.
    """
    owners = (BodyKind.DEPARTMENT, BodyKind.ENTERPRISE) if owner_kind is None else (owner_kind,)
    department = get_department(session, department_code, kinds=owners)
    granted = parse_scopes(scopes)
    _check_scopes_of(department.kind, granted)
    client = ApiClient(
        id=f"cli_{secrets.token_hex(8)}",
        department_id=department.id,
        name=clean_text(name, field="name", max_length=200),
        scopes=" ".join(granted),
        secret_hash="",
    )
    secret = secrets.token_urlsafe(32)
    client.secret_hash = hash_secret(secret, pepper=pepper)
    session.add(client)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="client.create",
        department_id=department.id,
        target_type="client",
        target_id=client.id,
        detail={"scopes": client.scopes},
    )
    return client, secret


def _check_scopes_of(kind: str, scopes: list[str]) -> None:
    """An enterprise's client signs with its own seals and nothing more; ``sign`` is an
    enterprise's scope only (a department seals with ``seal``)."""
    if kind == BodyKind.ENTERPRISE.value:
        wrong = [s for s in scopes if s not in ENTERPRISE_SCOPES]
        if wrong:
            raise InvalidInputError(
                f"An enterprise's client may hold only {', '.join(ENTERPRISE_SCOPES)}; "
                f"not {', '.join(wrong)}.",
                errors=[("/scopes", "not an enterprise scope")],
            )
    elif "sign" in scopes:
        raise InvalidInputError(
            "The scope sign is an enterprise's; a department's client seals with seal.",
            errors=[("/scopes", "sign is for enterprises")],
        )


def list_clients(session: Session, *, department_code: str | None = None) -> list[ApiClient]:
    """Clients, optionally of one department."""
    query = select(ApiClient).order_by(ApiClient.created_at, ApiClient.id)
    if department_code is not None:
        owner = get_department(
            session, department_code, kinds=(BodyKind.DEPARTMENT, BodyKind.ENTERPRISE)
        )
        query = query.where(ApiClient.department_id == owner.id)
    return list(session.scalars(query))


def disable_client(session: Session, *, client_id: str, actor: audit.Actor) -> ApiClient:
    """Disable a client: its secret and tokens stop working."""
    client = session.get(ApiClient, client_id)
    if client is None:
        raise NotFoundError(f"No client {client_id!r}.")
    if client.disabled_at is not None:
        raise ConflictError(f"Client {client_id} is already disabled.")
    client.disabled_at = datetime.now(UTC)
    audit.record(
        session,
        actor=actor,
        action="client.disable",
        department_id=client.department_id,
        target_type="client",
        target_id=client.id,
    )
    return client


def enable_client(session: Session, *, client_id: str, actor: audit.Actor) -> ApiClient:
    """Enable a disabled client again: its secret works from now on; the access tokens it
    held before it was disabled stay refused."""
    client = session.get(ApiClient, client_id)
    if client is None:
        raise NotFoundError(f"No client {client_id!r}.")
    if client.disabled_at is None:
        raise ConflictError(f"Client {client_id} is not disabled.")
    client.tokens_before = client.disabled_at
    client.disabled_at = None
    audit.record(
        session,
        actor=actor,
        action="client.enable",
        department_id=client.department_id,
        target_type="client",
        target_id=client.id,
    )
    return client
