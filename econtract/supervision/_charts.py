"""Charts of the overview's figures, drawn by the service itself: an inline SVG for the
console's pages and a reportlab Drawing for the monthly report, from one geometry.

The console loads nothing from elsewhere and its content security policy forbids inline
scripts and styles, so no chart library for the browser fits: the SVG is written here with
presentation attributes (``fill``, ``stroke``) and the classes of ``console.css``. The axis
ticks are reportlab's (``reportlab.graphics.charts.utils.ticks``), for both outputs.

A chart's categories (its x axis) are the points' ``x`` in the order they first appear; its
keys (legend, colours) are the points' ``label``. ``bar`` sets a category's keys side by
side, ``stacked`` piles them, ``line`` joins each key's points across the categories.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from reportlab.graphics.charts.utils import ticks
from reportlab.graphics.shapes import Circle, Drawing, Line, PolyLine, Rect, String
from reportlab.lib.colors import HexColor
from reportlab.pdfbase.pdfmetrics import stringWidth

from econtract.supervision._overview import Point, Series

#: The kinds of chart.
ChartKind = Literal["bar", "stacked", "line"]
_KINDS = ("bar", "stacked", "line")

#: The keys' colours, in order; the first is the console's accent. Chosen to stay apart for
#: the common colour blindnesses (Okabe–Ito, darkened where white text must not vanish).
PALETTE = (
    "#0969da",
    "#e69f00",
    "#009e73",
    "#cc79a7",
    "#56b4e9",
    "#d55e00",
    "#7a6a00",
    "#57606a",
)
_INK = "#1f2328"
_MUTED = "#57606a"
_GRID = "#d0d7de"

#: The SVG's own coordinate system; the page scales it to the column's width.
SVG_WIDTH = 640.0
SVG_HEIGHT = 320.0
_NO_DATA = "暂无数据 No data"


@dataclass(frozen=True, kw_only=True)
class Chart:
    """A chart of one or more figures."""

    title_zh: str
    title_en: str
    kind: ChartKind
    """``bar`` (keys side by side), ``stacked`` (keys piled) or ``line``."""
    series: tuple[Series, ...]
    """The figures drawn; their points together make the chart."""
    unit_zh: str = ""
    """What the values count, e.g. ``张`` or ``小时``."""
    unit_en: str = ""

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"A chart is one of {', '.join(_KINDS)}, not {self.kind!r}.")
        if not isinstance(self.series, tuple) or not all(
            isinstance(s, Series) for s in self.series
        ):
            raise TypeError("A chart's series are a tuple of Series.")
        for point in self.points:
            if not math.isfinite(point.y) or point.y < 0:
                raise ValueError(f"A chart draws finite values from 0 up, not {point.y!r}.")

    @property
    def points(self) -> tuple[Point, ...]:
        """Every point of every series, in order."""
        return tuple(p for s in self.series for p in s.points)

    @property
    def title(self) -> str:
        """The title in both languages."""
        return f"{self.title_zh} {self.title_en}"

    @property
    def unit(self) -> str:
        """The unit in both languages (empty when the chart has none)."""
        return " ".join(u for u in (self.unit_zh, self.unit_en) if u)


# --- the geometry ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Mark:
    """A bar (``width`` > 0) or a line's dot, y growing downwards as in SVG."""

    point: Point
    x: float
    y: float
    width: float
    height: float
    colour: str


@dataclass(frozen=True, kw_only=True)
class _Layout:
    width: float
    height: float
    plot_left: float
    plot_top: float
    plot_right: float
    plot_bottom: float
    y_ticks: tuple[tuple[float, str], ...]
    """(y position, label)."""
    x_labels: tuple[tuple[float, str], ...]
    """(x position of the label's centre, text); crowded axes keep every n-th."""
    marks: tuple[_Mark, ...]
    lines: tuple[tuple[str, tuple[tuple[float, float], ...]], ...]
    """(colour, the points of a key's line)."""
    legend: tuple[tuple[float, float, str, str], ...]
    """(x, y of the swatch's top left, colour, label)."""


_SWATCH = 10.0


