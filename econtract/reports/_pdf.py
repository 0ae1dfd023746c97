"""The monthly report drawn as a PDF (A4, the project's font, Chinese first, English second).

It reads top down: the month's summary beside the month before, a line per department,
then each figure as a table (issuance per week, revocations and suspensions by reason,
envelopes by status, completion times, uses by other departments, QR scans per week) and
the warnings with their handling. Tables are reportlab's; a cell that can run long (a
department's name, a warning's description and notes) is a Paragraph, the rest are single
lines.
"""

from __future__ import annotations

import dataclasses
import io
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
)
from reportlab.platypus.tables import TableStyle

from econtract.clock import CHINA
from econtract.report_pdf import page_footer
from econtract.reports._monthly import REPORT_FORMAT, MonthlyReport, Totals
from econtract.supervision import Chart, Series, WarningView, chart_drawing
from econtract.supervision._charts import ChartKind
from signing.fonts import check_font, font_bytes

_FONT = "EContractMonthly"
_MARGIN = 45.0
_WIDTH = A4[0] - 2 * _MARGIN
_INK = colors.Color(0.12, 0.14, 0.16)
_MUTED = colors.Color(0.34, 0.38, 0.42)
_RULE = colors.Color(0.78, 0.8, 0.83)
_SHADE = colors.Color(0.94, 0.95, 0.97)

_STATUS = {
    "revoked": "撤销 revoked",
    "suspended": "暂停 suspended",
    "open": "进行中 open",
    "completed": "已完成 completed",
    "declined": "已拒绝 declined",
    "cancelled": "已撤回 cancelled",
    "expired": "已过期 expired",
}
_WARNING_STATUS = {
    "open": "未处理 open",
    "acknowledged": "已确认 acknowledged",
    "closed": "已关闭 closed",
}
_PERCENTILES = {"median": "中位数 median", "p90": "90百分位 p90"}
_SCANS = {"scans": "扫码 scans", "forged-or-unknown": "伪造或未知 FORGED or UNKNOWN"}
_ENVELOPE_STATUSES = ("open", "completed", "declined", "cancelled", "expired")


def _register() -> None:
    if _FONT not in pdfmetrics.getRegisteredFontNames():
        check_font()
        pdfmetrics.registerFont(TTFont(_FONT, io.BytesIO(font_bytes())))


def _style(size: float, colour: colors.Color = _INK) -> ParagraphStyle:
    return ParagraphStyle(
        f"monthly-{size}",
        fontName=_FONT,
        fontSize=size,
        leading=size * 1.35,
        textColor=colour,
        # Reportlab's own wrapping: English at spaces; a run without spaces wider than the
        # cell (Chinese) is split where it must be (splitLongWords).
        splitLongWords=True,
    )


def _para(text: str, size: float = 7.5, colour: colors.Color = _INK) -> Paragraph:
    # Paragraph reads markup: the text is escaped, its line breaks kept.
    return Paragraph(escape(text).replace("\n", "<br/>"), _style(size, colour))


def _heading(text: str) -> list[Flowable]:
    return [Spacer(1, 12), _para(text, 12.5), Spacer(1, 4)]


def _section(title: str, *first: Flowable) -> list[Flowable]:
    """A section's heading kept on one page with what comes first under it (a chart)."""
    return [KeepTogether([*_heading(title), *first])]


def _note(text: str) -> list[Flowable]:
    return [_para(text, 8, _MUTED), Spacer(1, 3)]


def _table(
    header: Sequence[str],
    rows: Sequence[Sequence[str | Paragraph]],
    widths: Sequence[float],
    *,
    size: float = 7.5,
) -> Flowable:
    """A ruled table with a shaded header repeated on every page; numbers right-aligned."""
    if not rows:
        return _para("本月无记录 Nothing this month.", 8, _MUTED)
    data = [[_para(h, size, _MUTED) for h in header], *[list(row) for row in rows]]
    table = Table(data, colWidths=list(widths), repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), _FONT),
                ("FONTSIZE", (0, 0), (-1, -1), size),
                ("TEXTCOLOR", (0, 0), (-1, -1), _INK),
                ("GRID", (0, 0), (-1, -1), 0.5, _RULE),
                ("BACKGROUND", (0, 0), (-1, 0), _SHADE),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("ALIGN", (1, 1), (-1, -1), "RIGHT"),
                ("TOPPADDING", (0, 0), (-1, -1), 2.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
            ]
        )
    )
    return table


