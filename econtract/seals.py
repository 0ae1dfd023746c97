"""Seals: the signing identities of a department or an enterprise, their keys and
certificates."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select
from sqlalchemy.orm import Session

from econtract import audit
from econtract.bodies import BodyKind
from econtract.clock import SYSTEM_CLOCK, Clock
from econtract.departments import get_department
from econtract.errors import ConflictError, InvalidInputError, NotFoundError
from econtract.events import Change, record_change
from econtract.models import Department, Seal, SealKind, SealStatus
from econtract.pki import ISSUING, PKI, SM2_ISSUING
from econtract.ses.seal_data import record_seal_data
from econtract.translog import LogEntry
from keys.ca import SealSubject, issue_seal_certificate
from keys.handles import KeyAlgorithm
from keys.store import KeyStore
from keys.suites import SUITES

#: Seal algorithms a department may choose: those with an algorithm suite, so that a new
#: family is added in one place, ``keys.suites.SUITES``.
SEAL_ALGORITHMS = tuple(KeyAlgorithm(suite.key_algorithm) for suite in SUITES)

#: Reasons a seal may be revoked with (RFC 5280 CRLReason names).
REVOCATION_REASONS = frozenset(
    r.value for r in x509.ReasonFlags if r not in (x509.ReasonFlags.remove_from_crl,)
)


@dataclass(frozen=True, kw_only=True)
class SealRequest:
    """What a new seal is made of."""

    department_code: str
    """The owner's unified social credit code: a department's or an enterprise's."""
    kind: SealKind
    """Official, licence or contract seal."""
    algorithm: KeyAlgorithm = KeyAlgorithm.RSA_2048
    """The key algorithm."""
    validity_days: int = 3 * 365
    """How long the seal's certificate is valid (capped by the issuing CA)."""
    owner_kind: BodyKind | None = None
    """What the owner must be (as the operator said: ``--department`` or ``--enterprise``);
    either when not given."""

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


#: The seal kinds an enterprise may hold: its official seal and its contract seal.
ENTERPRISE_SEAL_KINDS = (SealKind.OFFICIAL, SealKind.CONTRACT)

#: Who may own a seal: departments and enterprises.
_OWNERS = (BodyKind.DEPARTMENT, BodyKind.ENTERPRISE)


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
    clock: Clock = SYSTEM_CLOCK,
) -> Seal:
    """Make a key in the key store, certify it under the issuing CA and register the seal.

    The key is created before the row; if the transaction then fails, an unused key remains
    in the store under a label nothing refers to, which is harmless.
    """
    owners = _OWNERS if request.owner_kind is None else (request.owner_kind,)
    department = get_department(session, request.department_code, kinds=owners)
    enterprise = department.kind == BodyKind.ENTERPRISE.value
    if enterprise and request.kind not in ENTERPRISE_SEAL_KINDS:
        allowed = ", ".join(k.value for k in ENTERPRISE_SEAL_KINDS)
        raise InvalidInputError(
            f"An enterprise's seal is one of {allowed}, not {request.kind.value}.",
            errors=[("/kind", "not an enterprise seal kind")],
        )
    seal_id = new_seal_id()
    now = clock.now()
    subject = SealSubject(
        department_name=department.name,
        department_code=department.code,
        seal_kind=request.kind.value,
        seal_name=request.kind.chinese_name,
        region=department.region,
        enterprise=enterprise,
    )
    not_before = now - timedelta(minutes=5)
    if request.algorithm is KeyAlgorithm.SM2:
        # An SM2 key and its certificate from the SM2 issuing CA (SM2-with-SM3).
        issuer = SM2_ISSUING
        cert = pki.issue_sm2_seal(
            key_store,
            seal_id,
            subject=subject,
            not_before=not_before,
            not_after=now + timedelta(days=request.validity_days),
        )
    else:
        issuer = ISSUING
        handle = key_store.generate(seal_id, request.algorithm)
        not_after = min(
            now + timedelta(days=request.validity_days), pki.issuing.certificate.not_valid_after_utc
        )
        cert = issue_seal_certificate(
            pki.issuing,
            handle.public_key(),
            subject=subject,
            ca_name=ISSUING,
            urls=pki.urls,
            not_before=not_before,
            not_after=not_after,
        )
    seal = Seal(
        id=seal_id,
        department_id=department.id,
        kind=request.kind.value,
        algorithm=request.algorithm.value,
        key_label=seal_id,
        certificate_der=cert.public_bytes(Encoding.DER),
        issuer=issuer,
        serial_number=str(cert.serial_number),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        status=SealStatus.ACTIVE.value,
        replaces_id=replaces.id if replaces else None,
        created_at=now,
    )
    session.add(seal)
    if request.algorithm is KeyAlgorithm.SM2:
        # Its GB/T 38540 seal data, signed by the service as the seal's maker.
        record_seal_data(session, seal=seal, department=department, pki=pki)
    detail = {
        "kind": seal.kind,
        "algorithm": seal.algorithm,
        "serial": seal.serial_number,
        "replaces": seal.replaces_id,
    }
    record_change(
        session,
        change=Change(
            type="seal.created",
            action="seal.create",
            target_type="seal",
            target_id=seal.id,
            department_id=department.id,
            detail=detail,
            payload=_seal_payload(seal) | {"replaces": seal.replaces_id},
            log_entry=lambda code: LogEntry.seal_created(seal, department_code=code),
            at=now,
        ),
        actor=actor,
        clock=clock,
    )
    return seal


