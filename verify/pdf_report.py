"""The verification report as a PDF an auditor can file (Chinese first, English second)."""

from __future__ import annotations

import io
from datetime import datetime

from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from signing.fonts import check_font, font_bytes
from verify.report import Appendix, Report, SignatureReport

_FONT = "EContractReport"
_MARGIN = 56.0
_LINE = 14.0
_VERDICT_ZH = {
    "VALID": "有效",
    "INVALID": "无效",
    "MODIFIED": "已被篡改",
    "REVOKED": "已撤销",
    "SUSPENDED": "已暂停",
    "EXPIRED": "已过期",
    "SUPERSEDED": "已变更",
    "UNKNOWN": "无法识别",
    "INDETERMINATE": "暂无法确定",
}


def _register() -> str:
    if _FONT not in pdfmetrics.getRegisteredFontNames():
        check_font()
        pdfmetrics.registerFont(TTFont(_FONT, io.BytesIO(font_bytes())))
    return _FONT


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else "—"


class _Writer:
    """Lines of text down A4 pages, wrapped to the page width."""

    def __init__(self, pdf: canvas.Canvas) -> None:
        self.pdf = pdf
        self.width, self.height = A4
        self.y = self.height - _MARGIN

    def line(self, text: str, size: float = 10.0, indent: float = 0.0) -> None:
        limit = self.width - 2 * _MARGIN - indent
        for part in self._wrap(text, size, limit):
            if self.y < _MARGIN:
                self.pdf.showPage()
                self.y = self.height - _MARGIN
            self.pdf.setFont(_FONT, size)
            self.pdf.drawString(_MARGIN + indent, self.y, part)
            self.y -= max(_LINE, size * 1.35)

    def gap(self, points: float = 6.0) -> None:
        self.y -= points

    @staticmethod
    def _wrap(text: str, size: float, limit: float) -> list[str]:
        parts, current = [], ""
        for char in text:
            if pdfmetrics.stringWidth(current + char, _FONT, size) > limit:
                parts.append(current)
                current = char
            else:
                current += char
        return [*parts, current]


def _signature(out: _Writer, number: int, sig: SignatureReport) -> None:
    out.gap()
    out.line(f"签章 {number} Signature {number}: {sig.field_name} ({sig.kind})", 12)
    signer = sig.signer
    if signer is not None:
        out.line(
            f"签章人 Signer: {signer.department_name or signer.common_name or '—'} "
            f"({signer.department_code or '—'}) {signer.seal_name or ''}",
            indent=12,
        )
    out.line(
        f"结论 Indication: {sig.indication}"
        + (f" / {sig.sub_indication}" if sig.sub_indication else ""),
        indent=12,
    )
    out.line(
        f"完整 intact: {sig.intact}; 有效 valid: {sig.valid}; 可信 trusted: {sig.trusted}; "
        f"覆盖 coverage: {sig.coverage}; 修改 modification: {sig.modification_level}",
        indent=12,
    )
    out.line(
        f"认证 DocMDP: {sig.certification_level or '—'} (ok: {sig.docmdp_ok}); "
        f"PAdES: {sig.pades_level or '—'}; 签署时间 signing time: {_when(sig.signing_time)}",
        indent=12,
    )
    if sig.timestamp is not None:
        ts = sig.timestamp
        out.line(
            f"时间戳 Timestamp: {ts.authority}, {_when(ts.time)} (intact {ts.intact}, "
            f"valid {ts.valid}, trusted {ts.trusted})",
            indent=12,
        )
    rev = sig.revocation
    out.line(
        f"吊销状态 Revocation: {rev.state} at {_when(rev.at)} from "
        f"{', '.join(str(s) for s in rev.sources) or '—'}",
        indent=12,
    )
    if sig.algorithms is not None:
        alg = sig.algorithms
        strength = "可接受 acceptable" if alg.acceptable else "不可接受 NOT acceptable"
        out.line(
            f"算法 Algorithms: {alg.digest}, {alg.signature}, {alg.key_type} "
            f"{alg.key_size or ''} — {strength}",
            indent=12,
        )
    for cert in sig.chain:
        out.line(f"证书 Certificate: {cert.subject} · SHA-256 {cert.sha256}", 8, indent=12)
    for problem in sig.problems:
        out.line(f"问题 Problem: {problem}", indent=12)


def report_pdf(report: Report, appendices: tuple[Appendix, ...] = ()) -> bytes:
    """The report as a PDF: the verdict, its reasons, the registry's view, every signature,
    then the caller's appendices."""
    _register()
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=True)
    pdf.setTitle("电子文件核验报告 Verification report")
    pdf.setProducer(report.schema)
    out = _Writer(pdf)
    out.line("电子文件核验报告 Verification report", 16)
    verdict = report.verdict.value
    out.line(f"结论 Verdict: {_VERDICT_ZH.get(verdict, verdict)} {verdict}", 20)
    for reason in report.reasons:
        out.line(f"• {reason.zh}", 10, indent=8)
        out.line(reason.en, 9, indent=18)
    out.gap()
    out.line(f"文件 File: SHA-256 {report.file_sha256}, {report.file_size} bytes", 9)
    out.line(f"核验时间 Verified at: {_when(report.verified_at)}; 格式 Format: {report.schema}", 9)
    registry = report.registry
    if registry.matched:
        out.line(
            f"登记簿 Registry: {registry.kind} {registry.record_id} {registry.number or ''} "
            f"— {registry.status}",
            10,
        )
    else:
        out.line(
            "登记簿 Registry: 非本系统签发 not issued here"
            if registry.consulted
            else "登记簿 Registry: 未查询 not consulted",
            10,
        )
    for number, signature in enumerate(report.signatures, start=1):
        _signature(out, number, signature)
    for appendix in appendices:
        out.gap()
        out.line(appendix.title, 12)
        if appendix.note:
            out.line(appendix.note, 9, indent=12)
        for label, value in appendix.rows:
            out.line(f"{label}: {value}", 9, indent=12)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