def _chart(
    title_zh: str,
    title_en: str,
    kind: ChartKind,
    series: Series,
    *,
    unit: tuple[str, str] = ("", ""),
    height: float = 190.0,
) -> list[Flowable]:
    """A chart of the figure (supervision's own drawing, as on the console), then a gap."""
    chart = Chart(
        title_zh=title_zh,
        title_en=title_en,
        kind=kind,
        series=(series,),
        unit_zh=unit[0],
        unit_en=unit[1],
    )
    return [chart_drawing(chart, width=_WIDTH, height=height, font_name=_FONT), Spacer(1, 6)]


def _in_hours(series: Series) -> Series:
    return dataclasses.replace(
        series, points=tuple(dataclasses.replace(p, y=round(p.y / 3600, 2)) for p in series.points)
    )


def _relabelled(series: Series, labels: dict[str, str]) -> Series:
    """The points of ``labels``' keys only, named in both languages for the legend."""
    return dataclasses.replace(
        series,
        points=tuple(
            dataclasses.replace(p, label=labels[p.label])
            for p in series.points
            if p.label in labels
        ),
    )


def _pairs(series: Series) -> Series:
    """The uses' pairs ``user → issuer`` with an arrow the project's font has (it has no →)."""
    return dataclasses.replace(
        series,
        points=tuple(
            dataclasses.replace(p, label=p.label.replace("→", "▶")) for p in series.points
        ),
    )


def _hours(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 3600:.1f}"


def _change(now: float, before: float) -> str:
    difference = now - before
    sign = "+" if difference > 0 else ""
    if not before:
        return f"{sign}{difference:g}"
    return f"{sign}{difference:g} ({sign}{difference / before:.0%})"


def _share(share: float) -> str:
    return f"{share:.1%}"


def _when(value: datetime | None) -> str:
    return value.astimezone(CHINA).strftime("%Y-%m-%d %H:%M") if value else "—"


def _summary(now: Totals, before: Totals) -> Flowable:
    rows: list[tuple[str, float, float]] = [
        ("签发证照 Licences issued", now.issued, before.issued),
        ("撤销 Revoked", now.revoked, before.revoked),
        ("暂停 Suspended", now.suspended, before.suspended),
        ("发起信封 Envelopes started", now.envelopes_started, before.envelopes_started),
        ("其中已完成 … of them completed", now.envelopes_completed, before.envelopes_completed),
        ("跨部门用证 Uses by other departments", now.uses, before.uses),
        ("扫码核验 QR scans", now.scans, before.scans),
        ("伪造或未知 FORGED or UNKNOWN", now.failed_scans, before.failed_scans),
        ("监察预警 Warnings raised", now.warnings, before.warnings),
    ]
    cells: list[list[str | Paragraph]] = [
        [label, f"{a:g}", f"{b:g}", _change(a, b)] for label, a, b in rows
    ]
    cells.append(
        [
            "伪造或未知占比 Share FORGED or UNKNOWN",
            _share(now.failed_share),
            _share(before.failed_share),
            f"{(now.failed_share - before.failed_share) * 100:+.1f} pp",
        ]
    )
    return _table(
        ["指标 Figure", "本月 This month", "上月 Last month", "变化 Change"],
        cells,
        [_WIDTH * 0.4, _WIDTH * 0.18, _WIDTH * 0.18, _WIDTH * 0.24],
        size=8.5,
    )


def _departments(report: MonthlyReport) -> Flowable:
    header = [
        "部门 Department",
        "签发 Issued",
        "撤销 Revoked",
        "暂停 Susp.",
        "信封 完成/发起 Env. done/all",
        "完成时长 中位/P90 Hours p50/p90",
        "用他部门证照 Uses made",
        "被他部门使用 Used by others",
        "扫码（伪造或未知）Scans (failed)",
        "预警（未处理）Warnings (open)",
    ]
    rows = [
        [
            _para(f"{row.name}\n{row.code}", 7),
            str(row.issued),
            str(row.revoked),
            str(row.suspended),
            f"{row.envelopes_completed}/{row.envelopes_started}",
            f"{_hours(row.completion_median)}/{_hours(row.completion_p90)}",
            str(row.uses_made),
            str(row.uses_of_its_licences),
            f"{row.scans} ({row.failed_scans})",
            f"{row.warnings} ({row.warnings_open})",
        ]
        for row in report.departments
    ]
    first = _WIDTH * 0.22
    return _table(header, rows, [first] + [(_WIDTH - first) / 9] * 9, size=7)


def _by_label(series: Series) -> tuple[list[str], dict[str, Counter[str]]]:
    """The series' x values in order, and each label's values by x."""
    xs: list[str] = []
    values: dict[str, Counter[str]] = defaultdict(Counter)
    for point in series.points:
        if point.x not in xs:
            xs.append(point.x)
        values[point.label][point.x] += int(point.y)
    return sorted(xs), values


