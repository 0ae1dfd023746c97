"""Rendering licences, checked with real tools: poppler reads them, zbar scans their QR code."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from reportlab.lib.rl_accel import fp_str

import signing.fonts
from econtract.errors import InvalidInputError
from econtract.issuance import (
    FORMAT_VERSION,
    TEMPLATES,
    LicenceContent,
    LicenceStyle,
    LicenceTemplate,
    RenderedLicence,
    format_date,
    render_licence,
)
from econtract.issuance import _draw as render
from signing.fonts import FontMissingError
from signing.options import SEAL_DIAMETER
from tests.data import load_holders

DEPARTMENT = "杭州市西湖区市场监督管理局"
ISSUED = date(2024, 5, 6)
TOOLS = ("pdftoppm", "pdftotext", "pdffonts", "pdfinfo", "zbarimg")


def _b64(seed: str, length: int) -> str:
    raw = b"".join(hashlib.sha512(f"{seed}{i}".encode()).digest() for i in range(4))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")[:length]


#: The longest verification URL a licence has carried: a first-format JWS token of ~280
#: characters (today's compact tokens have 114), so the layout holds for both.
VERIFY_URL = "http://127.0.0.1:8000/v/" + ".".join(
    (_b64("header", 62), _b64("payload", 130), _b64("signature", 86))
)


def content(template: LicenceTemplate, fields: dict[str, Any], **changes: Any) -> LicenceContent:
    """A licence of ``template`` with ``fields``, issued on 6 May 2024 by ``DEPARTMENT``."""
    values: dict[str, Any] = {
        "template": template,
        "fields": fields,
        "number": f"{template.number_prefix}3301002024000123",
        "department_name": DEPARTMENT,
        "issued_on": ISSUED,
        "valid_from": ISSUED,
        "valid_until": template.valid_until(fields, ISSUED),
        "verify_url": VERIFY_URL,
    }
    values.update(changes)
    return LicenceContent(**values)


def holders() -> list[dict[str, str]]:
    """The first rows of the sample holders."""
    return load_holders()[:3]


@dataclass(frozen=True)
class Page:
    """A rendered licence and what poppler and zbar make of it."""

    content: LicenceContent
    rendered: RenderedLicence
    text: str
    fonts: str
    info: str
    qr: str
    png: Path


def inspect(licence: LicenceContent, directory: Path) -> Page:
    """Render ``licence``, rasterise it at 150 dpi and read it back."""
    rendered = render_licence(licence)
    pdf = directory / "licence.pdf"
    pdf.write_bytes(rendered.pdf)

    def run(*args: str) -> str:
        return subprocess.run(args, check=True, capture_output=True, text=True).stdout

    run("pdftoppm", "-r", "150", "-png", "-singlefile", str(pdf), str(directory / "page"))
    png = directory / "page.png"
    return Page(
        content=licence,
        rendered=rendered,
        text=run("pdftotext", "-layout", str(pdf), "-"),
        fonts=run("pdffonts", str(pdf)),
        info=run("pdfinfo", str(pdf)),
        qr=run("zbarimg", "--raw", "-q", str(png)).strip(),
        png=png,
    )


CASES = [(t.code, t, t.example) for t in TEMPLATES.values()] + [
    (f"holder-{row['credit_code']}", TEMPLATES["business_licence"], row) for row in holders()
]


@pytest.fixture(scope="module", params=CASES, ids=[case[0] for case in CASES])
def page(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Page:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    assert not missing, f"install poppler-utils and zbar-tools ({', '.join(missing)} missing)"
    _, template, fields = request.param
    return inspect(content(template, fields), tmp_path_factory.mktemp("licence"))


# -- what the page shows ----------------------------------------------------------------------


def test_reportlab_formats_with_its_c_accelerator() -> None:
    # rl-accel is a dependency for this alone: ReportLab falls back to Python silently.
    assert fp_str.__module__ == "_rl_accel"
    assert fp_str(1.5, 0.25, 100) == "1.5 .25 100"


def test_verify_url_is_long_like_a_real_one() -> None:
    assert 290 <= len(VERIFY_URL) <= 320


def test_qr_code_decodes_to_the_verify_url(page: Page) -> None:
    assert page.qr == VERIFY_URL


def test_font_is_embedded_as_a_subset(page: Page) -> None:
    rows = page.fonts.splitlines()[2:]
    assert rows
    for row in rows:
        assert re.match(r"[A-Z]{6}\+EContractSerifSC", row), row
        assert re.search(r"\byes\s+yes\s+yes\b", row), row  # embedded, subset, ToUnicode


def test_text_shows_holder_number_and_department(page: Page) -> None:
    template = page.content.template
    assert page.content.fields[template.holder_name_field] in page.text
    assert page.content.number in page.text
    assert DEPARTMENT in page.text
    assert template.name in re.sub(r"\s+", "", page.text)
    assert format_date(ISSUED) in page.text


def test_every_field_is_printed_whole(page: Page) -> None:
    printed = re.sub(r"\s+", "", page.text)
    for name, value in page.content.fields.items():
        iso = re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(value))
        shown = format_date(date.fromisoformat(str(value))) if iso else str(value)
        assert re.sub(r"\s+", "", shown) in printed, name


def test_one_a4_page_with_the_version_marker(page: Page) -> None:
    assert re.search(r"^Pages:\s+1$", page.info, re.M)
    assert "595.276 x 841.89 pts (A4)" in page.info
    assert re.search(rf"^Producer:\s+{re.escape(FORMAT_VERSION)}$", page.info, re.M)


def test_seal_goes_over_department_and_date_bottom_right(page: Page) -> None:
    placement = page.rendered.seal_placement
    assert placement.page == 1
    assert placement.diameter == SEAL_DIAMETER
    x1, y1, x2, y2 = placement.box()
    assert x1 > 595.28 / 2  # the right half
    assert x2 < 595.28 - 24  # inside the frame
    assert y1 > 24
    assert y2 < 841.89 / 3  # the bottom third
    words = _word_boxes(page.rendered.pdf, page.png.parent)
    # The name may be wider than the seal, as on paper; both lines are centred under it.
    for word in (DEPARTMENT, format_date(ISSUED)):
        wx1, wy1, wx2, wy2 = words[word]
        assert abs((wx1 + wx2) / 2 - placement.x) < 1, word
        assert y1 < wy1 < wy2 < y2, word


def _word_boxes(pdf: bytes, directory: Path) -> dict[str, tuple[float, float, float, float]]:
    """Each word's box from ``pdftotext -bbox``, in PDF coordinates (origin bottom left)."""
    path = directory / "bbox.pdf"
    path.write_bytes(pdf)
    html = subprocess.run(
        ["pdftotext", "-bbox", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout
    pattern = r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<'
    height = 841.89
    return {
        word: (float(a), height - float(d), float(c), height - float(b))
        for a, b, c, d, word in re.findall(pattern, html)
    }


# -- what is refused --------------------------------------------------------------------------


def test_character_outside_the_font_is_refused_naming_the_field() -> None:
    template = TEMPLATES["business_licence"]
    fields = template.example | {"name": "远航\U00020000有限公司"}
    with pytest.raises(InvalidInputError, match="U\\+20000") as info:
        content(template, fields)
    assert [p for p, _ in info.value.errors] == ["/name"]


def test_department_name_outside_the_font_is_refused() -> None:
    template = TEMPLATES["business_licence"]
    with pytest.raises(InvalidInputError, match=r"department name.*U\+20000"):
        content(template, template.example, department_name="\U00020000市市场监督管理局")


def test_validity_ending_before_it_starts_is_refused() -> None:
    template = TEMPLATES["food_business_permit"]
    with pytest.raises(InvalidInputError, match="expire"):
        content(template, template.example, valid_until=date(2024, 5, 5))


def test_url_too_long_for_a_scannable_qr_code_is_refused() -> None:
    template = TEMPLATES["business_licence"]
    licence = content(template, template.example, verify_url="https://e.example/v/" + "A" * 1500)
    with pytest.raises(InvalidInputError, match="too dense to scan") as info:
        render_licence(licence)
    assert info.value.errors == [("/verify_url", "too long for the QR code")]


def test_missing_font_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    template = TEMPLATES["business_licence"]
    licence = content(template, template.example)

    def clear() -> None:
        signing.fonts.font_bytes.cache_clear()
        signing.fonts._cmap.cache_clear()
        render._font.cache_clear()
        render._advance.cache_clear()

    monkeypatch.setattr(signing.fonts, "FONT_PATH", Path("/nonexistent/EContractSerifSC.ttf"))
    clear()
    try:
        with pytest.raises(FontMissingError, match=r"does not exist.*reinstall eContract"):
            render_licence(licence)
    finally:
        monkeypatch.undo()
        clear()
    render_licence(licence)


# -- layout -----------------------------------------------------------------------------------


def _longest(template: LicenceTemplate) -> dict[str, Any]:
    fields = template.example
    for name, prop in template.properties.items():
        free = "pattern" not in prop and "format" not in prop and "anyOf" not in prop
        if name in fields and prop.get("type") == "string" and free:
            fields[name] = "国" * prop["maxLength"]
    return fields


@pytest.mark.parametrize("template", TEMPLATES.values(), ids=lambda t: t.code)
def test_longest_fields_fit_on_one_page(template: LicenceTemplate, tmp_path: Path) -> None:
    page = inspect(content(template, _longest(template)), tmp_path)
    assert page.qr == VERIFY_URL
    assert "国" * 20 in page.text
    assert re.search(r"^Pages:\s+1$", page.info, re.M)


def test_closing_punctuation_never_starts_a_line() -> None:
    size = 10.0
    width = render._width("国" * 10, size)
    lines = render._wrap("国" * 10 + "。下一句", width, size)
    assert lines == ["国" * 10 + "。", "下一句"]


def test_opening_bracket_never_ends_a_line() -> None:
    size = 10.0
    width = render._width("国" * 10, size)
    lines = render._wrap("国" * 9 + "（注）", width, size)
    assert lines == ["国" * 9, "（注）"]


def test_latin_words_break_at_spaces() -> None:
    size = 10.0
    width = render._width("Scan to", size) + 1
    assert render._wrap("Scan to verify", width, size) == ["Scan to", "verify"]


def test_same_content_gives_the_same_bytes() -> None:
    template = TEMPLATES["construction_permit"]
    licence = content(template, template.example)
    assert render_licence(licence).pdf == render_licence(licence).pdf


def test_style_refuses_a_qr_code_under_25_mm() -> None:
    with pytest.raises(ValueError, match="25 mm"):
        LicenceStyle(qr_size=60)
