"""What a citizen sees after scanning a licence's QR code: the token checked, the registry read."""

from __future__ import annotations

import dataclasses
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, bindparam, select

from econtract.clock import CHINA
from econtract.issuance._catalogue import TEMPLATES
from econtract.issuance._layout import format_date
from econtract.issuance._qrtoken import QRClaims, fields_digest, read_qr_token
from econtract.issuance._status import EffectiveStatus, effective_status
from econtract.issuance._templates import LONG_TERM
from econtract.models import Certificate, Department, StatusEvent
from econtract.reasons import ReasonKind, reason_kind
from econtract.services import Services
from econtract.tokens import TokenError, TokenKey
from verify.words import VERDICT_WORDS, Words

#: The JSON answer's version marker (for machines; the page does not show it).
FORMAT = "econtract-qr-verdict/1"

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def english_date(day: date) -> str:
    """A date no reader can take for another: ``24 Mar 2011``."""
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


class QRVerdict(StrEnum):
    """The one word a person reads first."""

    VALID = "VALID"
    REVOKED = "REVOKED"
    SUSPENDED = "SUSPENDED"
    EXPIRED = "EXPIRED"
    SUPERSEDED = "SUPERSEDED"
    UNKNOWN = "UNKNOWN"
    FORGED = "FORGED"

    @property
    def words(self) -> Words:
        """The verdict's words in Chinese and English, the same as on every report."""
        return VERDICT_WORDS[self.value]

    @property
    def chinese(self) -> str:
        """The verdict in Chinese, as printed large on the page."""
        return self.words.zh


#: Each status a certificate shows, as the page's verdict. A licence not valid yet is not
#: valid today: the page says SUSPENDED, with its own reason.
_STATUS_VERDICT: dict[EffectiveStatus, QRVerdict] = {
    EffectiveStatus.VALID: QRVerdict.VALID,
    EffectiveStatus.REVOKED: QRVerdict.REVOKED,
    EffectiveStatus.SUSPENDED: QRVerdict.SUSPENDED,
    EffectiveStatus.SUPERSEDED: QRVerdict.SUPERSEDED,
    EffectiveStatus.EXPIRED: QRVerdict.EXPIRED,
    EffectiveStatus.NOT_YET_VALID: QRVerdict.SUSPENDED,
}


@dataclass(frozen=True, kw_only=True)
class QRCheck:
    """The verdict of a scanned QR code and what to compare with the paper in hand."""

    verdict: QRVerdict
    """The bottom line."""
    reason_zh: str
    """Why, in Chinese."""
    reason_en: str
    """Why, in English."""
    certificate_id: str | None = None
    type_name: str | None = None
    type_name_en: str | None = None
    number: str | None = None
    holder_name: str | None = None
    department: str | None = None
    valid_from: date | None = None
    valid_until: date | None = None
    issued_at: datetime | None = None
    shown_fields: tuple[tuple[str, str], ...] = ()
    """Label/value pairs to compare with the paper (personal id numbers masked)."""
    superseded_by: str | None = None
    status_changed_at: datetime | None = None
    """When the licence was last revoked, suspended or reinstated."""
    status_reason: ReasonKind | None = None
    """The kind of reason the department gave for a revocation or suspension (never its
    free text, which may be personal)."""
    service_name: str = ""
    """Who runs the page: the service's own name (``ECONTRACT_SERVICE_NAME``)."""
    format: str = FORMAT

    @property
    def validity_zh(self) -> str:
        """The validity as the paper prints it: ``2011年03月24日至2031年03月23日``."""
        if self.valid_from is None:
            return ""
        start = format_date(self.valid_from)
        if self.valid_until is None:
            return f"{start}起{LONG_TERM}有效"
        return f"{start}至{format_date(self.valid_until)}"

    @property
    def validity_en(self) -> str:
        """The validity in English: ``24 Mar 2011 to 23 Mar 2031``."""
        if self.valid_from is None:
            return ""
        start = english_date(self.valid_from)
        if self.valid_until is None:
            return f"from {start}, no end date"
        return f"{start} to {english_date(self.valid_until)}"

    @property
    def issued_zh(self) -> str:
        """The issue date as printed under the department's name."""
        return format_date(self.issued_at.astimezone(CHINA).date()) if self.issued_at else ""

    @property
    def issued_en(self) -> str:
        """The issue date in English."""
        return english_date(self.issued_at.astimezone(CHINA).date()) if self.issued_at else ""

    @property
    def changed_zh(self) -> str:
        """The day of the last status change, the Chinese way."""
        if self.status_changed_at is None:
            return ""
        return format_date(self.status_changed_at.astimezone(CHINA).date())

    @property
    def changed_en(self) -> str:
        """The day of the last status change in English."""
        if self.status_changed_at is None:
            return ""
        return english_date(self.status_changed_at.astimezone(CHINA).date())

    def to_json(self) -> dict[str, object]:
        """The same verdict for machines."""
        return {
            "format": self.format,
            "verdict": self.verdict.value,
            "verdict_zh": self.verdict.chinese,
            "reason": {"zh": self.reason_zh, "en": self.reason_en},
            "certificate": None
            if self.certificate_id is None
            else {
                "id": self.certificate_id,
                "type": self.type_name,
                "type_en": self.type_name_en,
                "number": self.number,
                "holder": self.holder_name,
                "department": self.department,
                "valid_from": self.valid_from.isoformat() if self.valid_from else None,
                "valid_until": self.valid_until.isoformat() if self.valid_until else None,
                "issued_at": self.issued_at.isoformat() if self.issued_at else None,
                "fields": [{"label": label, "value": value} for label, value in self.shown_fields],
                "superseded_by": self.superseded_by,
                "status_changed_at": self.status_changed_at.isoformat()
                if self.status_changed_at
                else None,
                "status_reason": None
                if self.status_reason is None
                else {
                    "kind": self.status_reason.code,
                    "zh": self.status_reason.zh,
                    "en": self.status_reason.en,
                },
            },
        }


