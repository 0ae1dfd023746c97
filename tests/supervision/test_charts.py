"""The charts drawn by the service: an SVG that parses, one mark per point at its value's
height, links escaped, an honest empty chart, and the same chart in a PDF."""

from __future__ import annotations

import io
import subprocess
import xml.etree.ElementTree as ET
from datetime import date
from typing import Any

import pytest
from reportlab.graphics import renderPDF
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

from econtract.supervision import Chart, Point, Series, chart_drawing, chart_svg
from econtract.supervision._charts import _Element
from signing.fonts import font_bytes

SVG = "{http://www.w3.org/2000/svg}"
FONT = "EContractChartTest"


def _points(label: str, values: dict[str, float]) -> tuple[Point, ...]:
    return tuple(Point(label=label, x=x, y=y, day=date.fromisoformat(x)) for x, y in values.items())


ISSUED = Series(
    name="issued-per-day",
    points=_points("市场监管局 · 营业执照", {"2026-11-16": 2, "2026-11-17": 6, "2026-11-18": 3})
    + _points("交通局 · 道路运输证", {"2026-11-17": 1}),
)


def _chart(kind: str = "bar", *series: Series) -> Chart:
    return Chart(
        title_zh="每日发证",
        title_en="Issued per day",
        kind=kind,  # type: ignore[arg-type]
        series=series or (ISSUED,),
        unit_zh="张",
        unit_en="certificates",
    )


def _bars(svg: str) -> list[ET.Element]:
    return [e for e in ET.fromstring(svg).iter() if e.get("class") == "mark"]


@pytest.mark.parametrize("kind", ["bar", "stacked", "line"])
def test_svg_parses_with_one_mark_per_point(kind: str) -> None:
    svg = chart_svg(_chart(kind))
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("width") == "100%"
    assert root.get("viewBox") == "0 0 640 320"
    assert root.find(f"{SVG}title").text == "每日发证 Issued per day"  # type: ignore[union-attr]
    assert "4 个数值 values" in (root.find(f"{SVG}desc").text or "")  # type: ignore[union-attr]
    assert len(_bars(svg)) == 4


def test_bar_heights_follow_the_values() -> None:
    bars = _bars(chart_svg(_chart("bar")))
    heights = {
        (b.find(f"{SVG}title").text or ""): float(b.get("height", "0"))  # type: ignore[union-attr]
        for b in bars
    }
    six = heights["市场监管局 · 营业执照 · 2026-11-17: 6 张 certificates"]
    assert heights["市场监管局 · 营业执照 · 2026-11-16: 2 张 certificates"] == pytest.approx(
        six / 3, abs=0.2
    )
    assert heights["交通局 · 道路运输证 · 2026-11-17: 1 张 certificates"] == pytest.approx(
        six / 6, abs=0.2
    )
    # Bars stand on one baseline.
    assert len({round(float(b.get("y", 0)) + float(b.get("height", 0)), 1) for b in bars}) == 1


def test_stacked_bars_pile_up() -> None:
    bars = _bars(chart_svg(_chart("stacked")))
    on_17 = sorted(
        (b for b in bars if "2026-11-17" in (b.find(f"{SVG}title").text or "")),  # type: ignore[union-attr]
        key=lambda b: float(b.get("y", 0)),
    )
    upper, lower = on_17
    assert float(upper.get("y", 0)) + float(upper.get("height", 0)) == pytest.approx(
        float(lower.get("y", 0)), abs=0.2
    )
    assert float(lower.get("height", 0)) == pytest.approx(
        6 * float(upper.get("height", 0)), abs=0.5
    )


def test_line_dots_stand_at_their_values() -> None:
    dots = _bars(chart_svg(_chart("line")))
    assert all(d.tag == f"{SVG}circle" for d in dots)
    by_value = {d.get("data-value"): float(d.get("cy", 0)) for d in dots}
    baseline = by_value["2"] + (by_value["2"] - by_value["6"]) / 2  # y of 0: 2 is a third of 6
    assert by_value["3"] == pytest.approx(baseline - (baseline - by_value["6"]) / 2, abs=0.2)


