"""The HTML report: what a person reads first on its face, what an auditor checks behind it.

The face says, Chinese first and English second, the verdict and why, the licence's number
and holder, the registry's status, an envelope's parties in order and how many have sealed,
and every seal: which department sealed, when, and
whether the seal holds, in plain words. The ETSI EN 319 102-1 indications, the certificate
chains, the file's structure and the caller's appendices (the transparency log's proof) are
behind a ``<details>`` disclosure. Self-contained (inline CSS, no scripts, no external
resources); the printable report is the PDF, linked as a ``data:`` URL when given.

Every style is scoped to ``.report`` so that the upload page can show the report inside itself.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from html import escape

from verify.annotated import copy_facts
from verify.envelope import envelope_facts
from verify.report import Appendix, Report, SignatureReport
from verify.words import COPY_WORDS, ENVELOPE_WORDS, Words, status_words

_BEIJING = timezone(timedelta(hours=8))
_STYLE = (
    ".report{font-family:system-ui,'Noto Sans CJK SC','PingFang SC','Microsoft YaHei',"
    "sans-serif;color:#1f2328;line-height:1.5;max-width:48rem;margin:0 auto;padding:1rem}"
    ".report h1{font-size:1.35rem}.report h2{font-size:1.1rem;margin:1.25rem 0 .5rem}"
    ".report .en{color:#57606a;font-weight:400;font-size:.9em}"
    ".report .verdict{border-radius:1rem;padding:1rem;text-align:center;color:#fff}"
    ".report .verdict .zh{font-size:2.4rem;font-weight:700;letter-spacing:.1em}"
    ".report .verdict .en{color:#fff;font-size:1.15rem;font-weight:600;letter-spacing:.15em}"
    ".report .VALID{background:#1a7f37}"
    ".report .INVALID,.report .MODIFIED,.report .REVOKED,.report .UNKNOWN{background:#b3261e}"
    ".report .SUSPENDED,.report .EXPIRED,.report .SUPERSEDED,.report .INCOMPLETE,"
    ".report .INDETERMINATE"
    "{background:#9a6700}"
    ".report table{border-collapse:collapse;width:100%;margin:.25rem 0 1rem;background:#fff}"
    ".report th,.report td{border:1px solid #d0d7de;padding:.35rem .5rem;text-align:left;"
    "vertical-align:top;font-size:.92em}.report td{overflow-wrap:anywhere}"
    ".report th{background:#f6f8fa;font-weight:600}"
    ".report table.facts th{width:30%}"
    ".report .ok{color:#1a7f37;font-weight:600}.report .bad{color:#b3261e;font-weight:600}"
    ".report .warn{color:#9a6700;font-weight:600}"
    ".report code{font-size:.85em;overflow-wrap:anywhere}"
    ".report a.pdf{display:inline-block;margin:.5rem 0;padding:.55rem 1rem;border-radius:.5rem;"
    "background:#0969da;color:#fff;text-decoration:none}"
    ".report details{margin-top:1.5rem}.report summary{cursor:pointer;font-weight:600}"
    "@media print{.report a.pdf{display:none}}"
)

# The tone (colour) of each word; the words themselves are ``verify.words``'s.
_STATUS_TONE = {
    "valid": "ok",
    "revoked": "bad",
    "suspended": "warn",
    "superseded": "warn",
    "expired": "warn",
}
_RESULT_TONE = {"TOTAL_PASSED": "ok", "TOTAL_FAILED": "bad", "INDETERMINATE": "warn"}


def render_html(
    report: Report, appendices: tuple[Appendix, ...] = (), *, pdf: bytes | None = None
) -> str:
    """The report as one HTML page, with the caller's appendices behind the disclosure and,
    when ``pdf`` is given, a link that saves it (the printable report)."""
    verdict = report.verdict
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>电子证照核验报告 Verification report</title>",
        f"<style>{_STYLE}</style></head><body>",
        '<main class="report">',
        '<h1>电子证照核验报告 <span class="en">Verification report</span></h1>',
        f'<section class="verdict {escape(verdict.value)}" role="status">'
        f'<div class="zh">{escape(verdict.words.zh)}</div>'
        f'<div class="en">{escape(verdict.words.en)}</div></section>',
        '<h2>结论依据 <span class="en">Why</span></h2><ol class="reasons">',
        *(
            f'<li>{escape(r.zh)}<br><span class="en">{escape(r.en)}</span></li>'
            for r in report.reasons
        ),
        "</ol>",
        _summary(report),
        _copy(report),
        _envelope(report),
        _seals(report),
        _pdf_link(report, pdf),
        '<details><summary>技术细节（供审计） <span class="en">Details for auditors</span>'
        "</summary>",
        '<h2>文件 <span class="en">File</span></h2>',
        _facts(
            [
                ("SHA-256", _code(report.file_sha256)),
                ("大小 Size", f"{report.file_size} bytes"),
                ("核验时间 Verified at", _iso(report.verified_at)),
                ("版本数 Revisions", str(report.structure.revisions)),
                ("结构完整 Structure clean", _yes(report.structure.clean)),
                *(("问题 Problem", escape(p)) for p in report.structure.problems),
                ("报告格式 Format", escape(report.schema)),
            ]
        ),
        '<h2>登记簿 <span class="en">Registry</span></h2>',
        _registry(report),
        *(_signature(index, sig) for index, sig in enumerate(report.signatures, 1)),
        *(_appendix(appendix) for appendix in appendices),
        "</details>",
        "</main></body></html>",
    ]
    return "\n".join(parts)


def _summary(report: Report) -> str:
    reg = report.registry
    if not reg.consulted:
        status = '未查询登记簿 <span class="en">the registry was not asked</span>'
    elif not reg.matched:
        status = (
            '<span class="bad">本平台未登记此文件</span> '
            '<span class="en">not registered with this service</span>'
        )
    else:
        words = status_words(reg.status)
        tone = _STATUS_TONE.get(reg.status or "", "")
        status = (
            f'<span class="{tone}">{escape(words.long_zh)}</span> '
            f'<span class="en">{escape(words.long_en)}</span>'
        )
    rows = []
    if reg.number:
        rows.append(('证照编号 <span class="en">Number</span>', escape(reg.number)))
    if reg.holder:
        rows.append(('持证主体 <span class="en">Holder</span>', escape(reg.holder)))
    rows.append(('登记状态 <span class="en">Registry status</span>', status))
    return '<h2>概要 <span class="en">Summary</span></h2>' + _facts(rows)


def _copy(report: Report) -> str:
    """An annotated copy's section: for whom, for what, until when, the original's verdict."""
    copy = report.annotated_copy
    return "" if copy is None else _plain_section(COPY_WORDS["title"], copy_facts(copy))


def _envelope(report: Report) -> str:
    """The parties in the file's order, each with its state, under the progress sentence."""
    envelope = report.envelope
    if envelope is None:
        return ""
    return _plain_section(ENVELOPE_WORDS["title"], envelope_facts(envelope))