def _issued(report: MonthlyReport) -> Flowable:
    weeks, values = _by_label(report.issued_per_week)
    rows = [
        [_para(label, 7), *(str(counts[week]) for week in weeks), str(sum(counts.values()))]
        for label, counts in sorted(values.items())
    ]
    first = _WIDTH * 0.4
    rest = (_WIDTH - first) / (len(weeks) + 1)
    return _table(
        ["部门 · 证照类型 Department · type", *weeks, "合计 Total"],
        rows,
        [first] + [rest] * (len(weeks) + 1),
    )


def _reasons(report: MonthlyReport) -> Flowable:
    rows = [
        [
            _STATUS.get(r.status, r.status),
            _para(r.reason or "（未说明）(none given)", 7.5),
            str(r.count),
        ]
        for r in report.reasons
    ]
    return _table(
        ["状态 Status", "原因 Reason", "数量 Count"],
        rows,
        [_WIDTH * 0.22, _WIDTH * 0.63, _WIDTH * 0.15],
    )


def _envelopes(report: MonthlyReport) -> Flowable:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for point in report.envelopes.points:
        counts[point.label][point.status or point.x] += int(point.y)
    rows = [
        [
            _para(name, 7.5),
            *(str(by_status[s]) for s in _ENVELOPE_STATUSES),
            str(sum(by_status.values())),
        ]
        for name, by_status in sorted(counts.items())
    ]
    first = _WIDTH * 0.3
    rest = (_WIDTH - first) / (len(_ENVELOPE_STATUSES) + 1)
    return _table(
        ["发起部门 Initiator", *(_STATUS[s] for s in _ENVELOPE_STATUSES), "合计 Total"],
        rows,
        [first] + [rest] * (len(_ENVELOPE_STATUSES) + 1),
    )


def _completion(report: MonthlyReport) -> Flowable:
    def per_department(series: Series) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = defaultdict(dict)
        for point in series.points:
            out[point.x][point.label] = point.y
        return out

    now, before = per_department(report.completion), per_department(report.completion_before)
    rows = [
        [
            _para(name, 7.5),
            _hours(now[name].get("median")),
            _hours(now[name].get("p90")),
            _hours(before.get(name, {}).get("median")),
            _hours(before.get(name, {}).get("p90")),
        ]
        for name in sorted(now)
    ]
    first = _WIDTH * 0.36
    return _table(
        [
            "发起部门 Initiator",
            "本月中位数 Median (h)",
            "本月P90 p90 (h)",
            "上月中位数 Last month median (h)",
            "上月P90 Last month p90 (h)",
        ],
        rows,
        [first] + [(_WIDTH - first) / 4] * 4,
    )


def _uses(report: MonthlyReport) -> Flowable:
    pairs = Counter[str]()
    for point in _pairs(report.uses).points:
        pairs[point.label] += int(point.y)
    rows = [[_para(label, 7.5), str(n)] for label, n in sorted(pairs.items(), key=lambda i: -i[1])]
    return _table(
        ["用证部门 ▶ 发证部门 Using ▶ issuing department", "次数 Uses"],
        rows,
        [_WIDTH * 0.8, _WIDTH * 0.2],
    )


def _scans(report: MonthlyReport) -> Flowable:
    weeks: dict[date, Counter[str]] = defaultdict(Counter)
    for point in report.scans.points:
        if point.day is not None and point.label in ("scans", "forged-or-unknown"):
            monday = point.day - timedelta(days=point.day.weekday())
            weeks[monday][point.label] += int(point.y)
    rows = []
    for monday, counts in sorted(weeks.items()):
        total, bad = counts["scans"], counts["forged-or-unknown"]
        year, week, _ = monday.isocalendar()
        rows.append(
            [f"{year}-W{week:02d}", str(total), str(bad), _share(bad / total if total else 0.0)]
        )
    return _table(
        ["周 Week", "扫码 Scans", "伪造或未知 FORGED or UNKNOWN", "占比 Share"],
        rows,
        [_WIDTH * 0.25] * 4,
    )


def _warning_counts(report: MonthlyReport) -> Flowable:
    rules = sorted({rule for rule, _ in report.warning_counts})
    statuses = tuple(_WARNING_STATUS)
    rows = [
        [
            rule,
            *(str(report.warning_counts.get((rule, s), 0)) for s in statuses),
            str(sum(report.warning_counts.get((rule, s), 0) for s in statuses)),
        ]
        for rule in rules
    ]
    return _table(
        ["规则 Rule", *_WARNING_STATUS.values(), "合计 Total"],
        rows,
        [_WIDTH * 0.32] + [_WIDTH * 0.17] * 4,
    )


