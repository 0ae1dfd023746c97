"""The registry's tables (SQLAlchemy 2 typed mappings): the stored rows only (API schemas live
in ``api.py``), changed through Alembic migrations in ``econtract/migrations``.
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from econtract.bodies import BodyKind

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def new_public_id(prefix: str) -> str:
    """An identifier for URLs that cannot be guessed or enumerated (128 random bits)."""
    return f"{prefix}_{secrets.token_urlsafe(16)}"


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("Naive datetimes are not stored; use timezone-aware UTC.")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """The declarative base of every registry table."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class SealKind(StrEnum):
    """The kinds of e-seal a department holds."""

    OFFICIAL = "official"
    LICENCE = "licence"
    CONTRACT = "contract"
    PLATFORM = "platform"
    """The seal of the body that runs the service: it seals annotated copies (加注件)."""

    @property
    def chinese_name(self) -> str:
        """The kind's name as engraved on the seal."""
        return {
            "official": "公章",
            "licence": "证照专用章",
            "contract": "合同专用章",
            "platform": "电子证照共享专用章",
        }[self.value]


class SealStatus(StrEnum):
    """A seal's state: only an active seal signs."""

    ACTIVE = "active"
    REVOKED = "revoked"
    RETIRED = "retired"


class CertificateStatus(StrEnum):
    """A certificate's registry status (expiry is derived from its validity dates)."""

    VALID = "valid"
    REVOKED = "revoked"
    SUSPENDED = "suspended"
    SUPERSEDED = "superseded"


class Department(Base):
    """A registered body, known by its unified social credit code: an issuing authority, or
    (``kind`` enterprise) an enterprise holding seals of its own. Seals and API clients
    belong to one, whichever it is."""

    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    region: Mapped[str | None] = mapped_column(String(6))
    kind: Mapped[str] = mapped_column(
        String(12), default=BodyKind.DEPARTMENT.value, server_default=BodyKind.DEPARTMENT.value
    )
    __table_args__ = (Index("ix_departments_kind_code", "kind", "code"),)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    seals: Mapped[list[Seal]] = relationship(back_populates="department")


