"""Issuing an e-licence: validate, claim the number, render, seal, register.

A request passes each step once, in this order:

1. **Validate** (:func:`~econtract.issuance._request.validate_request`): the type, the fields
   and the validity, in one call that returns a :class:`ValidatedRequest`; nothing later
   goes back to the template's checks. An idempotent replay is answered here, before any work.
2. **Claim the number** (:func:`~econtract.issuance._claims.reserve`): a short transaction
   of its own writes the idempotency key, the claim holding the holder and checks the
   one-licence-per-holder rule; then one statement, a transaction of its own, takes the
   number from the counter and writes it into the claim. A retry with the same key whose
   first request claimed a number and died completes that claim instead.
3. **Render** the page with its number and QR token (:mod:`~econtract.issuance._draw`), with
   no transaction open.
4. **Seal** it into a staged file (:func:`signing.sealer.seal_pdf`), with no transaction open.
5. **Register**, in a second short transaction: the claim moves from pending to issued (only
   one request may), the certificate is written and recorded
   (:func:`econtract.events.record_change`: its first status event, the audit event, the log
   entry and the outbox row), the one it supersedes is marked, and the idempotency key
   settled.

Rendering and sealing, the slow part, hold no lock: issuances run them in parallel, and the
counter's lock is held only while the database runs that one statement
(:mod:`~econtract.issuance._claims` says why the holder rule stays race-free). Should step 3,
4 or 5 fail, the claimed number is declared void, with its reason, in the audit trail and the
log; a number is never reused. The time comes from ``services.clock``.

The sealed file becomes visible in the blob store only after the registering transaction
committed (:mod:`econtract.blobs`): a crash in between can leave a staged file, never a
stored licence the registry does not know. The start-up sweep finishes a staged file the
registry recorded and removes any other.
"""

from __future__ import annotations

import dataclasses
import io
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, lazyload

from econtract import audit, db, metrics
from econtract.blobs import FinishedBlob
from econtract.clock import CHINA, Clock
from econtract.departments import get_department
from econtract.dual_seal import SealPlan, dual_options, plan_seals, seal_with_sm2
from econtract.errors import ConflictError
from econtract.events import Change, StatusChange, record_change
from econtract.issuance._claims import (
    ClaimSettledError,
    Reservation,
    pending_claim,
    reserve,
    settle_claim,
    settled_outcome,
    supersedable,
    void_after_failure,
)
from econtract.issuance._draw import render_licence
from econtract.issuance._idempotency import IdempotencyKey, Issued, replay, settle_key
from econtract.issuance._layout import LicenceContent, RenderedLicence
from econtract.issuance._qrtoken import QRClaims, fields_digest, make_qr_token
from econtract.issuance._request import IssueRequest, ValidatedRequest, validate_request
from econtract.licence_identifier import LicenceIdentifier
from econtract.licence_metadata import NationalMetadata, holder_identity, national_status
from econtract.models import (
    Certificate,
    CertificateStatus,
    Department,
    IdempotencyRecord,
    Seal,
    SealKind,
    SealStatus,
)
from econtract.reasons import reason_kind
from econtract.sealing import (
    keep_ses_signature,
    resolved_holders,
    seal_identity,
    sealing_context,
    sm2_part,
    usable_seal,
)
from econtract.services import Services
from econtract.translog import LogEntry
from signing.options import Certification, SealLevel, SealOptions
from signing.sealer import SealIdentity, SealingContext


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