def test_links_are_escaped_and_only_where_given() -> None:
    def href(point: Point) -> str | None:
        if point.label.startswith("交通局"):
            return None
        return f"/console/records/issued?day={point.x}&type=<x>\"'"

    svg = chart_svg(_chart("bar"), href=href)
    assert '&type=<x>"' not in svg
    root = ET.fromstring(svg)
    links = list(root.iter(f"{SVG}a"))
    assert len(links) == 3
    assert links[0].get("href") == "/console/records/issued?day=2026-11-16&type=<x>\"'"
    assert all(len(list(a)) == 1 for a in links)


def test_text_is_escaped() -> None:
    hostile = Series(name="x", points=(Point(label="<script>alert(1)</script>", x="a&b", y=1.0),))
    svg = chart_svg(_chart("bar", hostile))
    assert "<script>" not in svg
    assert ET.fromstring(svg) is not None


HOSTILE = "a&b <c> \"d\" 'e'\r\n\tf 中文"
#: An element as (tag, attributes, text, children).
Node = tuple[str, dict[str, str], str, list[Any]]
#: Every escape, empty and filled elements.
TREE: Node = (
    "svg",
    {"xmlns": "http://www.w3.org/2000/svg", "data-x": HOSTILE},
    HOSTILE,
    [
        ("title", {}, HOSTILE, []),
        ("g", {"class": "empty"}, "", []),
        (
            "g",
            {"class": HOSTILE},
            "",
            [("a", {"href": HOSTILE}, "", [("rect", {"x": "1"}, "", [])])],
        ),
    ],
)


def _ours(node: Node, into: _Element | None = None) -> _Element:
    tag, attributes, text, children = node
    element = _Element(tag, dict(attributes)) if into is None else into.add(tag, dict(attributes))
    element.text = text
    for child in children:
        _ours(child, element)
    return element


def _elementtree(node: Node) -> ET.Element:
    tag, attributes, text, children = node
    element = ET.Element(tag, dict(attributes))
    element.text = text
    element.extend(_elementtree(child) for child in children)
    return element


def test_the_svg_writer_writes_what_elementtree_writes() -> None:
    written = _ours(TREE).xml()
    assert written == ET.tostring(_elementtree(TREE), encoding="unicode")
    root = ET.fromstring(written)
    assert root.get("data-x") == HOSTILE
    assert root.find(f"{SVG}title").text == HOSTILE.replace("\r\n", "\n")  # type: ignore[union-attr]


def test_no_inline_style_or_script() -> None:
    svg = chart_svg(_chart("line"), href=lambda p: "/x")
    root = ET.fromstring(svg)
    assert not [e for e in root.iter() if e.get("style") is not None]
    assert not list(root.iter(f"{SVG}script"))
    assert not [e for e in root.iter() for name in e.attrib if name.startswith("on")]


def test_empty_chart_says_no_data() -> None:
    svg = chart_svg(_chart("bar", Series(name="issued-per-day", points=())))
    root = ET.fromstring(svg)
    assert _bars(svg) == []
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "暂无数据 No data" in texts
    assert "暂无数据 No data" in (root.find(f"{SVG}desc").text or "")  # type: ignore[union-attr]


def test_a_negative_value_is_refused() -> None:
    with pytest.raises(ValueError, match="finite values from 0 up"):
        _chart("bar", Series(name="x", points=(Point(label="a", x="b", y=-1.0),)))


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="A chart is one of bar, stacked, line"):
        _chart("pie")


@pytest.mark.parametrize("kind", ["bar", "stacked", "line"])
def test_drawing_renders_to_pdf(kind: str) -> None:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(FONT, io.BytesIO(font_bytes())))
    drawing = chart_drawing(_chart(kind), width=480, height=220, font_name=FONT)
    pdf = renderPDF.drawToString(drawing)
    assert pdf.startswith(b"%PDF")
    text = subprocess.run(
        ["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()
    assert "每日发证" in text
    assert "营业执照" in text
    assert "2026-11-17" in text


def test_empty_drawing_says_no_data() -> None:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(FONT, io.BytesIO(font_bytes())))
    drawing = chart_drawing(
        _chart("bar", Series(name="x", points=())), width=300, height=160, font_name=FONT
    )
    text = subprocess.run(
        ["pdftotext", "-", "-"],
        input=renderPDF.drawToString(drawing),
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert "暂无数据" in text