def _seal_payload(seal: Seal) -> dict[str, Any]:
    """The outbox payload of a seal's change: the seal, never its key."""
    return {
        "seal_id": seal.id,
        "kind": seal.kind,
        "serial": seal.serial_number,
        "status": seal.status,
    }


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
        owner = get_department(session, department_code, kinds=_OWNERS)
        query = query.where(Seal.department_id == owner.id)
    return list(session.scalars(query))


def revoke_seal(
    session: Session,
    *,
    seal_id: str,
    reason: str,
    actor: audit.Actor,
    clock: Clock = SYSTEM_CLOCK,
) -> Seal:
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
    # Whole seconds: the CRL and OCSP state revocation times to the second.
    revoked_at = clock.now().replace(microsecond=0)
    seal.status = SealStatus.REVOKED.value
    seal.revoked_at = revoked_at
    seal.revocation_reason = reason
    record_change(
        session,
        change=Change(
            type="seal.revoked",
            action="seal.revoke",
            target_type="seal",
            target_id=seal.id,
            department_id=seal.department_id,
            detail={"reason": reason},
            # An RFC 5280 reason name, never free text: it may be told to anyone.
            payload=_seal_payload(seal) | {"reason": reason},
            log_entry=lambda code: LogEntry.seal_revoked(
                seal, department_code=code, time=revoked_at
            ),
            at=revoked_at,
        ),
        actor=actor,
        clock=clock,
    )
    return seal


def rotate_seal(
    session: Session,
    *,
    seal_id: str,
    key_store: KeyStore,
    pki: PKI,
    actor: audit.Actor,
    clock: Clock = SYSTEM_CLOCK,
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
        clock=clock,
    )
    old.status = SealStatus.RETIRED.value
    record_change(
        session,
        change=Change(
            type="seal.retired",
            action="seal.retire",
            target_type="seal",
            target_id=old.id,
            department_id=old.department_id,
            detail={"replaced_by": new.id},
            payload=_seal_payload(old) | {"replaced_by": new.id},
            # The log keeps a seal's creation and revocation; a retired seal's certificate
            # stays valid for what it sealed, so there is nothing new to prove.
            log_entry=None,
        ),
        actor=actor,
        clock=clock,
    )
    return new