def _mark_superseded(
    session: Session, old_id: str, new: Certificate, actor: audit.Actor, clock: Clock
) -> None:
    old = supersedable(session, old_id, new.department_id, lock=True)
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
    """Issue a licence (see the module's docstring for the steps, and in which order)."""
    # 1. Validate. Bad input is named by JSON pointers into the request.
    today = services.clock.today()
    valid = validate_request(request, today=today)
    resumed = None
    # One read session for the key's earlier request, the department and its seal.
    with services.sessions() as session:
        if (
            idempotency is not None
            and session.get(IdempotencyRecord, idempotency.ident) is not None
        ):
            # A retry. A pending claim of this key is completed, rather than answered "in
            # progress": its request may have died after claiming.
            resumed = pending_claim(session, idempotency)
            replayed = None if resumed is not None else replay(session, idempotency)
            if replayed is not None:
                return replayed
        department = get_department(session, department_code)
        # A licence type named in ECONTRACT_DUAL_SEAL_TYPES carries a dual seal (ECDSA or RSA
        # certifying, SM2 approving; econtract.dual_seal).
        plan = plan_seals(
            session,
            licence_seal(session, department),
            dual=valid.template.code in services.settings.dual_seal_types,
        )
        seal = plan.seal
        session.expunge_all()
    # The seal and its validation material (CRLs, an OCSP response) are made ready before the
    # number is claimed: producing them writes to the registry too (CRL numbers).
    identity = seal_identity(services, seal, department)
    context = sealing_context(services, identity.certificate, long_term=True)
    # 2. Claim the number, or complete the claim of an earlier request with this key.
    claimed = resumed or reserve(
        services, department=department, request=valid, today=today, idempotency=idempotency
    )
    if isinstance(claimed, Issued):
        return claimed
    try:
        certificate = _seal_and_register(
            services, valid, claimed, department, plan, identity, context, actor, idempotency
        )
    except ClaimSettledError:
        return settled_outcome(services, claimed)
    except Exception as exc:
        void_after_failure(services, claimed, exc, actor)
        raise
    metrics.CERTIFICATES_ISSUED.labels(type=valid.template.code).inc()
    metrics.SEALS_MADE.labels(level=SealLevel.B_LT.value).inc()
    if plan.dual:
        metrics.SEALS_MADE.labels(level=SealLevel.B_LT.value).inc()
    return Issued(certificate)


def _seal_and_register(
    services: Services,
    valid: ValidatedRequest,
    claimed: Reservation,
    department: Department,
    plan: SealPlan,
    identity: SealIdentity,
    context: SealingContext,
    actor: audit.Actor,
    idempotency: IdempotencyKey | None,
) -> Certificate:
    """Steps 3 to 5: render and seal with no transaction open, then register."""
    seal = plan.seal
    with services.sessions() as session:
        identifier = _identifier(session, valid, department, claimed.number)
    # 3. Render, with the licence's national metadata in the page's XMP.
    rendered = _render(
        services,
        valid,
        claimed.certificate_id,
        claimed.number,
        department,
        claimed.issued_at,
        identifier,
    )
    with services.blobs.staging() as staged:
        # 4. Seal. A licence is certified with no changes allowed, a dual-sealed one with
        # form filling allowed, for its SM2 seal's field alone. Its metadata was written for
        # this issuance a moment ago (dated the moment of issuance), so the seal keeps it.
        options = SealOptions(
            level=SealLevel.B_LT,
            certification=Certification.FORM_FILLING if plan.dual else Certification.NO_CHANGES,
            placement=rendered.seal_placement,
            field_name="IssuerSeal",
            keep_metadata=True,
        )
        approving = None
        if plan.dual and plan.sm2_seal is not None:
            options, approving = dual_options(options, plan.sm2_seal.id)
            options = dataclasses.replace(
                options, reserve_fields=resolved_holders(services, options.reserve_fields)
            )
        # Sealed in memory, then written to the staged file at once: the PDF writer makes
        # over a thousand small writes per licence, each a Python call on a file.
        output = io.BytesIO()
        sealed = seal_with_sm2(
            io.BytesIO(rendered.pdf),
            output,
            identity=identity,
            options=options,
            context=context,
            sm2=sm2_part(services, plan, department, identity=identity, approving=approving),
        )
        staged.file.write(output.getbuffer())
        del output
        result = sealed.result
        blob = staged.finish()
        # 5. Register, if the claim is still this request's to register.
        with db.transaction(services.sessions) as session:
            # The department as read before the claim, in this session (which holds it only
            # while it is referenced): the log entry takes its code from it instead of a
            # query while every other writer waits.
            issuer = session.merge(department, load=False)
            settle_claim(session, claimed, services.clock)
            for used in {seal.id, plan.sm2_seal.id if plan.sm2_seal else seal.id}:
                current = session.get(Seal, used)
                assert current is not None
                usable_seal(current, department_id=department.id)
            certificate = _register(
                session,
                services,
                valid,
                certificate_id=claimed.certificate_id,
                number=claimed.number,
                department=issuer,
                seal=seal,
                signed_digest=result.signed_digest,
                blob=blob,
                issued_at=claimed.issued_at,
                identifier=identifier,
                actor=actor,
            )
            keep_ses_signature(session, plan, sealed, certificate_id=certificate.id)
            if idempotency is not None:
                settle_key(session, idempotency, claimed.certificate_id)
            # The transaction's work is done: a failure from here is the commit's, whose
            # outcome is unknown, and the staged file is left for the start-up sweep.
            staged.committing()
    return certificate


