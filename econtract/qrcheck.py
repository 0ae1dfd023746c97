"""What a citizen sees after scanning a licence's QR code: the token checked, the registry read."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, bindparam, select

from econtract.certificates import EXPIRED, effective_status
from econtract.models import Certificate, Department
from econtract.qrtoken import QRClaims, fields_digest, read_qr_token
from econtract.services import Services
from econtract.templates import TEMPLATES
from econtract.tokens import TokenError, TokenKey

#: The report format's version marker.
FORMAT = "econtract-qr-verdict/1"


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
    def chinese(self) -> str:
        """The verdict in Chinese, as printed large on the page."""
        return {
            "VALID": "有效",
            "REVOKED": "已撤销",
            "SUSPENDED": "已暂停",
            "EXPIRED": "已过期",
            "SUPERSEDED": "已变更",
            "UNKNOWN": "无法识别",
            "FORGED": "二维码无效",
        }[self.value]


_STATUS_VERDICT = {
    "valid": QRVerdict.VALID,
    "revoked": QRVerdict.REVOKED,
    "suspended": QRVerdict.SUSPENDED,
    "superseded": QRVerdict.SUPERSEDED,
    EXPIRED: QRVerdict.EXPIRED,
    "not-yet-valid": QRVerdict.SUSPENDED,
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
    format: str = FORMAT

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
    """The digest of ``fields`` the QR token carries."""


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
    try:
        claims = _read_cached(services.pki.token_signer, token)
    except TokenError:
        return QRCheck(
            verdict=QRVerdict.FORGED,
            reason_zh="二维码不是本系统签发的，或已被篡改。请勿相信此证照。",
            reason_en="This QR code was not issued by this service or has been altered. "
            "Do not trust this licence.",
        )
    certificate, newer = services.reads.run_remembered(
        ("qr", claims.certificate_id),
        lambda conn: _lookup(conn, claims.certificate_id),
        patient=patient,
    )
    department = certificate.department_name if certificate is not None else None
    if certificate is None or department is None:
        return QRCheck(
            verdict=QRVerdict.UNKNOWN,
            reason_zh="登记簿中没有这份证照。",
            reason_en="This licence is not in the registry.",
        )
    if (
        certificate.number != claims.number
        or certificate.type_code != claims.type_code
        or certificate.digest != claims.fields_digest
    ):
        return QRCheck(
            verdict=QRVerdict.FORGED,
            reason_zh="二维码内容与登记簿不符。",
            reason_en="The QR code does not match the registry.",
        )
    template = TEMPLATES.get(certificate.type_code)
    status = effective_status(certificate)
    verdict = _STATUS_VERDICT.get(status, QRVerdict.UNKNOWN)
    reasons = {
        QRVerdict.VALID: (
            "证照真实有效。请核对下列信息与纸质证照一致。",
            "The licence is genuine and valid. Check that the details below match the paper.",
        ),
        QRVerdict.REVOKED: (
            "该证照已被发证机关撤销，不再有效。",
            "The issuing department revoked this licence.",
        ),
        QRVerdict.SUSPENDED: ("该证照目前暂停使用。", "This licence is suspended."),
        QRVerdict.EXPIRED: ("该证照已超过有效期。", "This licence has expired."),
        QRVerdict.SUPERSEDED: (
            "该证照已换发新证，以新证为准。",
            "This licence was replaced by a newer one; the newer one applies.",
        ),
    }
    zh, en = reasons.get(
        verdict, ("无法确定证照状态。", "The licence's status cannot be determined.")
    )
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
    )


def _lookup(conn: Connection, certificate_id: str) -> tuple[_Record | None, str | None]:
    """The certificate's row and, when superseded, its successor's number.

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
    return certificate, newer


def _shown_fields(certificate: _Record) -> tuple[tuple[str, str], ...]:
    template = TEMPLATES.get(certificate.type_code)
    if template is None:
        return ()
    properties = template.schema.get("properties", {})
    shown = []
    for name, value in certificate.fields.items():
        label = properties.get(name, {}).get("title", name)
        text = str(value)
        shown.append((label, mask(text) if name in template.masked_fields else text))
    return tuple(shown)
