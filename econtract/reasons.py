"""The kinds of reason for revoking or suspending a licence, as the public may read them.

A department gives a free-text reason when it revokes or suspends a licence; the audit trail
keeps it whole. Such text may name people or matters that are nobody else's business, so
public pages show only its kind: the RFC 5280 reason code, or its Chinese name, that the
text starts with (``keyCompromise: …``, ``吊销：…``), and "another reason" for anything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class ReasonKind:
    """One kind of reason, named for people."""

    code: str
    """The RFC 5280 CRLReason name (``keyCompromise``), or ``issuedInError`` / ``other``."""
    zh: str
    """The kind in Chinese."""
    en: str
    """The kind in English."""


#: Every kind, each with the Chinese words a reason may start with to name it.
KINDS: tuple[tuple[ReasonKind, tuple[str, ...]], ...] = (
    (ReasonKind(code="keyCompromise", zh="密钥泄露", en="Key compromised"), ("密钥泄露",)),
    (
        ReasonKind(code="cACompromise", zh="发证机构密钥泄露", en="Issuer's key compromised"),
        ("发证机构密钥泄露",),
    ),
    (
        ReasonKind(code="affiliationChanged", zh="登记事项变更", en="Registered details changed"),
        ("登记事项变更", "变更"),
    ),
    (
        ReasonKind(code="superseded", zh="已换发新证", en="Replaced by a new licence"),
        ("换发", "已换发新证"),
    ),
    (
        ReasonKind(code="cessationOfOperation", zh="主体已注销", en="Holder ceased operation"),
        ("注销", "主体已注销"),
    ),
    (
        ReasonKind(code="certificateHold", zh="暂停使用", en="Put on hold"),
        ("暂停", "暂停使用", "挂起"),
    ),
    (
        ReasonKind(code="privilegeWithdrawn", zh="许可被吊销", en="Permission withdrawn"),
        ("吊销", "许可被吊销"),
    ),
    (
        ReasonKind(code="issuedInError", zh="错误签发", en="Issued in error"),
        ("错误签发", "误发"),
    ),
    (ReasonKind(code="unspecified", zh="未说明原因", en="No reason given"), ("未说明",)),
)

OTHER = ReasonKind(code="other", zh="其他原因", en="Another reason")
"""A reason that does not start with a known kind: its text stays in the audit trail."""

_LEADING_WORD = re.compile(r"[A-Za-z]+")


def reason_kind(reason: str | None) -> ReasonKind:
    """The kind of a status change's free-text ``reason``, for public pages."""
    text = (reason or "").strip()
    if not text:
        return KINDS[-1][0]
    word = _LEADING_WORD.match(text)
    for kind, words in KINDS:
        if word is not None and word.group().lower() == kind.code.lower():
            return kind
        if any(text.startswith(chinese) for chinese in words):
            return kind
    return OTHER