def mask(value: str) -> str:
    """Hide the middle of a personal id number, keeping the first 3 and last 4 characters."""
    if len(value) <= 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


@dataclass(frozen=True)
class _Record:
    """The columns of a certificate the QR page shows."""

    id: str
    number: str
    type_code: str
    holder_name: str
    fields: dict[str, Any]
    status: str
    valid_from: date
    valid_until: date | None
    issued_at: datetime
    department_name: str
    digest: str
    """The digest of ``fields`` a version-1 QR token carries."""
    changed_at: datetime | None = None
    """When the last status change was made (read for a revoked or suspended licence)."""
    reason: str | None = None
    """The free-text reason of that change; only its kind is shown."""


_LOOKUP = (
    select(
        Certificate.id,
        Certificate.number,
        Certificate.type_code,
        Certificate.holder_name,
        Certificate.fields,
        Certificate.status,
        Certificate.valid_from,
        Certificate.valid_until,
        Certificate.issued_at,
        Department.name.label("department_name"),
    )
    .join(Department, Department.id == Certificate.department_id)
    .where(Certificate.id == bindparam("id"))
)
_NEWER = select(Certificate.number).where(Certificate.supersedes_id == bindparam("id"))
_LAST_CHANGE = (
    select(StatusEvent.created_at, StatusEvent.reason)
    .where(StatusEvent.certificate_id == bindparam("id"))
    .order_by(StatusEvent.id.desc())
    .limit(1)
)

_verified: OrderedDict[tuple[str, str], QRClaims] = OrderedDict()
_verified_lock = threading.Lock()
_VERIFIED_MAX = 4096


def _read_cached(key: TokenKey, token: str) -> QRClaims:
    """``read_qr_token``, remembering tokens whose signature checked (it cannot change)."""
    cache_key = (key.kid, token)
    with _verified_lock:
        claims = _verified.get(cache_key)
        if claims is not None:
            _verified.move_to_end(cache_key)
            return claims
    claims = read_qr_token(key, token)
    with _verified_lock:
        _verified[cache_key] = claims
        if len(_verified) > _VERIFIED_MAX:
            _verified.popitem(last=False)
    return claims


def check_qr(services: Services, token: str, *, patient: bool = False) -> QRCheck:
    """Check a QR token (signature, key id, version) and read the certificate's status.

    A quick read (the default) raises :class:`econtract.db.ReadBusyError` rather than wait
    for a locked SQLite file; ``patient`` waits (for callers off the event loop)."""
    service_name = services.settings.service_name
    try:
        claims = _read_cached(services.pki.token_signer, token)
    except TokenError:
        return QRCheck(
            verdict=QRVerdict.FORGED,
            reason_zh="二维码不是本系统签发的，或已被篡改。请勿相信此证照。",
            reason_en="This QR code was not issued by this service or has been altered. "
            "Do not trust this licence.",
            service_name=service_name,
        )
    # The whole verdict is remembered, not only the row: building it (the fields as printed,
    # the reason, the status of the day) costs more than the read. Equal inputs give the equal
    # verdict: the row (forgotten on any write to the registry), the token and today's date.
    today = services.clock.today()
    return services.reads.run_remembered(
        ("qr", services.pki.token_signer.kid, token, today),
        lambda conn: _verdict(
            claims, *_lookup(conn, claims.certificate_id), today=today, service_name=service_name
        ),
        patient=patient,
    )