def _layout(chart: Chart, width: float, height: float, measure: Callable[[str], float]) -> _Layout:
    points = chart.points
    categories = list(dict.fromkeys(p.x for p in points))
    keys = list(dict.fromkeys(p.label for p in points))
    colour = {key: PALETTE[i % len(PALETTE)] for i, key in enumerate(keys)}

    # The legend takes the rows it needs under the plot.
    placed: list[tuple[float, int, str, str]] = []
    cursor, row = 8.0, 0
    row_height = 16.0
    for key in keys:
        entry = _SWATCH + 4 + measure(key) + 14
        if cursor > 8.0 and cursor + entry > width - 8:
            row, cursor = row + 1, 8.0
        placed.append((cursor, row, colour[key], key))
        cursor += entry
    legend_top = height - (row + 1 if keys else 0) * row_height - 4
    legend = [(x, legend_top + r * row_height, c, k) for x, r, c, k in placed]

    top = 34.0
    bottom = legend_top - 26.0
    if chart.kind == "stacked":
        totals: dict[str, float] = {}
        for p in points:
            totals[p.x] = totals.get(p.x, 0.0) + p.y
        highest = max(totals.values(), default=0.0)
    else:
        highest = max((p.y for p in points), default=0.0)
    values, labels = ticks(0.0, highest if highest > 0 else 1.0)
    y_max = max(values[-1], highest) or 1.0
    left = 12.0 + max((measure(label.strip()) for label in labels), default=0.0)
    right = width - 12.0
    plot_height = bottom - top

    def y_of(value: float) -> float:
        return bottom - value / y_max * plot_height

    y_ticks = tuple((y_of(v), label.strip()) for v, label in zip(values, labels, strict=True))
    step = (right - left) / max(len(categories), 1)
    centre = {x: left + step * (i + 0.5) for i, x in enumerate(categories)}
    widest = max((measure(x) for x in categories), default=0.0) + 8
    every = max(1, math.ceil(widest / step)) if categories else 1
    x_labels = tuple((centre[x], x) for i, x in enumerate(categories) if i % every == 0)

    marks: list[_Mark] = []
    lines: list[tuple[str, tuple[tuple[float, float], ...]]] = []
    if chart.kind == "bar":
        bar = step * 0.8 / max(len(keys), 1)
        slot = {key: i for i, key in enumerate(keys)}
        for p in points:
            x = centre[p.x] - step * 0.4 + slot[p.label] * bar
            marks.append(_bar(p, x, bar, y_of(p.y), bottom, colour[p.label]))
    elif chart.kind == "stacked":
        base: dict[str, float] = {}
        for p in points:
            below = base.get(p.x, 0.0)
            base[p.x] = below + p.y
            x = centre[p.x] - step * 0.35
            marks.append(_bar(p, x, step * 0.7, y_of(below + p.y), y_of(below), colour[p.label]))
    else:
        for key in keys:
            mine = [p for p in points if p.label == key]
            dots = [
                _Mark(
                    point=p, x=centre[p.x], y=y_of(p.y), width=0.0, height=0.0, colour=colour[key]
                )
                for p in mine
            ]
            marks.extend(dots)
            lines.append((colour[key], tuple((d.x, d.y) for d in dots)))
    return _Layout(
        width=width,
        height=height,
        plot_left=left,
        plot_top=top,
        plot_right=right,
        plot_bottom=bottom,
        y_ticks=y_ticks,
        x_labels=x_labels,
        marks=tuple(marks),
        lines=tuple(lines),
        legend=tuple(legend),
    )


def _bar(point: Point, x: float, width: float, top: float, bottom: float, colour: str) -> _Mark:
    return _Mark(point=point, x=x, y=top, width=width, height=bottom - top, colour=colour)


def _value(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3g}"


def _description(chart: Chart) -> str:
    points = chart.points
    if not points:
        return f"{chart.title}: {_NO_DATA}"
    unit = f" ({chart.unit})" if chart.unit else ""
    keys = len({p.label for p in points})
    xs = list(dict.fromkeys(p.x for p in points))
    return (
        f"{chart.title}{unit}: {len(points)} 个数值 values, {keys} 个系列 keys, "
        f"{xs[0]} – {xs[-1]}, 最大 max {_value(max(p.y for p in points))}"
    )


# --- SVG ---------------------------------------------------------------------------------------


def _svg_measure(text: str) -> float:
    """A close enough width at the SVG's 11-unit text: Chinese characters are square, the
    rest about half as wide (the browser's font is not known here)."""
    return sum(11.0 if ord(c) > 0x2E7F else 6.2 for c in text)


