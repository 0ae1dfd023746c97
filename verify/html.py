"""The printable HTML report an auditor files: Chinese first, English second.

Self-contained (inline CSS, no scripts, no external resources), A4-friendly when printed.
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from verify.report import Appendix, Report, SignatureReport, Verdict

_VERDICT_ZH = {
    Verdict.VALID: "有效",
    Verdict.INVALID: "无效",
    Verdict.MODIFIED: "已被改动",
    Verdict.REVOKED: "已撤销",
    Verdict.SUSPENDED: "已暂停",
    Verdict.EXPIRED: "已过期",
    Verdict.SUPERSEDED: "已变更",
    Verdict.UNKNOWN: "无法识别",
    Verdict.INDETERMINATE: "暂无法确定",
}
_STYLE = (
    "body{font-family:'Noto Serif CJK SC','Songti SC',serif;margin:2em;color:#111}"
    "h1{font-size:1.6em}.verdict{font-size:2em;font-weight:bold;padding:.3em .6em;"
    "border:3px solid}.VALID{color:#1a6b1a}.INVALID,.MODIFIED,.REVOKED{color:#a01010}"
    "table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}"
    "th,td{border:1px solid #999;padding:.25em .5em;text-align:left;vertical-align:top;"
    "font-size:.9em}th{background:#eee;width:28%}code{font-size:.85em;word-break:break-all}"
    "@media print{body{margin:1cm}}"
)


def render_html(report: Report, appendices: tuple[Appendix, ...] = ()) -> str:
    """The report as one HTML page, with the caller's appendices at the end."""
    verdict = report.verdict
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        "<title>电子证照核验报告 Verification report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>电子证照核验报告 <small>Verification report</small></h1>",
        f'<p class="verdict {escape(verdict.value)}">{escape(_VERDICT_ZH[verdict])} '
        f"{escape(verdict.value)}</p>",
        "<h2>结论依据 Reasons</h2><ol>",
        *(f"<li>{escape(r.zh)}<br><i>{escape(r.en)}</i></li>" for r in report.reasons),
        "</ol>",
        "<h2>文件 File</h2>",
        _table(
            [
                ("SHA-256", _code(report.file_sha256)),
                ("大小 Size", f"{report.file_size} bytes"),
                ("核验时间 Verified at", _time(report.verified_at)),
                ("版本数 Revisions", str(report.structure.revisions)),
                ("结构 Structure", _yes(report.structure.clean)),
                *(("问题 Problem", escape(p)) for p in report.structure.problems),
                ("报告格式 Format", escape(report.schema)),
            ]
        ),
        "<h2>登记信息 Registry</h2>",
        _registry(report),
        *(_signature(index, sig) for index, sig in enumerate(report.signatures, 1)),
        *(_appendix(appendix) for appendix in appendices),
        "</body></html>",
    ]
    return "\n".join(parts)


def _registry(report: Report) -> str:
    reg = report.registry
    if not reg.consulted:
        return "<p>未查询登记库 The registry was not consulted (offline check).</p>"
    if not reg.matched:
        return "<p>本平台未签发此文件 This service did not issue this file.</p>"
    return _table(
        [
            ("编号 Record", escape(f"{reg.kind} {reg.record_id} {reg.number or ''}")),
            ("状态 Status", escape(reg.status or "")),
            ("匹配方式 Matched by", escape(reg.matched_by or "")),
            ("登记印章 Recorded seal", _code(reg.recorded_seal_sha256 or "")),
            ("签章为登记印章 Signer is that seal", _yes(reg.signer_is_recorded_seal)),
        ]
    )


def _signature(index: int, sig: SignatureReport) -> str:
    title = "印章 Seal" if sig.kind == "seal" else "文档时间戳 Document timestamp"
    rows = [
        ("字段 Field", escape(sig.field_name)),
        ("ETSI", escape(f"{sig.indication.value} {sig.sub_indication or ''}")),
        (
            "完整 Intact / 有效 Valid / 可信 Trusted",
            f"{_yes(sig.intact)} / {_yes(sig.valid)} / {_yes(sig.trusted)}",
        ),
        ("覆盖范围 Coverage", escape(sig.coverage)),
        ("其后改动 Changes after", escape(sig.modification_level)),
        (
            "认证 Certification (DocMDP)",
            escape(f"{sig.certification_level or '-'} ok={sig.docmdp_ok}"),
        ),
        ("声称签署时间 Claimed signing time", _time(sig.signing_time)),
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
        rows.append(
            (
                "时间戳 Timestamp",
                escape(
                    f"{ts.authority}, {ts.time.isoformat()}, intact={ts.intact}"
                    f" valid={ts.valid} trusted={ts.trusted}"
                ),
            )
        )
    rev = sig.revocation
    rows.append(
        (
            "吊销状态 Revocation",
            escape(
                f"{rev.state} at {rev.at.isoformat() if rev.at else '-'}"
                f" from {', '.join(rev.sources) or '-'}"
            ),
        )
    )
    if sig.algorithms is not None:
        alg = sig.algorithms
        rows.append(
            (
                "算法 Algorithms",
                escape(
                    f"{alg.digest}, {alg.signature}, {alg.key_type}-"
                    f"{alg.key_size}, acceptable={alg.acceptable}"
                ),
            )
        )
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
    return f"<h2>{index}. {title}</h2>" + _table(rows)


def _appendix(appendix: Appendix) -> str:
    note = f"<p>{escape(appendix.note)}</p>" if appendix.note else ""
    rows = [(escape(label), _code(value)) for label, value in appendix.rows]
    return f"<h2>{escape(appendix.title)}</h2>{note}" + _table(rows)


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{head}</th><td>{cell}</td></tr>" for head, cell in rows)
    return f"<table>{body}</table>"


def _code(text: str) -> str:
    return f"<code>{escape(text)}</code>"


def _yes(value: bool | None) -> str:
    return {True: "是 yes", False: "否 no", None: "未知 unknown"}[value]


def _time(value: datetime | None) -> str:
    return escape(value.isoformat()) if value is not None else "-"