def _plain_section(title: Words, facts: tuple[tuple[str, str], ...]) -> str:
    """A section of label and value pairs in plain text, under its title."""
    rows = [(escape(label), escape(value)) for label, value in facts]
    return f'<h2>{escape(title.zh)} <span class="en">{escape(title.en)}</span></h2>' + _facts(rows)


def _seals(report: Report) -> str:
    """Every seal as a short table a phone shows without scrolling sideways."""
    seals = [sig for sig in report.signatures if sig.kind == "seal"]
    if not seals:
        return (
            '<h2>印章 <span class="en">Seals</span></h2>'
            '<p>文件中没有电子印章。 <span class="en">The file carries no seal.</span></p>'
        )
    tables = []
    for number, sig in enumerate(seals, 1):
        signer = sig.signer
        department = (signer.department_name or signer.common_name or "-") if signer else "-"
        seal = (signer.seal_name or "-") if signer else "-"
        words, tone = sig.indication.words, _RESULT_TONE[sig.indication.value]
        tables.append(
            _facts(
                [
                    (f'印章 {number} <span class="en">Seal {number}</span>', escape(seal)),
                    ('盖章机关 <span class="en">Department</span>', escape(department)),
                    ('盖章时间 <span class="en">Sealed at</span>', _sealed_at(sig)),
                    (
                        '结果 <span class="en">Result</span>',
                        f'<span class="{tone}">{escape(words.zh)}</span> '
                        f'<span class="en">{escape(words.en)}</span>',
                    ),
                ]
            )
        )
    return '<h2>印章 <span class="en">Seals</span></h2>' + "".join(tables)


def _sealed_at(sig: SignatureReport) -> str:
    """The proven time (the seal's timestamp) when there is one, else the claimed time."""
    if sig.timestamp is not None:
        return _beijing(sig.timestamp.time) + ' <span class="en">(时间戳 timestamped)</span>'
    if sig.signing_time is not None:
        return _beijing(sig.signing_time) + ' <span class="en">(声称 claimed)</span>'
    return "-"


def _pdf_link(report: Report, pdf: bytes | None) -> str:
    if pdf is None:
        return ""
    href = "data:application/pdf;base64," + base64.b64encode(pdf).decode("ascii")
    name = f"verification-report-{report.file_sha256[:12]}.pdf"
    return (
        f'<p><a class="pdf" href="{href}" download="{name}">下载打印版报告（PDF） '
        "Printable report (PDF)</a></p>"
    )