def chart_svg(chart: Chart, *, href: Callable[[Point], str | None] | None = None) -> str:
    """``chart`` as an inline SVG element that scales to its column (``viewBox``, width
    100%): a ``<title>`` and ``<desc>`` for readers, axis ticks, a legend, and each point a
    mark (class ``mark``) with a tooltip, inside a link to ``href(point)`` when it gives one.

    The text is escaped by the XML writer; nothing needs inline scripts or styles."""
    layout = _layout(chart, SVG_WIDTH, SVG_HEIGHT, _svg_measure)
    svg = _Element(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "viewBox": f"0 0 {_n(SVG_WIDTH)} {_n(SVG_HEIGHT)}",
            "width": "100%",
            "role": "img",
            "class": f"chart chart-{chart.kind}",
            "preserveAspectRatio": "xMidYMid meet",
        },
    )
    svg.add("title").text = chart.title
    svg.add("desc").text = _description(chart)
    unit = chart.unit
    caption = chart.title + (f" ({unit})" if unit else "")
    _text(svg, 8, 18, caption, cls="chart-title")
    if not chart.points:
        _frame(svg, layout)
        _text(svg, SVG_WIDTH / 2, SVG_HEIGHT / 2, _NO_DATA, cls="chart-empty", anchor="middle")
        return svg.xml()
    axes = svg.add("g", {"class": "chart-axes"})
    for y, label in layout.y_ticks:
        axes.add(
            "line",
            {
                "x1": _n(layout.plot_left),
                "x2": _n(layout.plot_right),
                "y1": _n(y),
                "y2": _n(y),
                "stroke": _GRID,
                "stroke-width": "1",
            },
        )
        _text(axes, layout.plot_left - 4, y + 4, label, anchor="end")
    for x, label in layout.x_labels:
        _text(axes, x, layout.plot_bottom + 14, label, anchor="middle")
    for colour, line in layout.lines:
        svg.add(
            "polyline",
            {
                "points": " ".join(f"{_n(x)},{_n(y)}" for x, y in line),
                "fill": "none",
                "stroke": colour,
                "stroke-width": "2",
            },
        )
    marks = svg.add("g", {"class": "chart-marks"})
    suffix = f" {unit}" if unit else ""
    for mark in layout.marks:
        target = href(mark.point) if href is not None else None
        parent = marks.add("a", {"href": target}) if target else marks
        value = _value(mark.point.y)
        if mark.width > 0:
            shape = parent.add(
                "rect",
                {
                    "class": "mark",
                    "x": _n(mark.x),
                    "y": _n(mark.y),
                    "width": _n(mark.width),
                    "height": _n(mark.height),
                    "fill": mark.colour,
                    "data-value": value,
                },
            )
        else:
            shape = parent.add(
                "circle",
                {
                    "class": "mark",
                    "cx": _n(mark.x),
                    "cy": _n(mark.y),
                    "r": "3.5",
                    "fill": mark.colour,
                    "data-value": value,
                },
            )
        # The tooltip: the point's series, place and value, with the chart's unit.
        shape.add("title").text = f"{mark.point.label} · {mark.point.x}: {value}{suffix}"
    svg.add(
        "line",
        {
            "x1": _n(layout.plot_left),
            "x2": _n(layout.plot_right),
            "y1": _n(layout.plot_bottom),
            "y2": _n(layout.plot_bottom),
            "stroke": _INK,
            "stroke-width": "1",
        },
    )
    legend = svg.add("g", {"class": "chart-legend"})
    for x, y, colour, label in layout.legend:
        legend.add(
            "rect",
            {"x": _n(x), "y": _n(y), "width": _n(_SWATCH), "height": _n(_SWATCH), "fill": colour},
        )
        _text(legend, x + _SWATCH + 4, y + _SWATCH, label)
    return svg.xml()


class _Element:
    """An SVG element written as :mod:`xml.etree.ElementTree` writes one (attributes in
    their order, an empty element as ``<tag … />``, the same escapes), at a fraction of its
    cost: the overview's page draws a thousand marks, and ElementTree's writer took more
    than half of the charts' time."""

    __slots__ = ("attributes", "children", "tag", "text")

    def __init__(self, tag: str, attributes: dict[str, str] | None = None) -> None:
        self.tag = tag
        self.attributes = attributes or {}
        self.children: list[_Element] = []
        self.text = ""

    def add(self, tag: str, attributes: dict[str, str] | None = None) -> _Element:
        """A new last child."""
        child = _Element(tag, attributes)
        self.children.append(child)
        return child

    def xml(self) -> str:
        """The element and its children as XML text."""
        out: list[str] = []
        self._write(out)
        return "".join(out)

    def _write(self, out: list[str]) -> None:
        out.append("<" + self.tag)
        for name, value in self.attributes.items():
            out.append(f' {name}="{_escape_attribute(value)}"')
        if self.text or self.children:
            out.append(">" + _escape_text(self.text))
            for child in self.children:
                child._write(out)
            out.append(f"</{self.tag}>")
        else:
            out.append(" />")