def _render(
    services: Services,
    valid: ValidatedRequest,
    certificate_id: str,
    number: str,
    department: Department,
    issued_at: datetime,
    identifier: LicenceIdentifier,
) -> RenderedLicence:
    """The licence page, with a QR code whose token names this certificate and its fields,
    and the GB/T 36903 metadata as its XMP."""
    token = make_qr_token(
        services.pki.token_signer,
        QRClaims(
            certificate_id=certificate_id,
            number=number,
            type_code=valid.template.code,
            fields_digest=fields_digest(valid.fields),
            valid_from=valid.valid_from,
            valid_until=valid.valid_until,
            issued_at=issued_at,
        ),
    )
    holder_code, holder_type = holder_identity(
        valid.holder_code, valid.fields, valid.template.id_number_fields
    )
    status_code, status = national_status(CertificateStatus.VALID.value)
    metadata = NationalMetadata(
        name=valid.template.name,
        number=number,
        identifier=str(identifier),
        type_code=identifier.type_code,
        issuer_name=department.name,
        issuer_code=identifier.issuer_code,
        issue_date=issued_at.astimezone(CHINA).date(),
        valid_from=valid.valid_from,
        valid_until=valid.valid_until,
        holder_name=valid.holder_name,
        holder_code=holder_code,
        holder_type=holder_type,
        related_matter=None,
        status=status,
        status_code=status_code,
    )
    return render_licence(
        LicenceContent(
            template=valid.template,
            fields=valid.fields,
            number=number,
            department_name=department.name,
            issued_on=issued_at.astimezone(CHINA).date(),
            issued_at=issued_at,
            valid_from=valid.valid_from,
            valid_until=valid.valid_until,
            verify_url=f"{services.settings.public_base_url.rstrip('/')}/v/{token}",
        ),
        metadata=metadata,
    )


def _identifier(
    session: Session, valid: ValidatedRequest, department: Department, number: str
) -> LicenceIdentifier:
    """The new licence's identifier: version 1, or one more than the licence it supersedes.

    An unknown or foreign predecessor gets version 1 here and is refused when it is marked
    superseded, in the same transaction.
    """
    version = 1
    if valid.supersedes is not None:
        old = session.get(
            Certificate, valid.supersedes, options=[lazyload(Certificate.superseded_by)]
        )
        if old is not None and old.department_id == department.id:
            version = old.version + 1
    return LicenceIdentifier.create(
        type_code=valid.template.national_type_code,
        issuer_code=department.code,
        serial=number,
        version=version,
    )


def _register(
    session: Session,
    services: Services,
    valid: ValidatedRequest,
    *,
    certificate_id: str,
    number: str,
    department: Department,
    seal: Seal,
    signed_digest: str,
    blob: FinishedBlob,
    issued_at: datetime,
    identifier: LicenceIdentifier,
    actor: audit.Actor,
) -> Certificate:
    """Write the certificate and record its issue; mark the one it supersedes."""
    national_holder_code, national_holder_type = holder_identity(
        valid.holder_code, valid.fields, valid.template.id_number_fields
    )
    certificate = Certificate(
        id=certificate_id,
        department_id=department.id,
        type_code=valid.template.code,
        number=number,
        holder_name=valid.holder_name,
        holder_code=valid.holder_code,
        national_holder_code=national_holder_code,
        national_holder_type=None if national_holder_type is None else str(national_holder_type),
        fields=valid.fields,
        valid_from=valid.valid_from,
        valid_until=valid.valid_until,
        status=CertificateStatus.VALID.value,
        seal_id=seal.id,
        pdf_sha256=blob.sha256,
        signed_digest=signed_digest,
        blob_key=blob.key,
        supersedes_id=valid.supersedes,
        issued_at=issued_at,
        identifier=str(identifier),
        version=identifier.version,
        issuer=department,
        # Nothing replaces a new licence: said here, so that its record reads the same after
        # the session closed.
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
                "type": valid.template.code,
                "sha256": blob.sha256,
                "signed_digest": signed_digest,
                "seal": seal.id,
                "supersedes": valid.supersedes,
            },
            payload=certificate_payload(certificate, previous=None, reason=None)
            | {"supersedes": valid.supersedes},
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
    if valid.supersedes is not None:
        _mark_superseded(session, valid.supersedes, certificate, actor, services.clock)
    return certificate