def _registry(report: Report) -> str:
    reg = report.registry
    if not reg.consulted:
        return "<p>未查询登记簿 The registry was not consulted (offline check).</p>"
    if not reg.matched:
        return "<p>本平台未签发此文件 This service did not issue this file.</p>"
    return _facts(
        [
            ("记录 Record", escape(f"{reg.kind} {reg.record_id}")),
            ("编号 Number", escape(reg.number or "-")),
            ("状态 Status", escape(reg.status or "-")),
            ("匹配方式 Matched by", escape(reg.matched_by or "-")),
            ("登记印章 Recorded seal", _code(reg.recorded_seal_sha256 or "-")),
            ("签章为登记印章 Signer is that seal", _yes(reg.signer_is_recorded_seal)),
        ]
    )


def _signature(index: int, sig: SignatureReport) -> str:
    title = "印章 Seal" if sig.kind == "seal" else "文档时间戳 Document timestamp"
    rows = [
        ("字段 Field", escape(sig.field_name)),
        ("ETSI EN 319 102-1", escape(f"{sig.indication.value} {sig.sub_indication or ''}")),
        ("完整 Intact", _yes(sig.intact)),
        ("有效 Valid", _yes(sig.valid)),
        ("可信 Trusted", _yes(sig.trusted)),
        ("覆盖范围 Coverage", escape(sig.coverage)),
        ("其后改动 Changes after", escape(sig.modification_level)),
        ("认证 Certification (DocMDP)", escape(sig.certification_level or "-")),
        ("认证允许其后改动 Changes within certification", _yes(sig.docmdp_ok)),
        ("声称签署时间 Claimed signing time", _iso(sig.signing_time)),
        ("PAdES", escape(sig.pades_level or "-")),
    ]
    if sig.signer is not None:
        signer = sig.signer
        rows += [
            (
                "签章机构 Department",
                escape(
                    f"{signer.department_name or signer.common_name or '-'}"
                    f" {signer.department_code or ''}"
                ),
            ),
            ("印章 Seal", escape(f"{signer.seal_name or '-'} ({signer.seal_kind or '-'})")),
        ]
    if sig.timestamp is not None:
        ts = sig.timestamp
        rows += [
            ("时间戳 Timestamp", f"{escape(ts.authority)}, {_iso(ts.time)}"),
            (
                "时间戳完整 / 有效 / 可信 Intact / valid / trusted",
                f"{_yes(ts.intact)} / {_yes(ts.valid)} / {_yes(ts.trusted)}",
            ),
        ]
    rev = sig.revocation
    rows.append(
        (
            "吊销状态 Revocation",
            escape(f"{rev.state} at {_iso(rev.at)} from {', '.join(rev.sources) or '-'}")
            + (escape(f"; revoked {_iso(rev.revoked_at)}") if rev.revoked_at else "")
            + (escape(f" ({rev.reason})") if rev.reason else ""),
        )
    )
    if sig.algorithms is not None:
        alg = sig.algorithms
        rows += [
            (
                "算法 Algorithms",
                escape(f"{alg.digest}, {alg.signature}, {alg.key_type}-{alg.key_size}"),
            ),
            ("算法强度足够 Algorithms acceptable", _yes(alg.acceptable)),
        ]
    for cert in sig.chain:
        rows.append(
            (
                "证书 Certificate",
                f"{escape(cert.subject)}<br>serial {escape(cert.serial)}<br>{_code(cert.sha256)}",
            )
        )
    rows.append(
        ("信任锚 Trust anchor", escape(sig.trust_anchor.subject) if sig.trust_anchor else "无 none")
    )
    rows += [("问题 Problem", escape(p)) for p in sig.problems]
    return f"<h2>{index}. {title}</h2>" + _facts(rows)


def _appendix(appendix: Appendix) -> str:
    note = f"<p>{escape(appendix.note)}</p>" if appendix.note else ""
    rows = [(escape(label), _code(value)) for label, value in appendix.rows]
    return f"<h2>{escape(appendix.title)}</h2>{note}" + _facts(rows)


def _facts(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{head}</th><td>{cell}</td></tr>" for head, cell in rows)
    return f'<table class="facts">{body}</table>'


def _code(text: str) -> str:
    return f"<code>{escape(text)}</code>"


def _yes(value: bool | None) -> str:
    return {True: "是 Yes", False: "否 No", None: "未知 Unknown"}[value]


def _beijing(value: datetime) -> str:
    """A time as a person in China reads it: 2026年12月02日 15:42:10 (UTC+8)."""
    local = value.astimezone(_BEIJING)
    return escape(f"{local.year}年{local.month:02d}月{local.day:02d}日 {local:%H:%M:%S} (UTC+8)")


def _iso(value: datetime | None) -> str:
    return escape(value.isoformat(timespec="seconds")) if value is not None else "-"
