"""The report: its JSON validates against the versioned schema; the HTML's face speaks plain
words (number, holder, seals, status) with the ETSI details behind a disclosure."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest

from econtract.report_pdf import report_pdf, wrap_text
from signing.options import SealLevel
from tests.testpki import TestPKI
from tests.verify import forge
from tests.verify.forge import Sealed
from verify.html import render_html
from verify.pdf import verify_pdf
from verify.policy import VerificationPolicy
from verify.registry import InMemoryRegistry, RegistryMatch
from verify.report import REPORT_SCHEMA, Appendix, Report, report_schema


def _reports(pki: TestPKI, policy: VerificationPolicy, licence_lt: Sealed) -> list[Report]:
    registry = InMemoryRegistry([licence_lt.record()])
    with_registry = dataclasses.replace(policy, registry=registry)
    lta = forge.seal(pki, level=SealLevel.B_LTA)
    return [
        verify_pdf(licence_lt.pdf, policy=with_registry),
        verify_pdf(lta.pdf, policy=with_registry),
        verify_pdf(forge.empty_contents(licence_lt.pdf), policy=policy),
        verify_pdf(forge.image_only_seal(), policy=policy),
        verify_pdf(licence_lt.pdf + b"garbage", policy=with_registry),
    ]


def test_reports_validate_against_the_schema(
    pki: TestPKI, policy: VerificationPolicy, licence_lt: Sealed
) -> None:
    schema = report_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for report in _reports(pki, policy, licence_lt):
        document = json.loads(json.dumps(report.to_json()))
        jsonschema.validate(document, schema)
        assert document["schema"] == REPORT_SCHEMA


def test_html_report_is_chinese_first_then_english(
    pki: TestPKI, policy: VerificationPolicy, licence_lt: Sealed
) -> None:
    registry = InMemoryRegistry([licence_lt.record()])
    report = verify_pdf(licence_lt.pdf, policy=dataclasses.replace(policy, registry=registry))
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>")
    assert '<div class="zh">有效</div><div class="en">VALID</div>' in page


def test_html_report_names_the_files_digest(policy: VerificationPolicy, licence_lt: Sealed) -> None:
    report = verify_pdf(licence_lt.pdf, policy=policy)
    assert report.file_sha256 in render_html(report)


def test_html_report_runs_no_script(policy: VerificationPolicy, licence_lt: Sealed) -> None:
    assert "<script" not in render_html(verify_pdf(licence_lt.pdf, policy=policy))


def test_html_escapes_names_from_the_file(policy: VerificationPolicy, licence_lt: Sealed) -> None:
    report = verify_pdf(licence_lt.pdf, policy=policy)
    sig = dataclasses.replace(report.signatures[0], field_name="<script>alert(1)</script>")
    page = render_html(dataclasses.replace(report, signatures=(sig,)))
    assert "<script>" not in page
    assert "&lt;script&gt;" in page


def test_registry_match_refuses_a_bad_fingerprint() -> None:
    with pytest.raises(ValueError, match="lowercase hex SHA-256"):
        RegistryMatch(
            record_id="1",
            kind="certificate",
            status="valid",
            seal_fingerprint="AB",
            matched_by="file",
        )


def test_policy_needs_a_trust_root() -> None:
    with pytest.raises(ValueError, match="at least one trust root"):
        VerificationPolicy(trust_roots=())


def _face_and_details(page: str) -> tuple[str, str]:
    """The page's text before the disclosure (styles and tags removed), and the rest."""
    face, details = page.split("<details>", 1)
    face = re.sub(r"<style>.*?</style>", "", face, flags=re.DOTALL)
    return re.sub(r"<[^>]+>", " ", face), details


@dataclasses.dataclass(frozen=True)
class _Page:
    """A matched report and its HTML page, cut into the face and the details."""

    report: Report
    face: str
    details: str