class Authority(Base):
    """A service identity of the PKI: root CA, issuing CA, TSA, OCSP responder, token key."""

    __tablename__ = "authorities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    key_label: Mapped[str] = mapped_column(String(128))
    certificate_der: Mapped[bytes | None] = mapped_column(LargeBinary)
    crl_number: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Seal(Base):
    """A department's e-seal: a key in the key store and its certificate."""

    __tablename__ = "seals"
    __table_args__ = (UniqueConstraint("issuer", "serial_number"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    algorithm: Mapped[str] = mapped_column(String(20))
    key_label: Mapped[str] = mapped_column(String(128), unique=True)
    certificate_der: Mapped[bytes] = mapped_column(LargeBinary)
    issuer: Mapped[str] = mapped_column(String(40))
    serial_number: Mapped[str] = mapped_column(String(64))
    not_before: Mapped[datetime]
    not_after: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20), default=SealStatus.ACTIVE.value)
    revoked_at: Mapped[datetime | None]
    revocation_reason: Mapped[str | None] = mapped_column(String(40))
    replaces_id: Mapped[str | None] = mapped_column(ForeignKey("seals.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    department: Mapped[Department] = relationship(back_populates="seals")


class ApiClient(Base):
    """Machine credentials of a department's approval system."""

    __tablename__ = "api_clients"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[str] = mapped_column(String(200))
    disabled_at: Mapped[datetime | None]
    tokens_before: Mapped[datetime | None]  # the last disabling: older tokens stay refused
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    department: Mapped[Department] = relationship()


class CertificateType(Base):
    """A template of licence: its code, name and the JSON Schema of its fields."""

    __tablename__ = "certificate_types"

    code: Mapped[str] = mapped_column(String(60), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    schema: Mapped[dict[str, Any]]
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Certificate(Base):
    """An issued e-licence."""

    __tablename__ = "certificates"
    __table_args__ = (
        UniqueConstraint("department_id", "type_code", "number"),
        # A holder's licences oldest first (issuance's check for one the holder already holds).
        Index("ix_certificates_holder", "department_id", "type_code", "holder_code", "issued_at"),
        # A using department asks for one holder's licences across departments.
        Index("ix_certificates_national_holder", "national_holder_code", "type_code"),
        # The certificate list pages through a department's certificates newest first.
        Index("ix_certificates_department_issued", "department_id", "issued_at", "id"),
        # The list filtered by a part of the holder's name finds the rows by their trigrams
        # (migration 0015, PostgreSQL only).
        Index(
            "ix_certificates_holder_name_trgm",
            "holder_name",
            postgresql_using="gin",
            postgresql_ops={"holder_name": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    type_code: Mapped[str] = mapped_column(ForeignKey("certificate_types.code"))
    number: Mapped[str] = mapped_column(String(64))
    holder_name: Mapped[str] = mapped_column(String(500))
    holder_code: Mapped[str | None] = mapped_column(String(64))
    fields: Mapped[dict[str, Any]]
    valid_from: Mapped[date]
    valid_until: Mapped[date | None]
    status: Mapped[str] = mapped_column(String(20), default=CertificateStatus.VALID.value)
    seal_id: Mapped[str] = mapped_column(ForeignKey("seals.id"))
    pdf_sha256: Mapped[str] = mapped_column(String(64), index=True)
    signed_digest: Mapped[str] = mapped_column(String(128), index=True)
    blob_key: Mapped[str] = mapped_column(String(200))
    supersedes_id: Mapped[str | None] = mapped_column(ForeignKey("certificates.id"), index=True)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    identifier: Mapped[str] = mapped_column(String(128), unique=True, index=True)
    """The licence identifier (证照标识, GB/T 36904), see :mod:`econtract.licence_identifier`."""
    version: Mapped[int] = mapped_column(Integer, default=1)
    """The licence's version in its chain: 1 when first issued, one more per supersession."""
    national_holder_code: Mapped[str | None] = mapped_column(String(64), default=None)
    """The holder's national code (持证主体代码): the credit code, or a person's identity
    number when the licence names no credit code; ``None`` when it names neither. A using
    department looks licences up by it (index ``ix_certificates_national_holder``)."""
    national_holder_type: Mapped[str | None] = mapped_column(String(3), default=None)
    """What kind of code ``national_holder_code`` is: ``001`` or ``111`` (GB/T 36903)."""

    issuer: Mapped[Department] = relationship(viewonly=True, lazy="selectin")
    """The issuing department, loaded with the row: its name and code are part of the
    licence's national metadata, which is read after the session closed."""

    superseded_by: Mapped[Certificate | None] = relationship(
        primaryjoin="Certificate.id == remote(foreign(Certificate.supersedes_id))",
        uselist=False,
        viewonly=True,
        # Loaded with the row, so that a certificate read in a closed session still says
        # what replaced it.
        lazy="selectin",
        # A self-referential eager load runs only to the depth given; one level is enough.
        join_depth=1,
    )
    """The certificate that replaced this one, if one did."""


class NumberCounter(Base):
    """The last licence number handed out per department, type and year.

    Incremented by the one statement that writes the number into its issuance claim
    (:mod:`econtract.issuance._numbering`), so a number is never handed out twice and never
    reused; one never issued is declared void.
    """

    __tablename__ = "number_counters"

    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), primary_key=True)
    type_code: Mapped[str] = mapped_column(ForeignKey("certificate_types.code"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_value: Mapped[int] = mapped_column(BigInteger, default=0)


class IdempotencyRecord(Base):
    """An ``Idempotency-Key`` a client used, the request it came with, and what it made."""

    __tablename__ = "idempotency_records"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """The API client's id, or ``batch:<department code>`` for a batch run."""
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    certificate_id: Mapped[str | None] = mapped_column(ForeignKey("certificates.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SealedDocument(Base):
    """A PDF sealed on request (kind ``document``)."""

    __tablename__ = "sealed_documents"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    seal_id: Mapped[str] = mapped_column(ForeignKey("seals.id"))
    file_name: Mapped[str | None] = mapped_column(String(255))
    level: Mapped[str] = mapped_column(String(10))
    pdf_sha256: Mapped[str] = mapped_column(String(64), index=True)
    signed_digest: Mapped[str] = mapped_column(String(128), index=True)
    blob_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReservedSealField(Base):
    """An empty seal field a certifying seal added for a later department, and who may fill it.

    Found again through the certifying document's ``signed_digest``, which every later
    revision of the file still carries.
    """

    __tablename__ = "reserved_seal_fields"
    __table_args__ = (UniqueConstraint("document_id", "field_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("sealed_documents.id"), index=True)
    field_name: Mapped[str] = mapped_column(String(64))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    """The department whose seals may fill the field; ``None`` for an open field."""
    seal_id: Mapped[str | None] = mapped_column(ForeignKey("seals.id"))
    """The one seal that may fill the field, when the binding names a seal."""


class StatusEvent(Base):
    """A change of a certificate's status, with who made it and why."""

    __tablename__ = "status_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    certificate_id: Mapped[str] = mapped_column(ForeignKey("certificates.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """One state-changing action: who, what, on which object, with which outcome."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_time", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
    action: Mapped[str] = mapped_column(String(60))
    target_type: Mapped[str | None] = mapped_column(String(40))
    target_id: Mapped[str | None] = mapped_column(String(64), index=True)
    request_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(20), default="success")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class OutboxEvent(Base):
    """A change told to the world: written in the change's transaction, delivered later.

    Signed webhook delivery and other consumers read the rows not yet delivered, oldest
    first, and set ``delivered_at``; a change that rolled back left no row. The payload
    carries identifiers and statuses, never a holder's personal data.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "delivered_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    """A UUID consumers deduplicate on (delivery is at least once)."""
    type: Mapped[str] = mapped_column(String(60))
    """What happened: ``certificate.revoked``, ``seal.created``, …"""
    subject_id: Mapped[str] = mapped_column(String(64), index=True)
    """The certificate, seal or document it happened to."""
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)


class Grant(Base):
    """An entry of the use list (用证清单): a department may use a licence type for these
    matters.

    At most one live grant per department and type (a partial unique index): a second one
    would make it unclear which matters and which consent policy apply. A revoked grant stays
    as a record of what was allowed when.
    """

    __tablename__ = "grants"
    __table_args__ = (
        Index(
            "ix_grants_live",
            "department_id",
            "type_code",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    """The using department."""
    type_code: Mapped[str] = mapped_column(ForeignKey("certificate_types.code"))
    """The licence type it may use."""
    matters: Mapped[list[str]] = mapped_column(JSON)
    """The matters (事项) it may use the type for, each at most 200 characters."""
    requires_consent: Mapped[bool] = mapped_column(Boolean)
    """Whether a use needs the holder's consent."""
    created_by: Mapped[str] = mapped_column(String(200))
    """The audit trail's name of who recorded the grant."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class Consent(Base):
    """A holder's consent (授权用证) that one department use a licence, or the holder's
    licences of a type, for one matter until a time; given through the holder app.

    The 亮证码 is a short code the holder shows at a window: only its SHA-256 is kept, it
    expires within minutes and serves once.
    """

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_holder", "holder_code", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder_code: Mapped[str] = mapped_column(String(64))
    """The holder who consents: a credit code or an identity number."""
    holder_type: Mapped[str] = mapped_column(String(3))
    """``001`` or ``111`` (GB/T 36903)."""
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    """The department that may use the licence."""
    type_code: Mapped[str] = mapped_column(ForeignKey("certificate_types.code"))
    """The licence type (the certificate's type when the consent names one licence)."""
    certificate_id: Mapped[str | None] = mapped_column(ForeignKey("certificates.id"))
    """The one licence consented to; ``None`` for every licence of the type."""
    matter: Mapped[str] = mapped_column(String(200))
    """The matter (事项) the use is for."""
    case_number: Mapped[str | None] = mapped_column(String(64))
    """The case (办件) number, when the consent is for one case."""
    valid_until: Mapped[datetime]
    """The consent ends at this instant."""
    show_code_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    """SHA-256 (hex) of the 亮证码; ``None`` once none was asked for."""
    show_code_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    show_code_used_at: Mapped[datetime | None] = mapped_column(default=None)
    client_id: Mapped[str] = mapped_column(String(64))
    """The holder app that recorded it."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(default=None)


class UsageRecord(Base):
    """One use of a licence (用证记录): a lookup, check, copy or scan, granted or refused.

    A call that touched several licences leaves one record per licence, with one
    ``request_id``; a call that touched none (refused, or nothing found) leaves one record
    without a licence. Each record is committed to by a ``licence.use`` log entry that
    carries only its id and a salted digest (:func:`econtract.sharing.usage_digest`).
    """

    __tablename__ = "usage_records"
    __table_args__ = (
        Index("ix_usage_records_holder", "holder_code", "id"),
        Index("ix_usage_records_certificate", "certificate_id", "id"),
        Index("ix_usage_records_department", "department_id", "certificate_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    usage_id: Mapped[str] = mapped_column(String(40), unique=True)
    """The record's public id (``use_…``)."""
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    """The using department."""
    client_id: Mapped[str] = mapped_column(String(64))
    """The API client that called."""
    action: Mapped[str] = mapped_column(String(10))
    """``lookup``, ``check``, ``copy`` or ``scan``."""
    holder_code: Mapped[str | None] = mapped_column(String(64))
    holder_type: Mapped[str | None] = mapped_column(String(3))
    certificate_id: Mapped[str | None] = mapped_column(ForeignKey("certificates.id"))
    identifier: Mapped[str | None] = mapped_column(String(128))
    """The licence identifier used, when a licence was."""
    use_cause: Mapped[str] = mapped_column(String(200))
    matter: Mapped[str] = mapped_column(String(200))
    case_number: Mapped[str | None] = mapped_column(String(64))
    consent_id: Mapped[str | None] = mapped_column(ForeignKey("consents.id"))
    result: Mapped[str] = mapped_column(String(40))
    """``granted``, ``not-found`` or the problem code of the refusal."""
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    salt: Mapped[str] = mapped_column(String(32))
    """Hex random salt of the record's digest, so that the public digest cannot be matched
    against guessed holder codes."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Subscription(Base):
    """A using department's endpoint that is told when a licence it used changes.

    Deleting one keeps the row (``deleted_at``), so that its delivery log still reads.
    """

    __tablename__ = "subscriptions"
    __table_args__ = (Index("ix_subscriptions_department", "department_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    """``sub_…``."""
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON)
    """The event types it receives (``certificate.revoked``, …)."""
    created_by: Mapped[str] = mapped_column(String(64))
    """The API client (or operator) that created it."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)


class Delivery(Base):
    """One event owed to one subscription, and how its delivery goes.

    Unique per subscription and event, so that fanning an outbox row out twice (a worker
    killed after the insert, before its commit) never owes the event twice.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_subscription", "subscription_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscriptions.id"))
    event_id: Mapped[str] = mapped_column(String(36))
    """The outbox row's ``event_id``: the id receivers deduplicate on."""
    event_type: Mapped[str] = mapped_column(String(60))
    certificate_id: Mapped[str | None] = mapped_column(ForeignKey("certificates.id"))
    """The licence of a licence's event; ``None`` for an envelope's (named by the outbox)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    """``pending``, ``delivered``, ``failed`` (will be retried) or ``given-up``."""
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    last_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(String(200), default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Batch(Base):
    """A batch of licences submitted at once (``POST /v1/batches``), one row each.

    Unique per client and ``Idempotency-Key``, so that a resubmitted batch is the first one.
    """

    __tablename__ = "batches"
    __table_args__ = (
        UniqueConstraint("client_id", "idempotency_key"),
        Index("ix_batches_department", "department_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    """``bat_…``."""
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    client_id: Mapped[str] = mapped_column(String(64))
    """The API client that submitted it, who the audit trail names for its licences."""
    idempotency_key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    type_code: Mapped[str] = mapped_column(ForeignKey("certificate_types.code"))
    total: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)


class BatchRow(Base):
    """One row of a batch: its fields and what became of it."""

    __tablename__ = "batch_rows"
    __table_args__ = (Index("ix_batch_rows_state", "batch_id", "state"),)

    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), primary_key=True)
    row: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    """The row's number in the upload (a CSV's header is row 1, a JSON-lines file's first
    line is row 1)."""
    fields: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(12), default="queued")
    """``queued``, ``issued``, ``failed`` or ``cancelled``."""
    certificate_id: Mapped[str | None] = mapped_column(ForeignKey("certificates.id"), default=None)
    certificate_number: Mapped[str | None] = mapped_column(String(64), default=None)
    errors: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    """A failed row's reasons: ``[pointer, message]`` pairs."""
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
