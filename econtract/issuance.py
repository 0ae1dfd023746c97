"""Issuing an e-licence: validate, number, render, seal, register, then store, in one transaction.

Everything happens inside the registry transaction that hands out the number: the number is
allocated first (a row lock on the department's counter), which also makes issuances of one
department and type take turns; under that lock a holder who already holds a valid licence of
the type is refused (supersede it instead), so two parallel requests cannot both pass. The
PDF is rendered with the number and sealed into a staged file, and the certificate is written
and recorded (:func:`econtract.events.record_change`: its first status event, the audit event,
the log entry and the outbox row). If anything fails the transaction rolls back, so no
certificate shows as issued and the number was never handed out; a number that was handed out
is never reused. The time comes from ``services.clock``.

The sealed file becomes visible in the blob store only after the transaction committed
(:mod:`econtract.blobs`): a crash in between can leave a staged file, never a stored licence
the registry does not know. The start-up sweep finishes a staged file the registry recorded
and removes any other.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, lazyload

from econtract import audit, db, metrics
from econtract.clock import CHINA, SYSTEM_CLOCK, Clock
from econtract.departments import get_department
from econtract.errors import (
    ConflictError,
    InvalidInputError,
    LicenceExistsError,
    NotFoundError,
)
from econtract.events import Change, StatusChange, record_change
from econtract.models import (
    Certificate,
    CertificateStatus,
    CertificateType,
    Department,
    IdempotencyRecord,
    NumberCounter,
    Seal,
    SealKind,
    SealStatus,
    new_public_id,
)
from econtract.qrtoken import QRClaims, fields_digest, make_qr_token
from econtract.reasons import reason_kind
from econtract.render import LicenceContent, render_licence
from econtract.sealing import seal_identity, sealing_context, usable_seal
from econtract.services import Services
from econtract.templates import TEMPLATES, LicenceTemplate, get_template, validate_fields
from econtract.translog import LogEntry
from signing.options import Certification, SealLevel, SealOptions
from signing.sealer import seal_pdf


def today() -> date:
    """Today's date in China Standard Time, by the system clock (a use case asks its
    ``services.clock`` instead)."""
    return SYSTEM_CLOCK.today()


def certificate_payload(
    certificate: Certificate, *, previous: str | None, reason: str | None
) -> dict[str, Any]:
    """The outbox payload of a certificate's change: what changed, never who holds it; a
    free-text reason only by its kind (:mod:`econtract.reasons`)."""
    return {
        "certificate_id": certificate.id,
        "number": certificate.number,
        "type": certificate.type_code,
        "from": previous,
        "to": certificate.status,
        "reason_kind": reason_kind(reason).code if reason else None,
    }


@dataclass(frozen=True, kw_only=True)
class IssueRequest:
    """What an approval system asks for."""

    type_code: str
    """The certificate type (template code)."""
    fields: dict[str, Any]
    """The licence's fields, per the type's JSON Schema."""
    valid_from: date | None = None
    """First day of validity; today when unset."""
    valid_until: date | None = None
    """Last day of validity; from the type's default term when unset."""
    supersedes: str | None = field(default=None, repr=False)
    """Set by :func:`supersede`: the certificate this one replaces."""


@dataclass(frozen=True)
class IdempotencyKey:
    """A client's ``Idempotency-Key`` and the hash of the request that came with it."""

    client_id: str
    key: str
    request_hash: str


@dataclass(frozen=True)
class Issued:
    """An issued certificate; ``replayed`` when an earlier request with the same key made it."""

    certificate: Certificate
    replayed: bool = False