def _handling(warning: WarningView) -> str:
    lines = []
    if warning.acknowledged_at:
        lines.append(
            f"确认 acknowledged {_when(warning.acknowledged_at)} {warning.acknowledged_by}"
        )
    if warning.closed_at:
        lines.append(f"关闭 closed {_when(warning.closed_at)} {warning.closed_by}")
    if warning.note:
        lines.append(warning.note)
    return "\n".join(lines) or "—"


def _warnings(report: MonthlyReport) -> Flowable:
    rows = [
        [
            _para(f"{_when(w.raised_at)}\n{w.rule_id}", 6.5),
            _para(report.names.get(w.department_id, "—") if w.department_id else "—", 6.5),
            _para(f"{w.description_zh}\n{w.description_en}", 6.5),
            _para(_WARNING_STATUS.get(w.status.value, w.status.value), 6.5),
            _para(_handling(w), 6.5),
        ]
        for w in report.warnings
    ]
    return _table(
        [
            "时间 · 规则 Raised · rule",
            "部门 Department",
            "说明 Description",
            "状态 Status",
            "处理 Handling",
        ],
        rows,
        [_WIDTH * 0.16, _WIDTH * 0.14, _WIDTH * 0.33, _WIDTH * 0.13, _WIDTH * 0.24],
        size=6.5,
    )


def title_of(report: MonthlyReport) -> str:
    """The report's title: ``电子监察月度通报 2026年11月``."""
    return f"电子监察月度通报 {report.month.zh}"


def monthly_report_pdf(report: MonthlyReport) -> bytes:
    """The report as a PDF (unsealed): the summary, the departments, each figure, the
    warnings; the format's version marker and the page number in every page's footer."""
    _register()
    buffer = io.BytesIO()
    scope = (
        f"{report.department_name}（{report.department_code}）"
        if report.department_code
        else "全省 Province"
    )
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=_MARGIN,
        rightMargin=_MARGIN,
        topMargin=_MARGIN,
        bottomMargin=_MARGIN,
        title=f"{title_of(report)} Monthly supervision report {report.month}",
        subject=scope,
        producer=REPORT_FORMAT,
        creator="eContract",
        invariant=True,
        lang="zh-CN",
        initialFontName=_FONT,
    )
    period = report.month.period
    last = period.until - timedelta(days=1)
    story: list[Flowable] = [
        _para(title_of(report), 18),
        Spacer(1, 4),
        _para(f"Monthly supervision report {report.month} · {scope}", 10, _MUTED),
        _para(
            f"统计期间 Period: {period.since.isoformat()} – {last.isoformat()}"
            f"（北京时间 China time） · 生成时间 Made at: {_when(report.made_at)}",
            8,
            _MUTED,
        ),
        *_section("一、概要 Summary", _summary(report.totals, report.totals_before)),
        *_section(
            "二、各部门情况 By department",
            *_note(
                "完成时长为本月完成的、由该部门发起的信封自发起至完成的小时数。"
                "Completion: hours from start to completion of the envelopes it initiated "
                "that completed this month."
            ),
            _departments(report),
        ),
        *_section(
            "三、证照签发（按周）Licences issued per week",
            *_chart("签发量", "Issued", "stacked", report.issued_per_week, unit=("张", "licences")),
        ),
        _issued(report),
        *_section(
            "四、撤销与暂停（按原因）Revocations and suspensions by reason",
            *_chart("撤销与暂停", "Revocations and suspensions", "stacked", report.status_changes),
        ),
        _reasons(report),
        *_section(
            "五、信封（按状态）Envelopes started this month, by status now",
            *_chart("信封状态", "Envelopes by status", "stacked", report.envelopes),
        ),
        _envelopes(report),
        *_section(
            "六、信封完成时长 Envelope completion time",
            *_chart(
                "完成时长",
                "Completion time",
                "bar",
                _relabelled(_in_hours(report.completion), _PERCENTILES),
                unit=("小时", "hours"),
            ),
        ),
        _completion(report),
        *_section(
            "七、跨部门用证 Uses of licences by other departments",
            *_chart("跨部门用证", "Uses by other departments", "stacked", _pairs(report.uses)),
        ),
        _uses(report),
        *_section(
            "八、扫码核验 QR scans",
            *_chart(
                "扫码核验",
                "QR scans",
                "line",
                _relabelled(report.scans, _SCANS),
            ),
        ),
        _scans(report),
        *_section("九、监察预警及处理 Early warnings and their handling", _warning_counts(report)),
        Spacer(1, 6),
        _warnings(report),
    ]
    listed = len(report.warnings)
    if report.totals.warnings > listed:
        story += _note(
            f"仅列出前 {listed} 条（共 {report.totals.warnings} 条）。"
            f"The first {listed} of {report.totals.warnings} are listed."
        )

    footer = page_footer(f"{title_of(report)} · {REPORT_FORMAT}", font=_FONT, margin=_MARGIN)
    document.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()
