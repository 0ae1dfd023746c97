"""The words a person reads for a verdict, a registry status and a signature's result.

Defined once, in Chinese and English, so that a citizen reads the same word on the QR page,
the upload page, the HTML and PDF reports and the command line. Every surface takes its words
from here; the sentences around them (the reasons) are written where they are decided.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class Words:
    """One thing said in Chinese and English: a short form for a badge, a long form for a row."""

    zh: str
    """The Chinese word, as printed large."""
    en: str
    """The English word, printed after the Chinese."""
    zh_note: str = ""
    """What the long form adds in Chinese, in full-width brackets (``已换发新证``)."""
    en_note: str = ""
    """What the long form adds in English (``by a newer issue``)."""

    def __post_init__(self) -> None:
        if not self.zh or not self.en:
            raise ValueError("Both the Chinese and the English word are required.")

    @property
    def long_zh(self) -> str:
        """The Chinese word with its note, where a row has room for it."""
        return f"{self.zh}（{self.zh_note}）" if self.zh_note else self.zh

    @property
    def long_en(self) -> str:
        """The English word with its note."""
        return f"{self.en} {self.en_note}" if self.en_note else self.en

    @property
    def both(self) -> str:
        """Chinese then English, short forms: ``已撤销 REVOKED``."""
        return f"{self.zh} {self.en}"

    @property
    def both_long(self) -> str:
        """Chinese then English, long forms, for a report's row."""
        return f"{self.long_zh} {self.long_en}"


def _frozen(table: dict[str, Words]) -> Mapping[str, Words]:
    return MappingProxyType(table)


VERDICT_WORDS: Mapping[str, Words] = _frozen(
    {
        "VALID": Words("有效", "VALID"),
        "INVALID": Words("无效", "INVALID"),
        "MODIFIED": Words("已被改动", "MODIFIED"),
        "REVOKED": Words("已撤销", "REVOKED"),
        "SUSPENDED": Words("已暂停", "SUSPENDED"),
        "EXPIRED": Words("已过期", "EXPIRED"),
        "SUPERSEDED": Words("已变更", "SUPERSEDED"),
        "INCOMPLETE": Words(
            "未完成签署", "INCOMPLETE", "尚有签署方未签章", "not every party has sealed"
        ),
        "UNKNOWN": Words("无法识别", "UNKNOWN"),
        "INDETERMINATE": Words("暂无法确定", "INDETERMINATE"),
        # The QR page's own verdict: the token in the code is not one this service signed.
        "FORGED": Words("二维码无效", "FORGED"),
    }
)
"""The bottom line of a file's report (``verify.report.Verdict``) and of a scanned QR code
(``econtract.issuance._qrcheck.QRVerdict``), by the verdict's name."""

STATUS_WORDS: Mapping[str, Words] = _frozen(
    {
        "valid": Words("有效", "valid"),
        "revoked": Words("已撤销", "revoked"),
        "suspended": Words("已暂停", "suspended"),
        "superseded": Words("已变更", "superseded", "已换发新证", "by a newer issue"),
        "expired": Words("已过期", "expired"),
    }
)
"""A licence's or document's status in the registry, by the status the registry reports. The
words are the verdict's that the status leads to, so the summary row and the bottom line agree."""

INDICATION_WORDS: Mapping[str, Words] = _frozen(
    {
        "TOTAL_PASSED": Words("通过", "passed"),
        "TOTAL_FAILED": Words("未通过", "failed"),
        "INDETERMINATE": Words("暂无法确定", "cannot be decided now"),
    }
)
"""The result of one signature's check (ETSI EN 319 102-1 main indication), by indication."""


COPY_WORDS: Mapping[str, Words] = _frozen(
    {
        "title": Words("加注件", "Annotated copy"),
        "for_department": Words("仅供", "For"),
        "matter": Words("办理事项", "Matter"),
        "case_number": Words("案件编号", "Case number"),
        "valid_until": Words("有效期至", "Valid until"),
        "usage_id": Words("用证记录", "Use record"),
        "original": Words("原件", "Original licence"),
        "use_ended": Words("加注件的使用期限已过", "the copy's use has ended"),
        "in_use": Words("加注件在使用期限内", "the copy's use has not ended"),
    }
)
"""The labels of an annotated copy's section (加注件) on every surface, and what its date says
(the copy's use ended, or not), by key."""


ENVELOPE_WORDS: Mapping[str, Words] = _frozen(
    {
        "title": Words("签署方", "Parties"),
        "record": Words("签署流程", "Envelope"),
        "progress": Words("签署进度", "Progress"),
        "party": Words("签署方", "Party"),
        "field": Words("签章域", "Field"),
        "state": Words("状态", "State"),
        "signer": Words("盖章单位", "Sealed by"),
        "sealed": Words("已签章", "sealed"),
        "unsealed": Words("未签章", "not sealed"),
        "wrong_party": Words("非本方签章", "sealed by another party"),
    }
)
"""The labels of an envelope's section (签署方) on every surface, and each party's state, by
key."""


def status_words(status: str | None) -> Words:
    """The words for a registry status; a status without words is shown as it is."""
    if status and status in STATUS_WORDS:
        return STATUS_WORDS[status]
    shown = status or "-"
    return Words(shown, shown)
