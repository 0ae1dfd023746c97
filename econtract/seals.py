"""Seals: a department's signing identities, their keys and certificates."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select
from sqlalchemy.orm import Session

from econtract import audit
from econtract.departments import get_department
from econtract.errors import ConflictError, InvalidInputError, NotFoundError
from econtract.models import Department, Seal, SealKind, SealStatus
from econtract.pki import ISSUING, PKI
from econtract.translog import LogEntry, append_entry
from keys.ca import SealSubject, issue_seal_certificate
from keys.handles import KeyAlgorithm
from keys.store import KeyStore

#: Seal algorithms a department may choose.
SEAL_ALGORITHMS = (KeyAlgorithm.RSA_2048, KeyAlgorithm.RSA_3072, KeyAlgorithm.EC_P256)

#: Reasons a seal may be revoked with (RFC 5280 CRLReason names).
REVOCATION_REASONS = frozenset(
    r.value for r in x509.ReasonFlags if r not in (x509.ReasonFlags.remove_from_crl,)
)


@dataclass(frozen=True, kw_only=True)
class SealRequest:
    """What a new seal is made of."""

    department_code: str
    """The owning department's unified social credit code."""
    kind: SealKind
    """Official, licence or contract seal."""
    algorithm: KeyAlgorithm = KeyAlgorithm.RSA_2048
    """The key algorithm."""
    validity_days: int = 3 * 365
    """How long the seal's certificate is valid (capped by the issuing CA)."""

    def __post_init__(self) -> None:
        if self.algorithm not in SEAL_ALGORITHMS:
            allowed = ", ".join(a.value for a in SEAL_ALGORITHMS)
            raise InvalidInputError(
                f"A seal's algorithm is one of {allowed}, not {self.algorithm.value}.",
                errors=[("/algorithm", "unsupported")],
            )
        if not 1 <= self.validity_days <= 10 * 365:
            raise InvalidInputError(
                "A seal's validity is between 1 day and 10 years.",
                errors=[("/validity_days", "out of range")],
            )


def seal_code(seal: Seal, department: Department) -> str:
    """The 13-digit code engraved along the seal's lower edge: region, then a serial part.

    Derived from the certificate's serial number, so it is the same wherever it is shown.
    """
    return f"{department.region or department.code[2:8]}{int(seal.serial_number) % 10**7:07d}"


def new_seal_id() -> str:
    """A seal identifier, usable as a key label too."""
    return f"seal-{secrets.token_hex(10)}"


def create_seal(
    session: Session,
    *,
    request: SealRequest,
    key_store: KeyStore,
    pki: PKI,
    actor: audit.Actor,
    replaces: Seal | None = None,
) -> Seal:
    """Make a key in the key store, certify it under the issuing CA and register the seal.

    The key is created before the row; if the transaction then fails, an unused key remains
    in the store under a label nothing refers to, which is harmless.
    """
    department = get_department(session, request.department_code)
    seal_id = new_seal_id()
    handle = key_store.generate(seal_id, request.algorithm)
    now = datetime.now(UTC)
    not_after = min(
        now + timedelta(days=request.validity_days), pki.issuing.certificate.not_valid_after_utc
    )
    cert = issue_seal_certificate(
        pki.issuing,
        handle.public_key(),
        subject=SealSubject(
            department_name=department.name,
            department_code=department.code,
            seal_kind=request.kind.value,
            seal_name=request.kind.chinese_name,
            region=department.region,
        ),
        ca_name=ISSUING,
        urls=pki.urls,
        not_before=now - timedelta(minutes=5),
        not_after=not_after,
    )
    seal = Seal(
        id=seal_id,
        department_id=department.id,
        kind=request.kind.value,
        algorithm=request.algorithm.value,
        key_label=seal_id,
        certificate_der=cert.public_bytes(Encoding.DER),
        issuer=ISSUING,
        serial_number=str(cert.serial_number),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        status=SealStatus.ACTIVE.value,
        replaces_id=replaces.id if replaces else None,
    )
    session.add(seal)
    session.flush()
    append_entry(session, LogEntry.seal_created(seal, department_code=department.code))
    audit.record(
        session,
        actor=actor,
        action="seal.create",
        department_id=department.id,
        target_type="seal",
        target_id=seal.id,
        detail={
            "kind": seal.kind,
            "algorithm": seal.algorithm,
            "serial": seal.serial_number,
            "replaces": seal.replaces_id,
        },
    )
    return seal


def get_seal(session: Session, seal_id: str, *, department: Department | None = None) -> Seal:
    """The seal ``seal_id``; with ``department``, only if that department owns it."""
    seal = session.get(Seal, seal_id)
    if seal is None or (department is not None and seal.department_id != department.id):
        raise NotFoundError(
            f"No seal {seal_id!r}" + (" for this department." if department else ".")
        )
    return seal


def list_seals(session: Session, *, department_code: str | None = None) -> list[Seal]:
    """Seals, optionally of one department, newest first."""
    query = select(Seal).order_by(Seal.created_at.desc(), Seal.id)
    if department_code is not None:
        query = query.where(Seal.department_id == get_department(session, department_code).id)
    return list(session.scalars(query))


def revoke_seal(session: Session, *, seal_id: str, reason: str, actor: audit.Actor) -> Seal:
    """Revoke a seal: its certificate shows revoked in OCSP and the CRL from now on."""
    if reason not in REVOCATION_REASONS:
        allowed = ", ".join(sorted(REVOCATION_REASONS))
        raise InvalidInputError(
            f"A revocation reason is one of {allowed}; {reason!r} is not.",
            errors=[("/reason", "unknown reason")],
        )
    seal = get_seal(session, seal_id)
    if seal.status == SealStatus.REVOKED:
        raise ConflictError(f"Seal {seal_id} is already revoked.")
    seal.status = SealStatus.REVOKED.value
    seal.revoked_at = datetime.now(UTC).replace(microsecond=0)
    seal.revocation_reason = reason
    session.flush()
    owner = session.get(Department, seal.department_id)
    assert owner is not None
    append_entry(
        session, LogEntry.seal_revoked(seal, department_code=owner.code, time=seal.revoked_at)
    )
    audit.record(
        session,
        actor=actor,
        action="seal.revoke",
        department_id=seal.department_id,
        target_type="seal",
        target_id=seal.id,
        detail={"reason": reason},
    )
    return seal


def rotate_seal(
    session: Session, *, seal_id: str, key_store: KeyStore, pki: PKI, actor: audit.Actor
) -> Seal:
    """Replace a seal with a new key and certificate of the same kind; the old one retires.

    A retired seal signs no more, but its certificate is not revoked: what it sealed before
    stays valid.
    """
    old = get_seal(session, seal_id)
    if old.status != SealStatus.ACTIVE:
        raise ConflictError(f"Seal {seal_id} is {old.status}; only an active seal is rotated.")
    department = session.get(Department, old.department_id)
    assert department is not None
    new = create_seal(
        session,
        request=SealRequest(
            department_code=department.code,
            kind=SealKind(old.kind),
            algorithm=KeyAlgorithm(old.algorithm),
        ),
        key_store=key_store,
        pki=pki,
        actor=actor,
        replaces=old,
    )
    old.status = SealStatus.RETIRED.value
    audit.record(
        session,
        actor=actor,
        action="seal.retire",
        department_id=old.department_id,
        target_type="seal",
        target_id=old.id,
        detail={"replaced_by": new.id},
    )
    return new