def _escape_text(text: str) -> str:
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


def _escape_attribute(value: str) -> str:
    value = _escape_text(value)
    if '"' in value:
        value = value.replace('"', "&quot;")
    # Line ends and tabs kept as characters, not normalised away by a reader.
    for character, entity in (("\r", "&#13;"), ("\n", "&#10;"), ("\t", "&#09;")):
        if character in value:
            value = value.replace(character, entity)
    return value


def _frame(svg: _Element, layout: _Layout) -> None:
    svg.add(
        "rect",
        {
            "x": _n(layout.plot_left),
            "y": _n(layout.plot_top),
            "width": _n(layout.plot_right - layout.plot_left),
            "height": _n(layout.plot_bottom - layout.plot_top),
            "fill": "none",
            "stroke": _GRID,
        },
    )


def _text(
    parent: _Element,
    x: float,
    y: float,
    text: str,
    *,
    cls: str = "chart-text",
    anchor: str = "start",
) -> None:
    attributes = {
        "x": _n(x),
        "y": _n(y),
        "class": cls,
        "fill": _INK if cls != "chart-text" else _MUTED,
    }
    if anchor != "start":
        attributes["text-anchor"] = anchor
    parent.add("text", attributes).text = text


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


# --- reportlab ---------------------------------------------------------------------------------


def chart_drawing(chart: Chart, *, width: float, height: float, font_name: str) -> Drawing:
    """``chart`` as a reportlab Drawing of ``width`` × ``height`` points, its text in the
    registered font ``font_name``: the same geometry as :func:`chart_svg`, turned upright
    (reportlab's y grows upwards)."""
    size = 7.0

    def measure(text: str) -> float:
        return float(stringWidth(text, font_name, size))

    layout = _layout(chart, width, height, measure)
    drawing = Drawing(width, height)

    def up(y: float) -> float:
        return height - y

    def text(
        x: float,
        y: float,
        value: str,
        *,
        anchor: str = "start",
        colour: str = _MUTED,
        font_size: float = size,
    ) -> None:
        drawing.add(
            String(
                x,
                up(y),
                value,
                fontName=font_name,
                fontSize=font_size,
                fillColor=HexColor(colour),
                textAnchor=anchor,
            )
        )

    caption = chart.title + (f" ({chart.unit})" if chart.unit else "")
    text(4, 14, caption, colour=_INK, font_size=9)
    if not chart.points:
        drawing.add(
            Rect(
                layout.plot_left,
                up(layout.plot_bottom),
                layout.plot_right - layout.plot_left,
                layout.plot_bottom - layout.plot_top,
                fillColor=None,
                strokeColor=HexColor(_GRID),
            )
        )
        text(width / 2, height / 2, _NO_DATA, anchor="middle", colour=_INK, font_size=9)
        return drawing
    for y, label in layout.y_ticks:
        drawing.add(
            Line(
                layout.plot_left,
                up(y),
                layout.plot_right,
                up(y),
                strokeColor=HexColor(_GRID),
                strokeWidth=0.5,
            )
        )
        text(layout.plot_left - 3, y + 2.5, label, anchor="end")
    for x, label in layout.x_labels:
        text(x, layout.plot_bottom + 9, label, anchor="middle")
    for colour, line in layout.lines:
        drawing.add(
            PolyLine(
                [c for x, y in line for c in (x, up(y))],
                strokeColor=HexColor(colour),
                strokeWidth=1.2,
            )
        )
    for mark in layout.marks:
        if mark.width > 0:
            drawing.add(
                Rect(
                    mark.x,
                    up(mark.y + mark.height),
                    mark.width,
                    mark.height,
                    fillColor=HexColor(mark.colour),
                    strokeColor=None,
                )
            )
        else:
            drawing.add(
                Circle(mark.x, up(mark.y), 2, fillColor=HexColor(mark.colour), strokeColor=None)
            )
    drawing.add(
        Line(
            layout.plot_left,
            up(layout.plot_bottom),
            layout.plot_right,
            up(layout.plot_bottom),
            strokeColor=HexColor(_INK),
            strokeWidth=0.7,
        )
    )
    for x, y, colour, label in layout.legend:
        drawing.add(
            Rect(
                x,
                up(y + _SWATCH * 0.7),
                _SWATCH * 0.7,
                _SWATCH * 0.7,
                fillColor=HexColor(colour),
                strokeColor=None,
            )
        )
        text(x + _SWATCH * 0.7 + 3, y + _SWATCH * 0.7, label)
    return drawing
