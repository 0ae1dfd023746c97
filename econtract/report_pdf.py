"""The verification report as a PDF an auditor can file (Chinese first, English second).

It reads as a report: the verdict in a coloured box with its reasons, a summary of the file
and the registry's view, an envelope's parties and how many have sealed, a table per seal
(signer, department, time, level, result), the certificate chain of each, the seals and
timestamps in the order they were added, and the caller's appendices (the transparency log's
proof). Text wraps the way each script does:
English at spaces, Chinese between any two characters; only a run without spaces wider than
the column (a hash) is broken inside.

``verify`` produces the report as a value; drawing it for people (with the seal's font from
``signing``) happens here, above both.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, KeepTogether, SimpleDocTemplate, Spacer, Table
from reportlab.platypus.tables import TableStyle

from signing.fonts import check_font, font_bytes
from verify.annotated import copy_facts
from verify.envelope import envelope_facts
from verify.report import Appendix, Report, SignatureReport
from verify.words import COPY_WORDS, ENVELOPE_WORDS, status_words

_FONT = "EContractReport"
_MARGIN = 50.0
_BEIJING = timezone(timedelta(hours=8))
_INK = colors.Color(0.12, 0.14, 0.16)
_MUTED = colors.Color(0.34, 0.38, 0.42)
_RULE = colors.Color(0.78, 0.8, 0.83)
_SHADE = colors.Color(0.96, 0.97, 0.98)
_GREEN = colors.Color(0.1, 0.5, 0.22)
_RED = colors.Color(0.7, 0.15, 0.12)
_AMBER = colors.Color(0.6, 0.4, 0.0)
_VERDICT_COLOUR = {
    "VALID": _GREEN,
    "INVALID": _RED,
    "MODIFIED": _RED,
    "REVOKED": _RED,
    "UNKNOWN": _RED,
    # Not every party has sealed: nothing is forged, the document is waiting.
    "INCOMPLETE": _AMBER,
}
# The colour of each result; the words are ``verify.words``'s, as on every page.
_RESULT_COLOUR = {"TOTAL_PASSED": _GREEN, "TOTAL_FAILED": _RED, "INDETERMINATE": _AMBER}
_KIND = {
    "official": "公章 official",
    "licence": "证照专用章 licence",
    "contract": "合同专用章 contract",
}
# A run of printable ASCII without spaces stays whole; spaces separate; any other character
# (Chinese) stands alone and may start a line.
_TOKENS = re.compile(r"[!-~]+| +|.", re.DOTALL)
# Chinese line breaking (禁则): closing punctuation never starts a line.
_NO_LINE_START = frozenset("，。、；：？！）》」』】〕〉”’…,.;:?!)]}%")


def _register() -> str:
    if _FONT not in pdfmetrics.getRegisteredFontNames():
        check_font()
        pdfmetrics.registerFont(TTFont(_FONT, io.BytesIO(font_bytes())))
    return _FONT


def wrap_text(text: str, width: float, size: float, font: str = _FONT) -> list[str]:
    """``text`` in lines no wider than ``width``: English breaks at spaces, Chinese between
    characters; a word wider than the line (a hash, a URL) is broken where it must be."""
    if font == _FONT:
        _register()
    lines: list[str] = []
    for paragraph in text.split("\n"):
        lines.extend(_wrap_paragraph(paragraph, width, size, font))
    return lines


def _wrap_paragraph(text: str, width: float, size: float, font: str) -> list[str]:
    def measure(s: str) -> float:
        return float(pdfmetrics.stringWidth(s, font, size))

    tokens: list[str] = []
    for token in _TOKENS.findall(text):
        if token.isspace() or measure(token) <= width:
            tokens.append(token)
            continue
        piece = ""
        for char in token:
            if piece and measure(piece + char) > width:
                tokens.append(piece)
                piece = ""
            piece += char
        tokens.append(piece)
    lines: list[str] = []
    line = ""
    for token in tokens:
        if token.isspace():
            if line:
                line += token
            continue
        hangs = len(token) == 1 and token in _NO_LINE_START
        if not line or hangs or measure(line + token) <= width:
            line += token
            continue
        lines.append(line.rstrip())
        line = token
    if line.strip() or not lines:
        lines.append(line.rstrip())
    return lines


class _Text(Flowable):  # type: ignore[misc]  # ReportLab has no type stubs
    """Text set in the report font, wrapped by :func:`wrap_text` to the space given."""

    def __init__(
        self,
        text: str,
        size: float = 9.0,
        colour: colors.Color = _INK,
        *,
        leading: float = 1.35,
        centred: bool = False,
    ) -> None:
        super().__init__()
        self.text, self.size, self.colour = text, size, colour
        self.leading, self.centred = size * leading, centred
        self.lines: list[str] = []
        self.avail = 0.0

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        self.avail = avail_width
        self.lines = wrap_text(self.text, avail_width, self.size)
        return avail_width, self.leading * len(self.lines)

    def draw(self) -> None:
        canvas = self.canv
        canvas.setFont(_FONT, self.size)
        canvas.setFillColor(self.colour)
        y = self.leading * (len(self.lines) - 1) + (self.leading - self.size) / 2 + 1
        for line in self.lines:
            if self.centred:
                canvas.drawCentredString(self.avail / 2, y, line)
            else:
                canvas.drawString(0, y, line)
            y -= self.leading


def _heading(text: str) -> list[Flowable]:
    return [Spacer(1, 10), _Text(text, 12.5, leading=1.5), Spacer(1, 3)]


def _facts(rows: Sequence[tuple[str, str | _Text]], width: float) -> Table:
    """Label and value rows in a ruled table (labels shaded, a quarter of the width)."""
    label_width = width * 0.27
    data = [
        [_Text(label, 8.5, _MUTED), value if isinstance(value, _Text) else _Text(value, 9)]
        for label, value in rows
    ]
    table = Table(data, colWidths=[label_width, width - label_width])
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, _RULE),
                ("BACKGROUND", (0, 0), (0, -1), _SHADE),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 3),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
            ]
        )
    )
    return table


def _yes(value: bool | None) -> str:
    return {True: "是 Yes", False: "否 No", None: "未知 Unknown"}[value]


def _when(value: datetime | None) -> str:
    """A time as read in China, with its zone: 2026年12月02日 15:42:10 (UTC+8)."""
    if value is None:
        return "—"
    local = value.astimezone(_BEIJING)
    return f"{local.year}年{local.month:02d}月{local.day:02d}日 {local:%H:%M:%S} (UTC+8)"


def _verdict_box(report: Report, width: float) -> Table:
    verdict = report.verdict
    colour = _VERDICT_COLOUR.get(verdict.value, _AMBER)
    cells: list[list[Flowable]] = [
        [_Text("结论 Verdict", 9, colors.white, centred=True)],
        [_Text(verdict.words.both, 22, colors.white, centred=True)],
    ]
    box = Table(cells, colWidths=[width])
    box.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, -1), colour),
                ("TOPPADDING", (0, 0), (-1, -1), 6),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
            ]
        )
    )
    return box


def _summary(report: Report, width: float) -> Table:
    reg = report.registry
    if not reg.consulted:
        status = "未查询 not consulted (offline check)"
    elif not reg.matched:
        status = "本平台未签发此文件 not issued by this service"
    else:
        status = status_words(reg.status).both_long
    rows: list[tuple[str, str]] = []
    if reg.number:
        rows.append(("证照编号 Number", reg.number))
    if reg.holder:
        rows.append(("持证主体 Holder", reg.holder))
    rows.append(("登记状态 Registry status", status))
    if reg.matched:
        rows += [
            ("登记记录 Record", f"{reg.kind} {reg.record_id}"),
            ("匹配方式 Matched by", reg.matched_by or "—"),
            ("签章为登记印章 Signer is the recorded seal", _yes(reg.signer_is_recorded_seal)),
        ]
    rows += [
        ("文件 SHA-256", report.file_sha256),
        ("大小 Size", f"{report.file_size:,} bytes"),
        ("核验时间 Verified at", _when(report.verified_at)),
        ("结构完整 Structure clean", _yes(report.structure.clean)),
        *(("结构问题 Structure problem", p) for p in report.structure.problems),
    ]
    return _facts(rows, width)


def _result(sig: SignatureReport) -> _Text:
    words, colour = sig.indication.words, _RESULT_COLOUR[sig.indication.value]
    detail = f"{words.both} (ETSI {sig.indication.value}"
    detail += f" / {sig.sub_indication})" if sig.sub_indication else ")"
    return _Text(detail, 9, colour)


def _seal(number: int, sig: SignatureReport, width: float) -> list[Flowable]:
    signer = sig.signer
    signer_text = "—"
    department = "—"
    if signer is not None:
        kind = _KIND.get(signer.seal_kind or "", signer.seal_kind or "")
        signer_text = " · ".join(p for p in (signer.seal_name, kind, signer.common_name) if p)
        department = (
            " ".join(p for p in (signer.department_name, signer.department_code) if p) or "—"
        )
    if sig.timestamp is not None:
        time = f"{_when(sig.timestamp.time)}, 时间戳证明 proven by a timestamp"
    else:
        time = f"{_when(sig.signing_time)}, 签章人声称 claimed by the signer"
    rev = sig.revocation
    revocation = f"{rev.state}, {_when(rev.at)}; 来源 sources: {', '.join(rev.sources) or '—'}"
    if rev.revoked_at is not None:
        revocation += f"; 撤销于 revoked {_when(rev.revoked_at)}"
    if rev.reason:
        revocation += f" ({rev.reason})"
    rows: list[tuple[str, str | _Text]] = [
        ("签章人 Signer", signer_text),
        ("盖章机关 Department", department),
        ("盖章时间 Time", time),
        ("级别 Level", f"PAdES {sig.pades_level}" if sig.pades_level else "—"),
        ("结果 Result", _result(sig)),
        (
            "完整 / 有效 / 可信 Intact / valid / trusted",
            f"{_yes(sig.intact)} / {_yes(sig.valid)} / {_yes(sig.trusted)}",
        ),
        ("覆盖范围 Coverage", sig.coverage),
        ("其后改动 Changes after it", sig.modification_level),
        (
            "认证 Certification (DocMDP)",
            f"{sig.certification_level or '—'}; 其后改动在允许范围内 changes allowed: "
            f"{_yes(sig.docmdp_ok)}",
        ),
        ("吊销状态 Revocation", revocation),
    ]
    if sig.algorithms is not None:
        alg = sig.algorithms
        rows.append(
            (
                "算法 Algorithms",
                f"{alg.digest}, {alg.signature}, {alg.key_type} {alg.key_size}; "
                f"强度足够 acceptable: {_yes(alg.acceptable)}",
            )
        )
    rows += [("问题 Problem", problem) for problem in sig.problems]
    title = f"印章 {number} Seal {number}: {sig.field_name}"
    return [KeepTogether([*_heading(title), _facts(rows, width)]), *_chain(sig, width)]


def _chain(sig: SignatureReport, width: float) -> list[Flowable]:
    if not sig.chain:
        return []
    rows: list[tuple[str, str]] = []
    for index, cert in enumerate(sig.chain, 1):
        rows.append(
            (
                f"证书 {index} Certificate {index}",
                f"{cert.subject}\n签发者 issuer: {cert.issuer}\n序列号 serial: {cert.serial}\n"
                f"有效期 valid: {_when(cert.not_before)} – {_when(cert.not_after)}\n"
                f"SHA-256 {cert.sha256}",
            )
        )
    anchor = sig.trust_anchor.subject if sig.trust_anchor else "无 none"
    rows.append(("信任锚 Trust anchor", anchor))
    return [
        KeepTogether(
            [
                Spacer(1, 4),
                _Text("证书链 Certificate chain (签章人在前 signer first)", 9.5, _MUTED),
                Spacer(1, 2),
                _facts(rows, width),
            ]
        )
    ]


def _revisions(report: Report, width: float) -> list[Flowable]:
    rows: list[tuple[str, str]] = []
    for index, sig in enumerate(report.signatures, 1):
        if sig.kind == "seal":
            who = sig.signer.department_name if sig.signer else None
            what = f"印章 seal {sig.field_name}" + (f" · {who}" if who else "")
            when = _when(sig.timestamp.time if sig.timestamp else sig.signing_time)
        else:
            what = f"文档时间戳 document timestamp {sig.field_name}"
            when = _when(sig.timestamp.time if sig.timestamp else None)
        rows.append(
            (f"{index}.", f"{what}\n{when}; 其后改动 changes after: {sig.modification_level}")
        )
    others = report.structure.revisions - len(report.signatures) - 1
    note = (
        f"文件共 {report.structure.revisions} 个版本（原始版本及其增量更新）；"
        f"The file has {report.structure.revisions} revisions (the original and its "
        "incremental updates)."
    )
    if others > 0:
        note += (
            f" 其中 {others} 个为长期验证数据等更新 {others} of them add validation data "
            "(DSS) or other updates."
        )
    return [
        *_heading("版本与签章顺序 Revisions, in the order they were added"),
        _Text(note, 9),
        Spacer(1, 3),
        *([_facts(rows, width)] if rows else []),
    ]


def report_pdf(report: Report, appendices: tuple[Appendix, ...] = ()) -> bytes:
    """The report as a PDF: the verdict and its reasons, the summary, a table per seal with
    its chain, the revisions in order, then the caller's appendices."""
    _register()
    buffer = io.BytesIO()
    width = A4[0] - 2 * _MARGIN
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=_MARGIN,
        rightMargin=_MARGIN,
        topMargin=_MARGIN,
        bottomMargin=_MARGIN,
        title="电子文件核验报告 Verification report",
        producer=report.schema,
        creator="eContract",
        invariant=True,
        lang="zh-CN",
        initialFontName=_FONT,
    )
    story: list[Flowable] = [
        _Text("电子文件核验报告 Verification report", 17, leading=1.4),
        Spacer(1, 8),
        _verdict_box(report, width),
        Spacer(1, 6),
    ]
    for reason in report.reasons:
        story += [_Text(f"• {reason.zh}", 10), _Text(reason.en, 9, _MUTED), Spacer(1, 2)]
    story += [*_heading("概要 Summary"), _summary(report, width)]
    if report.annotated_copy is not None:
        story += [
            *_heading(COPY_WORDS["title"].both),
            _facts(copy_facts(report.annotated_copy), width),
        ]
    if report.envelope is not None:
        story += [
            *_heading(ENVELOPE_WORDS["title"].both),
            _facts(envelope_facts(report.envelope), width),
        ]
    seals = [s for s in report.signatures if s.kind == "seal"]
    for number, sig in enumerate(seals, 1):
        story += _seal(number, sig, width)
    stamps = [s for s in report.signatures if s.kind == "document-timestamp"]
    for sig in stamps:
        rows: list[tuple[str, str | _Text]] = [
            ("时间戳机构 Authority", sig.timestamp.authority if sig.timestamp else "—"),
            ("时间 Time", _when(sig.timestamp.time if sig.timestamp else None)),
            ("结果 Result", _result(sig)),
            *(("问题 Problem", p) for p in sig.problems),
        ]
        story += [
            *_heading(f"文档时间戳 Document timestamp: {sig.field_name}"),
            _facts(rows, width),
        ]
    story += _revisions(report, width)
    for appendix in appendices:
        story += _heading(appendix.title)
        if appendix.note:
            story += [_Text(appendix.note, 9, _MUTED), Spacer(1, 3)]
        if appendix.rows:
            story.append(_facts(list(appendix.rows), width))

    footer = page_footer(f"报告格式 Report format: {report.schema}")
    document.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()


def page_footer(
    text: str, *, font: str = _FONT, margin: float = _MARGIN
) -> Callable[[Canvas, SimpleDocTemplate], None]:
    """The footer of every page of an A4 report: ``text`` at the left (the format's version
    marker goes there, where an auditor finds it on any page), the page number at the right."""

    def footer(canvas: Canvas, document: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont(font, 7.5)
        canvas.setFillColor(_MUTED)
        canvas.drawString(margin, margin / 2, text)
        page = f"第 {document.page} 页 Page {document.page}"
        canvas.drawRightString(A4[0] - margin, margin / 2, page)
        canvas.restoreState()

    return footer