def request_hash(body: Any) -> str:
    """SHA-256 of a request body's canonical JSON (what an Idempotency-Key is bound to)."""
    canonical = json.dumps(
        body, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def format_number(template: LicenceTemplate, department: Department, year: int, value: int) -> str:
    """A licence number: type prefix, the department's region, the year, a 6-digit sequence.

    For example ``YZ3301002026000042``; unique per department and type, never reused.
    """
    region = department.region or department.code[2:8]
    return f"{template.number_prefix}{region}{year}{value:06d}"


def allocate_number(
    session: Session, department: Department, template: LicenceTemplate, year: int
) -> str:
    """The next number of the department's counter for this type and year (row-locked)."""
    bump = (
        update(NumberCounter)
        .where(
            NumberCounter.department_id == department.id,
            NumberCounter.type_code == template.code,
            NumberCounter.year == year,
        )
        .values(last_value=NumberCounter.last_value + 1)
        .returning(NumberCounter.last_value)
    )
    value = session.execute(bump).scalar_one_or_none()
    if value is None:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        session.execute(
            insert(NumberCounter)
            .values(department_id=department.id, type_code=template.code, year=year, last_value=0)
            .on_conflict_do_nothing()
        )
        value = session.execute(bump).scalar_one()
    if value >= 1_000_000:
        raise ConflictError(
            f"The {template.name} numbers of {year} are used up for this department."
        )
    return format_number(template, department, year, value)


def ensure_certificate_types(session: Session) -> None:
    """Register every template as a certificate type (new types and new versions)."""
    stored = {t.code: t for t in session.scalars(select(CertificateType))}
    for template in TEMPLATES.values():
        row = stored.get(template.code)
        if row is None:
            session.add(
                CertificateType(
                    code=template.code,
                    name=template.name,
                    schema=template.schema,
                    version=template.version,
                )
            )
        elif row.version != template.version:
            row.name, row.schema, row.version = template.name, template.schema, template.version


def licence_seal(session: Session, department: Department) -> Seal:
    """The seal a department's licences carry: its active licence seal, else its official one."""
    seals = {
        s.kind: s
        for s in session.scalars(
            select(Seal)
            .where(Seal.department_id == department.id, Seal.status == SealStatus.ACTIVE)
            .order_by(Seal.created_at)
        )
    }
    seal = seals.get(SealKind.LICENCE.value) or seals.get(SealKind.OFFICIAL.value)
    if seal is None:
        raise ConflictError("The department has no active licence or official seal to issue with.")
    return seal


def _validity(
    template: LicenceTemplate, request: IssueRequest, fields: dict[str, Any], *, today: date
) -> tuple[date, date | None]:
    return template.validity(
        fields,
        valid_from=request.valid_from,
        valid_until=request.valid_until,
        today=today,
        at="/fields",
    )


def _replay(session: Session, idem: IdempotencyKey) -> Issued | None:
    record = session.get(IdempotencyRecord, (idem.client_id, idem.key))
    if record is None:
        return None
    if record.request_hash != idem.request_hash:
        raise InvalidInputError(
            "This Idempotency-Key was used with another request body; use a new key.",
            errors=[("/", "Idempotency-Key reused with a different body")],
        )
    if record.certificate_id is None:
        raise ConflictError("A request with this Idempotency-Key is still being processed.")
    certificate = session.get(Certificate, record.certificate_id)
    assert certificate is not None
    return Issued(certificate, replayed=True)


def _refuse_second_licence(
    session: Session,
    *,
    department: Department,
    template: LicenceTemplate,
    holder_code: str | None,
    superseding: str | None,
    today: date,
) -> None:
    """Refuse a licence for a holder who holds a valid one of this type from this department.

    Valid means what a person would call valid: not revoked nor superseded, and not past its
    last day (a suspended licence is still held). The one being superseded does not count.
    Runs under the number counter's lock, so it sees every licence committed before.
    """
    if holder_code is None:
        return
    held = (
        select(Certificate.id, Certificate.number)
        .where(
            Certificate.department_id == department.id,
            Certificate.type_code == template.code,
            Certificate.holder_code == holder_code,
            Certificate.status.in_(
                (CertificateStatus.VALID.value, CertificateStatus.SUSPENDED.value)
            ),
            (Certificate.valid_until.is_(None)) | (Certificate.valid_until >= today),
        )
        .order_by(Certificate.issued_at)
    )
    if superseding is not None:
        held = held.where(Certificate.id != superseding)
    existing = session.execute(held.limit(1)).first()
    if existing is not None:
        raise LicenceExistsError(
            f"{holder_code} already holds a valid {template.name} of this department, "
            f"number {existing.number} ({existing.id}); supersede it to renew or amend it.",
            certificate_id=existing.id,
            number=existing.number,
        )


def _mark_superseded(
    session: Session, old_id: str, new: Certificate, actor: audit.Actor, clock: Clock
) -> None:
    # Not its successor: the new row is already flushed, and a refused second supersede would
    # otherwise load two successors into a one-to-one relationship.
    old = session.get(
        Certificate, old_id, with_for_update=True, options=[lazyload(Certificate.superseded_by)]
    )
    if old is None or old.department_id != new.department_id:
        raise NotFoundError(f"No certificate {old_id!r}.")
    if old.status not in (CertificateStatus.VALID, CertificateStatus.SUSPENDED):
        raise ConflictError(f"Certificate {old.number} is {old.status}; it cannot be superseded.")
    previous = old.status
    reason = f"superseded by {new.number}"
    now = clock.now()
    old.status = CertificateStatus.SUPERSEDED.value
    record_change(
        session,
        change=Change(
            type="certificate.superseded",
            action="certificate.supersede",
            target_type="certificate",
            target_id=old.id,
            department_id=old.department_id,
            detail={"from": previous, "by": new.id, "by_number": new.number},
            payload=certificate_payload(old, previous=previous, reason=None)
            | {"superseded_by": new.id, "superseded_by_number": new.number},
            status=StatusChange(
                certificate_id=old.id,
                from_status=previous,
                to_status=CertificateStatus.SUPERSEDED.value,
                reason=reason,
            ),
            log_entry=lambda code: LogEntry.certificate_status_changed(
                old, department_code=code, previous_status=previous, reason=reason, time=now
            ),
            at=now,
        ),
        actor=actor,
        clock=clock,
    )


def issue_certificate(
    services: Services,
    *,
    department_code: str,
    request: IssueRequest,
    actor: audit.Actor,
    idempotency: IdempotencyKey | None = None,
) -> Issued:
    """Issue a licence (see the module's docstring for what happens, and in which order)."""
    try:
        template = get_template(request.type_code)
    except NotFoundError as exc:
        raise InvalidInputError(
            exc.message, errors=[("/type", "unknown certificate type")]
        ) from None
    # Bad input is named by JSON pointers into the request: /type, /fields/…, /valid_until.
    today = services.clock.today()
    fields = validate_fields(template, request.fields, at="/fields", today=today)
    valid_from, valid_until = _validity(template, request, fields, today=today)
    if idempotency is not None:
        with services.sessions() as session:
            replayed = _replay(session, idempotency)
        if replayed is not None:
            return replayed
    # The seal and its validation material (CRLs, an OCSP response) are made ready before the
    # transaction: producing them writes to the registry too (CRL numbers), and the issuing
    # transaction holds the write lock from its first statement.
    with services.sessions() as session:
        department = get_department(session, department_code)
        seal = licence_seal(session, department)
        session.expunge_all()
    identity = seal_identity(services, seal, department)
    context = sealing_context(services, identity.certificate, long_term=True)
    holder_code = (
        str(fields[template.holder_code_field])
        if template.holder_code_field and template.holder_code_field in fields
        else None
    )
    staged = services.blobs.staging()
    # Set once the transaction's work is done: a failure after it is the commit's, whose
    # outcome is unknown, and the staged file is then left for the start-up sweep to decide.
    committing = False
    try:
        with db.transaction(services.sessions) as session:
            if idempotency is not None:
                replayed = _replay(session, idempotency)
                if replayed is not None:
                    return replayed
                session.add(
                    IdempotencyRecord(
                        client_id=idempotency.client_id,
                        key=idempotency.key,
                        request_hash=idempotency.request_hash,
                    )
                )
                try:
                    session.flush()
                except IntegrityError:
                    raise ConflictError(
                        "A request with this Idempotency-Key is being processed concurrently."
                    ) from None
            current = session.get(Seal, seal.id)
            assert current is not None
            usable_seal(current, department_id=department.id)
            # Read in the transaction, just before the number: numbers and issue times agree.
            issued_at = services.clock.now()
            number = allocate_number(
                session, department, template, issued_at.astimezone(CHINA).year
            )
            _refuse_second_licence(
                session,
                department=department,
                template=template,
                holder_code=holder_code,
                superseding=request.supersedes,
                today=today,
            )
            certificate_id = new_public_id("crt")
            token = make_qr_token(
                services.pki.token_signer,
                QRClaims(
                    certificate_id=certificate_id,
                    number=number,
                    type_code=template.code,
                    fields_digest=fields_digest(fields),
                    valid_from=valid_from,
                    valid_until=valid_until,
                    issued_at=issued_at,
                ),
            )
            rendered = render_licence(
                LicenceContent(
                    template=template,
                    fields=fields,
                    number=number,
                    department_name=department.name,
                    issued_on=issued_at.astimezone(CHINA).date(),
                    issued_at=issued_at,
                    valid_from=valid_from,
                    valid_until=valid_until,
                    verify_url=f"{services.settings.public_base_url.rstrip('/')}/v/{token}",
                )
            )
            options = SealOptions(
                level=SealLevel.B_LT,
                certification=Certification.NO_CHANGES,
                placement=rendered.seal_placement,
                field_name="IssuerSeal",
            )
            result = seal_pdf(
                io.BytesIO(rendered.pdf),
                staged.file,
                identity=identity,
                options=options,
                context=context,
            )
            blob = staged.finish()
            key, sha256 = blob.key, blob.sha256
            certificate = Certificate(
                id=certificate_id,
                department_id=department.id,
                type_code=template.code,
                number=number,
                holder_name=str(fields[template.holder_name_field]),
                holder_code=holder_code,
                fields=fields,
                valid_from=valid_from,
                valid_until=valid_until,
                status=CertificateStatus.VALID.value,
                seal_id=seal.id,
                pdf_sha256=sha256,
                signed_digest=result.signed_digest,
                blob_key=key,
                supersedes_id=request.supersedes,
                issued_at=issued_at,
                # Nothing replaces a new licence: said here, so that its record reads the
                # same after the session closed.
                superseded_by=None,
            )
            session.add(certificate)
            record_change(
                session,
                change=Change(
                    type="certificate.issued",
                    action="certificate.issue",
                    target_type="certificate",
                    target_id=certificate_id,
                    department_id=department.id,
                    detail={
                        "number": number,
                        "type": template.code,
                        "sha256": sha256,
                        "signed_digest": result.signed_digest,
                        "seal": seal.id,
                        "supersedes": request.supersedes,
                    },
                    payload=certificate_payload(certificate, previous=None, reason=None)
                    | {"supersedes": request.supersedes},
                    status=StatusChange(
                        certificate_id=certificate_id,
                        from_status=None,
                        to_status=CertificateStatus.VALID.value,
                    ),
                    log_entry=lambda code: LogEntry.certificate_issued(
                        certificate, department_code=code, seal_serial=seal.serial_number
                    ),
                    at=issued_at,
                ),
                actor=actor,
                clock=services.clock,
            )
            if request.supersedes is not None:
                _mark_superseded(session, request.supersedes, certificate, actor, services.clock)
            if idempotency is not None:
                record = session.get(IdempotencyRecord, (idempotency.client_id, idempotency.key))
                assert record is not None
                record.certificate_id = certificate_id
            committing = True
        staged.publish()
    except BaseException:
        if committing:
            staged.file.close()
        raise
    finally:
        staged.discard()
    metrics.CERTIFICATES_ISSUED.labels(type=template.code).inc()
    metrics.SEALS_MADE.labels(level=SealLevel.B_LT.value).inc()
    return Issued(certificate)
