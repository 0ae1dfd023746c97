"""An envelope's completion: what the service does once the last party has sealed.

The last party's seal is made at B-LTA (its revision ends with a document timestamp, a change
a FORM_FILLING certification permits), so the final revision is timestamped in the same
registering transaction that completes the envelope, and no crash leaves it without. Then
:func:`complete`, right after that transaction and again from the sweep
(:func:`finish_completions`) for an envelope a crash left half done:

1. claims the completion (a conditional UPDATE: a second caller does nothing, until the
   claim is stale because its worker died);
2. runs the action named at creation: for a case, issues the licence of the named type from
   the named fields through the normal issuance, as the initiator, with an idempotency key
   derived from the envelope (a retry answers the licence issued the first time); for a
   contract, nothing;
3. records ``envelope.completed`` in the audit trail, the outbox and the transparency log;
4. publishes a tree head, so that every entry of the envelope has its inclusion proof, and
   makes the completion certificate: a PDF in Chinese and English listing the parties, who
   acted through which client and when, the SHA-256 of every revision, and the log entries
   with their proofs; sealed at B-LT by the platform seal and registered as a document of the
   platform body, the way an annotated copy is.

Each step looks at what is done already, so a second run finishes what the first left.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from econtract import audit, db
from econtract.envelopes._changes import record_envelope_change
from econtract.envelopes._models import Envelope, EnvelopeStatus
from econtract.envelopes._views import EnvelopeView, view_of
from econtract.errors import InvalidInputError, NotFoundError
from econtract.issuance import (
    IdempotencyKey,
    IssueRequest,
    get_template,
    issue_certificate,
    request_hash,
    validate_fields,
)
from econtract.models import Department, SealedDocument
from econtract.report_pdf import wrap_text
from econtract.services import Services
from econtract.sharing import seal_by_platform
from econtract.translog import LogEntry, publish_sth, subject_proofs_json
from signing.fonts import check_font, font_bytes

log = logging.getLogger("econtract.envelopes")

#: Who completes an envelope: the service.
COMPLETION_ACTOR = audit.Actor(name="service:envelope-completion")
#: The idempotency client under which a completion issues its licence.
_ISSUING_CLIENT = "service:envelope-completion"
#: A claim older than this belongs to a worker that died: the sweep takes the completion on.
CLAIM_SECONDS = 600
_SWEEP_BATCH = 100

_FONT = "EContractCompletion"
_BEIJING = timezone(timedelta(hours=8))
_MARGIN = 50.0


@dataclass(frozen=True, kw_only=True)
class IssueLicence:
    """The completion action of a case: issue a licence of ``type_code`` from ``fields``."""

    type_code: str
    """The certificate type (template code)."""
    fields: dict[str, Any]
    """The licence's fields, per the type's JSON Schema."""

    def to_json(self) -> dict[str, Any]:
        """As the envelope keeps it (``on_complete``)."""
        return {"issue": {"type": self.type_code, "fields": self.fields}}


def check_action(action: IssueLicence, *, today: date) -> IssueLicence:
    """The action with its fields checked (and cleaned) by the issuance's own validation, at
    creation, before anything is sealed; faults are named under ``/on_complete/issue``."""
    at = "/on_complete/issue"
    try:
        template = get_template(action.type_code)
    except NotFoundError as exc:
        raise InvalidInputError(
            f"on_complete: {exc.message}", errors=[(f"{at}/type", "unknown certificate type")]
        ) from None
    fields = validate_fields(template, action.fields, at=f"{at}/fields", today=today)
    return IssueLicence(type_code=template.code, fields=fields)


def complete(services: Services, envelope_id: str) -> bool:
    """Complete a completed envelope (see the module's steps); ``False`` when there is
    nothing to do: not completed, finished already, or another worker holds the claim."""
    claimed_at = services.clock.now()
    with db.transaction(services.sessions) as session:
        claimed = session.execute(
            update(Envelope)
            .where(Envelope.id == envelope_id, *_unfinished(claimed_at))
            .values(completion_claimed_at=claimed_at)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return False
    try:
        _run_action(services, envelope_id)
        _record_completed(services, envelope_id)
        _make_certificate(services, envelope_id)
    except BaseException:
        # Let the sweep try again at once rather than after the claim goes stale.
        with db.transaction(services.sessions) as session:
            session.execute(
                update(Envelope)
                .where(Envelope.id == envelope_id, Envelope.completion_claimed_at == claimed_at)
                .values(completion_claimed_at=None)
            )
        raise
    return True


def finish_completions(services: Services) -> int:
    """Complete the envelopes that completed without their completion (a crash between the
    last seal and the completion, or a completion that failed); how many were finished. For
    a periodic thread."""
    with services.sessions() as session:
        ids = list(
            session.scalars(
                select(Envelope.id)
                .where(*_unfinished(services.clock.now()))
                .order_by(Envelope.updated_at)
                .limit(_SWEEP_BATCH)
            )
        )
    finished = 0
    for envelope_id in ids:
        try:
            finished += complete(services, envelope_id)
        except Exception:
            log.exception("Completing envelope %s failed; the next sweep tries again.", envelope_id)
    return finished


def completion_certificate(
    services: Services, envelope_id: str, *, view: EnvelopeView
) -> SealedDocument:
    """The completion certificate's registered document, for a party shown ``view``
    (``NotFoundError`` before it is made)."""
    with services.sessions() as session:
        envelope = session.get(Envelope, envelope_id)
        document_id = envelope.completion_document_id if envelope else None
        document = session.get(SealedDocument, document_id) if document_id else None
        if document is None or view.id != envelope_id:
            raise NotFoundError(f"Envelope {envelope_id!r} has no completion certificate yet.")
        session.expunge(document)
        return document


def _unfinished(now: datetime) -> tuple[ColumnElement[bool], ...]:
    """The completed envelopes whose completion is not made and not claimed by a live
    worker."""
    return (
        Envelope.status == EnvelopeStatus.COMPLETED.value,
        Envelope.completion_document_id.is_(None),
        or_(
            Envelope.completion_claimed_at.is_(None),
            Envelope.completion_claimed_at < now - timedelta(seconds=CLAIM_SECONDS),
        ),
    )


def _run_action(services: Services, envelope_id: str) -> None:
    with services.sessions() as session:
        envelope = session.get(Envelope, envelope_id)
        assert envelope is not None
        action, licence_id = envelope.on_complete, envelope.licence_id
        initiator = session.get(Department, envelope.initiator_id)
        assert initiator is not None
        code, initiator_id = initiator.code, initiator.id
    if not action or licence_id is not None:
        return
    issue = action["issue"]
    issued = issue_certificate(
        services,
        department_code=code,
        request=IssueRequest(type_code=issue["type"], fields=dict(issue["fields"])),
        actor=audit.Actor(name=COMPLETION_ACTOR.name, department_id=initiator_id),
        # Derived from the envelope: a second run answers the licence the first issued.
        idempotency=IdempotencyKey(
            client_id=_ISSUING_CLIENT,
            key=f"envelope:{envelope_id}",
            request_hash=request_hash({"envelope": envelope_id, **action}),
        ),
    )
    with db.transaction(services.sessions) as session:
        session.execute(
            update(Envelope)
            .where(Envelope.id == envelope_id, Envelope.licence_id.is_(None))
            .values(licence_id=issued.certificate.id)
        )


def _record_completed(services: Services, envelope_id: str) -> None:
    now = services.clock.now()
    with db.transaction(services.sessions) as session:
        marked = session.execute(
            update(Envelope)
            .where(Envelope.id == envelope_id, Envelope.completed_at.is_(None))
            .values(completed_at=now)
        )
        if marked.rowcount != 1:  # type: ignore[attr-defined]
            return
        envelope = session.get(Envelope, envelope_id)
        assert envelope is not None
        final = session.get(
            SealedDocument, envelope.timestamped_document_id or envelope.document_id
        )
        assert final is not None
        licence_id = envelope.licence_id
        record_envelope_change(
            services,
            session,
            COMPLETION_ACTOR,
            envelope_id=envelope_id,
            happened="completed",
            department_id=envelope.initiator_id,
            detail={"document": final.id, "sha256": final.pdf_sha256, "licence": licence_id},
            state=(envelope.status, envelope.step),
            log_entry=lambda code: LogEntry.envelope_completed(
                final,
                envelope_id=envelope_id,
                department_code=code,
                licence_id=licence_id,
                time=now,
            ),
        )


class _MadeAlreadyError(Exception):
    """Another worker registered the envelope's completion certificate first."""


def _make_certificate(services: Services, envelope_id: str) -> None:
    # A head covering the envelope's entries, so that the certificate carries every proof;
    # a publisher's head made meanwhile serves as well (publish_sth keeps the latest then).
    with db.transaction(services.sessions) as session:
        publish_sth(session, services.pki.log_key, clock=services.clock)
    with services.sessions() as session:
        envelope = session.get(Envelope, envelope_id)
        assert envelope is not None
        lines = _certificate_lines(services, session, envelope)
    pdf = _draw(lines)

    def register(session: Session, document: SealedDocument) -> None:
        made = session.execute(
            update(Envelope)
            .where(Envelope.id == envelope_id, Envelope.completion_document_id.is_(None))
            .values(completion_document_id=document.id)
        )
        if made.rowcount != 1:  # type: ignore[attr-defined]
            raise _MadeAlreadyError

    try:
        seal_by_platform(
            services,
            pdf,
            actor=COMPLETION_ACTOR,
            file_name=f"{envelope_id}-completion.pdf",
            within=register,
        )
    except _MadeAlreadyError:
        return


def _time(value: datetime | None) -> str:
    return value.astimezone(_BEIJING).strftime("%Y-%m-%d %H:%M:%S (UTC+8)") if value else "-"


def _certificate_lines(
    services: Services, session: Session, envelope: Envelope
) -> list[tuple[str, float]]:
    """The certificate's text, line by line with its size (wrapped when drawn)."""
    view = view_of(session, envelope)
    initiator = session.get(Department, envelope.initiator_id)
    assert initiator is not None
    out: list[tuple[str, float]] = [
        ("电子签署完成证明 Envelope completion certificate", 16.0),
        (f"标题 Title: {envelope.title}", 10.0),
        (f"信封 Envelope: {envelope.id}", 10.0),
        (f"发起方 Initiator: {initiator.name} ({initiator.code})", 10.0),
        (f"完成时间 Completed at: {_time(envelope.completed_at)}", 10.0),
    ]
    if envelope.licence_id:
        out.append((f"签发证照 Licence issued: {envelope.licence_id}", 10.0))
    out.append(("参与方 Parties", 12.0))
    for party in view.parties:
        out.append(
            (
                f"第{party.step}步 Step {party.step} · {party.name} · {party.code} · "
                f"{party.kind} · 字段 field {party.field} · 客户端 client "
                f"{party.client_id or '命令行 command line'} · {_time(party.acted_at)}",
                9.0,
            )
        )
    out.append(("各修订版本的 SHA-256 SHA-256 of every revision, in order", 12.0))
    revisions = [("发起方认证 certified by the initiator", envelope.certified_document_id)]
    revisions += [
        (f"{p.name} ({p.code}) 盖章 sealed", p.document_id)
        for p in sorted(view.parties, key=lambda p: p.acted_at or envelope.created_at)
        if p.document_id
    ]
    for number, (label, document_id) in enumerate(revisions, start=1):
        document = session.get(SealedDocument, document_id)
        assert document is not None
        final = " · 最终版本，含文档时间戳 final, with its document timestamp (B-LTA)"
        shown = label + (final if document.id == envelope.timestamped_document_id else "")
        out.append((f"{number}. {shown} · {document.id}", 9.0))
        out.append((document.pdf_sha256, 9.0))
    out += _log_lines(services, session, envelope.id)
    return out


def _log_lines(services: Services, session: Session, envelope_id: str) -> list[tuple[str, float]]:
    proofs = subject_proofs_json(session, envelope_id, public_key=services.pki.log_key.public_key())
    out: list[tuple[str, float]] = [("透明日志 Transparency log", 12.0)]
    sth = proofs["sth"]
    if sth is not None:
        out.append(
            (
                f"签名树头 Signed tree head: tree size {sth['tree_size']} · "
                f"timestamp {sth['timestamp']} · root {sth['sha256_root_hash']}",
                9.0,
            )
        )
    for item in proofs["entries"]:
        entry = item["entry"]
        out.append(
            (
                f"条目 Entry {item['leaf_index']} · {entry['kind']} · step "
                f"{entry.get('step', '-')} · {entry['department']} · {entry['document_id']} · "
                f"{entry['pdf_sha256']}",
                9.0,
            )
        )
        out.append((f"leaf hash {item['leaf_hash']}", 8.0))
        out.append((f"audit path {' '.join(item['audit_path']) or '(empty)'}", 8.0))
    for item in proofs["pending"]:
        entry = item["entry"]
        out.append(
            (
                f"条目 Entry {item['leaf_index']} · {entry['kind']} · {entry['document_id']} · "
                "完成时尚无覆盖它的签名树头，其包含证明以后可查 not yet covered by a signed "
                "tree head at completion: its inclusion proof is given by "
                f"GET /log/proof/inclusion?leaf_index={item['leaf_index']} once the next "
                "head is out",
                9.0,
            )
        )
    return out


def _draw(lines: list[tuple[str, float]]) -> bytes:
    if _FONT not in pdfmetrics.getRegisteredFontNames():
        check_font()
        pdfmetrics.registerFont(TTFont(_FONT, io.BytesIO(font_bytes())))
    output = io.BytesIO()
    canvas = Canvas(output, pagesize=A4, invariant=True)
    width, height = A4
    y = height - _MARGIN
    for text, size in lines:
        if size >= 12.0:
            y -= size * 0.6
        for line in wrap_text(text, width - 2 * _MARGIN, size, font=_FONT):
            if y < _MARGIN + size:
                canvas.showPage()
                y = height - _MARGIN
            canvas.setFont(_FONT, size)
            canvas.drawString(_MARGIN, y - size, line)
            y -= size * 1.4
    canvas.showPage()
    canvas.save()
    return output.getvalue()