@pytest.fixture(scope="module")
def matched_page(policy: VerificationPolicy, licence_lt: Sealed) -> _Page:
    registry = InMemoryRegistry([licence_lt.record(record_id="crt_x")])
    report = verify_pdf(licence_lt.pdf, policy=dataclasses.replace(policy, registry=registry))
    matched = dataclasses.replace(
        report,
        registry=dataclasses.replace(report.registry, number="YYZZ1", holder="杭州远航有限公司"),
    )
    face, details = _face_and_details(render_html(matched))
    return _Page(report=report, face=face, details=details)


def test_html_face_shows_the_number_and_the_holder(matched_page: _Page) -> None:
    assert "YYZZ1" in matched_page.face
    assert "杭州远航有限公司" in matched_page.face


def test_html_face_names_the_sealing_department(matched_page: _Page) -> None:
    signer = matched_page.report.signatures[0].signer
    assert signer is not None
    assert signer.department_name is not None
    assert signer.department_name in matched_page.face


def test_html_face_shows_the_registry_status_in_words(matched_page: _Page) -> None:
    assert "登记状态" in matched_page.face
    assert "登记状态 Registry status 有效" in " ".join(matched_page.face.split())


def test_html_face_shows_the_seals_result_in_words(matched_page: _Page) -> None:
    assert "通过" in matched_page.face


def test_html_face_gives_times_in_china_standard_time(matched_page: _Page) -> None:
    assert "(UTC+8)" in matched_page.face


@pytest.mark.parametrize("code", ["TOTAL_PASSED", "TOTAL_FAILED", "INDETERMINATE", "HASH_FAILURE"])
def test_html_face_names_no_etsi_code(matched_page: _Page, code: str) -> None:
    assert code not in matched_page.face


def test_html_details_keep_the_etsi_code(matched_page: _Page) -> None:
    assert "TOTAL_PASSED" in matched_page.details


def test_html_face_of_a_broken_seal_names_no_etsi_code(
    policy: VerificationPolicy, licence_lt: Sealed
) -> None:
    report = verify_pdf(forge.empty_contents(licence_lt.pdf), policy=policy)
    face, details = _face_and_details(render_html(report))
    assert report.signatures[0].indication.value in details
    assert report.signatures[0].indication.value not in face
    assert "未通过" in face or "暂无法确定" in face


def test_html_says_yes_and_no_never_true_or_false(
    policy: VerificationPolicy, licence_lt: Sealed
) -> None:
    page = render_html(verify_pdf(forge.empty_contents(licence_lt.pdf), policy=policy))
    assert "是 Yes" in page
    assert "否 No" in page
    for word in ("True", "False", "None"):
        assert word not in page


def test_html_links_the_printable_pdf_when_given(
    policy: VerificationPolicy, licence_lt: Sealed
) -> None:
    report = verify_pdf(licence_lt.pdf, policy=policy)
    pdf = report_pdf(report)
    page = render_html(report, pdf=pdf)
    link = re.search(
        r'href="data:application/pdf;base64,([A-Za-z0-9+/=]+)" download="([^"]+)"', page
    )
    assert link is not None
    assert base64.b64decode(link.group(1)) == pdf
    assert link.group(2).endswith(".pdf")


def test_html_puts_the_printable_pdf_link_on_the_face(
    policy: VerificationPolicy, licence_lt: Sealed
) -> None:
    report = verify_pdf(licence_lt.pdf, policy=policy)
    page = render_html(report, pdf=report_pdf(report))
    assert page.index("data:application/pdf") < page.index("<details>")


def test_html_links_no_pdf_when_none_is_given(
    policy: VerificationPolicy, licence_lt: Sealed
) -> None:
    assert "data:application/pdf" not in render_html(verify_pdf(licence_lt.pdf, policy=policy))


def _pdf_text(pdf: bytes, tmp_path: Path) -> str:
    (tmp_path / "report.pdf").write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-raw", str(tmp_path / "report.pdf"), "-"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout


NOTE = (
    "The entries about this record in the service's public log, with their inclusion proofs "
    "and the tree head's signature checked; anyone can check them again with econtract audit."
)
"""A long English sentence: it must wrap at spaces only."""