def _verdict(
    claims: QRClaims,
    certificate: _Record | None,
    newer: str | None,
    *,
    today: date,
    service_name: str,
) -> QRCheck:
    """The verdict on the registry's record of the licence a checked token names."""
    department = certificate.department_name if certificate is not None else None
    if certificate is None or department is None:
        return QRCheck(
            verdict=QRVerdict.UNKNOWN,
            reason_zh="登记簿中没有这份证照。",
            reason_en="This licence is not in the registry.",
            service_name=service_name,
        )
    if not _matches(claims, certificate):
        return QRCheck(
            verdict=QRVerdict.FORGED,
            reason_zh="二维码内容与登记簿不符。",
            reason_en="The QR code does not match the registry.",
            service_name=service_name,
        )
    template = TEMPLATES.get(certificate.type_code)
    status = effective_status(certificate, today)
    verdict = _STATUS_VERDICT[status]
    changed = (
        verdict in (QRVerdict.REVOKED, QRVerdict.SUSPENDED)
        and status != EffectiveStatus.NOT_YET_VALID
    )
    zh, en = _reason(verdict, status, department)
    return QRCheck(
        verdict=verdict,
        reason_zh=zh,
        reason_en=en,
        certificate_id=certificate.id,
        type_name=template.name if template else certificate.type_code,
        type_name_en=template.name_en if template else certificate.type_code,
        number=certificate.number,
        holder_name=certificate.holder_name,
        department=department,
        valid_from=certificate.valid_from,
        valid_until=certificate.valid_until,
        issued_at=certificate.issued_at,
        shown_fields=_shown_fields(certificate),
        superseded_by=newer,
        status_changed_at=certificate.changed_at if changed else None,
        status_reason=reason_kind(certificate.reason) if changed else None,
        service_name=service_name,
    )


def _matches(claims: QRClaims, certificate: _Record) -> bool:
    """Whether the registry's record is the licence the token names.

    A compact token states the issue time; a version-1 token the number, type and a digest
    of the fields, each compared when present."""
    if int(claims.issued_at.timestamp()) != int(certificate.issued_at.timestamp()):
        return False
    stated = (claims.number, claims.type_code, claims.fields_digest)
    recorded = (certificate.number, certificate.type_code, certificate.digest)
    return all(a is None or a == b for a, b in zip(stated, recorded, strict=True))


def _reason(verdict: QRVerdict, status: EffectiveStatus, department: str) -> tuple[str, str]:
    """Why, in a sentence each in Chinese and English."""
    if status == EffectiveStatus.NOT_YET_VALID:
        return ("该证照尚未到有效期起始日。", "This licence is not valid yet.")
    reasons = {
        QRVerdict.VALID: (
            "证照真实有效。请核对下列信息与纸质证照一致。",
            "The licence is genuine and valid. Check that the details below match the paper.",
        ),
        QRVerdict.REVOKED: (
            f"该证照已被{department}撤销，不再有效。",
            "The issuing department revoked this licence; it is no longer valid.",
        ),
        QRVerdict.SUSPENDED: (
            f"该证照已被{department}暂停使用。",
            "The issuing department suspended this licence.",
        ),
        QRVerdict.EXPIRED: ("该证照已超过有效期。", "This licence has expired."),
        QRVerdict.SUPERSEDED: (
            "该证照已换发新证，以新证为准。",
            "This licence was replaced by a newer one; the newer one applies.",
        ),
    }
    return reasons.get(
        verdict, ("无法确定证照状态。", "The licence's status cannot be determined.")
    )


def _lookup(conn: Connection, certificate_id: str) -> tuple[_Record | None, str | None]:
    """The certificate's row (with its last status change when revoked or suspended) and,
    when superseded, its successor's number.

    Core rather than the ORM: this is the busiest read of the service, and one row of plain
    columns is all it needs.
    """
    row = conn.execute(_LOOKUP, {"id": certificate_id}).first()
    if row is None:
        return None, None
    certificate = _Record(**row._mapping, digest=fields_digest(row.fields))
    newer = None
    if certificate.status == "superseded":
        newer = conn.execute(_NEWER, {"id": certificate.id}).scalar()
    elif certificate.status in ("revoked", "suspended"):
        change = conn.execute(_LAST_CHANGE, {"id": certificate.id}).first()
        if change is not None:
            certificate = dataclasses.replace(
                certificate, changed_at=change.created_at, reason=change.reason
            )
    return certificate, newer


def _shown_fields(certificate: _Record) -> tuple[tuple[str, str], ...]:
    """The fields as the paper prints them: dates the Chinese way, id numbers masked."""
    template = TEMPLATES.get(certificate.type_code)
    if template is None:
        return ()
    properties = template.schema.get("properties", {})
    shown = []
    for name, value in certificate.fields.items():
        label = properties.get(name, {}).get("title", name)
        text = str(value)
        if _ISO_DATE.fullmatch(text):
            text = format_date(date.fromisoformat(text))
        shown.append((label, mask(text) if name in template.masked_fields else text))
    return tuple(shown)