def _matched_report(policy: VerificationPolicy, licence_lt: Sealed) -> Report:
    registry = InMemoryRegistry([licence_lt.record(record_id="crt_report")])
    report = verify_pdf(licence_lt.pdf, policy=dataclasses.replace(policy, registry=registry))
    return dataclasses.replace(
        report,
        registry=dataclasses.replace(
            report.registry, number="YYZZ3301002026000042", holder="杭州远航建设工程有限公司"
        ),
    )


def test_pdf_report_reads_as_a_report(
    policy: VerificationPolicy, licence_lt: Sealed, tmp_path: Path
) -> None:
    report = _matched_report(policy, licence_lt)
    appendix = Appendix(title="透明日志 Transparency log", note=NOTE, rows=(("条目 Entry 3", "x"),))
    text = _pdf_text(report_pdf(report, (appendix,)), tmp_path)
    flat = " ".join(text.split())
    for expected in (
        "结论 Verdict",
        "有效 VALID",
        "概要 Summary",
        "证照编号 Number YYZZ3301002026000042",
        "持证主体 Holder 杭州远航建设工程有限公司",
        "登记状态 Registry status 有效 valid",
        "印章 1 Seal 1",
        "签章人 Signer",
        "盖章机关 Department",
        "盖章时间 Time",
        "级别 Level PAdES B-LT",
        "结果 Result 通过 passed",
        "证书链 Certificate chain",
        "信任锚 Trust anchor",
        "版本与签章顺序 Revisions",
        "透明日志 Transparency log",
    ):
        assert expected in flat, expected
    # The sections come in the order a reader expects.
    order = ["有效 VALID", "概要 Summary", "印章 1 Seal 1", "证书链", "版本与签章顺序", "透明日志"]
    assert [flat.index(part) for part in order] == sorted(flat.index(part) for part in order)


@pytest.mark.parametrize("which", ["matched", "broken"])
def test_pdf_report_says_yes_and_no_never_true_or_false(
    policy: VerificationPolicy, licence_lt: Sealed, tmp_path: Path, which: str
) -> None:
    report = (
        _matched_report(policy, licence_lt)
        if which == "matched"
        else verify_pdf(forge.empty_contents(licence_lt.pdf), policy=policy)
    )
    text = _pdf_text(report_pdf(report), tmp_path)
    assert "是 Yes" in text
    for word in ("True", "False", "None"):
        assert word not in text


def test_pdf_report_wraps_english_at_spaces_only(
    policy: VerificationPolicy, licence_lt: Sealed, tmp_path: Path
) -> None:
    report = _matched_report(policy, licence_lt)
    appendix = Appendix(title="透明日志 Transparency log", note=NOTE, rows=())
    words = set(_pdf_text(report_pdf(report, (appendix,)), tmp_path).split())
    for word in NOTE.split():
        assert word in words, word


MIXED = "文件与签发时完全一致，登记状态有效。The file is byte for byte the one issued."
"""Chinese then English, long enough to wrap over several lines."""


def test_wrapping_keeps_every_character() -> None:
    lines = wrap_text(MIXED, 120, 10)
    assert len(lines) > 2
    assert "".join(lines).replace(" ", "") == MIXED.replace(" ", "")


def test_wrapping_breaks_english_only_at_spaces() -> None:
    lines = wrap_text(MIXED, 120, 10)
    english = {"The", "file", "is", "byte", "for", "the", "one", "issued."}
    for line in lines:
        for token in line.split():
            if token.isascii():
                assert token in english, (token, lines)


def test_wrapping_starts_no_line_with_chinese_punctuation() -> None:
    for line in wrap_text(MIXED, 120, 10):
        assert not line.startswith(("，", "。"))


def test_wrapping_breaks_a_word_longer_than_the_line_anywhere() -> None:
    digest = "ab" * 40
    assert "".join(wrap_text(digest, 100, 9)) == digest
