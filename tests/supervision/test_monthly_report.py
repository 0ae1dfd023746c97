"""The monthly report (月度通报) of November 2026 on the overview's arranged registry: its
figures beside October's, the warnings and their handling, the PDF as pdftotext, pdftoppm,
qpdf and pdfsig read it, its seal as the service verifies it, and the command line."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from econtract import audit, db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.cli import EXIT_USAGE, run
from econtract.clock import FixedClock
from econtract.errors import InvalidInputError, NotFoundError
from econtract.models import Department, SealedDocument
from econtract.reports import Month, Totals, make_monthly_report, monthly_report
from econtract.services import Services
from econtract.supervision import SupervisionWarning, Supervisor, acknowledge, close
from tests.econtract.conftest import cli_env  # noqa: F401 (a fixture)
from tests.pdfsig import pdfsig_trusting
from tests.supervision.test_overview import SECOND, Registry, _issue, china, registry  # noqa: F401

pytestmark = pytest.mark.registry

NOVEMBER = Month(year=2026, month=11)


def _warn(services: Services, name: str, department_id: int | None, day: int) -> str:
    with db.transaction(services.sessions) as session:
        session.add(
            SupervisionWarning(
                id=f"wrn_{name}",
                rule_id="WR-OFF-HOURS",
                warning_type="off-hours",
                department_id=department_id,
                subject_type="department",
                subject_id=f"subject-{name}",
                window=f"2026-11-{day:02d}",
                raised_at=china(day, 20),
                description_zh=f"非工作时间签发 {name}",
                description_en=f"Issued outside office hours {name}",
            )
        )
    return f"wrn_{name}"


@pytest.fixture
def month(registry: Registry) -> Registry:  # noqa: F811 (the fixture imported above)
    """The arranged week of November, a licence in October, and three warnings in November
    (one acknowledged, one closed, one open) and one in October."""
    services = registry.services
    _issue(services, DEMO_DEPARTMENT_CODE, "business_licence", china(1, 9).replace(month=10))
    seen = _warn(services, "seen", registry.first, 18)
    done = _warn(services, "done", registry.second, 19)
    _warn(services, "open", registry.first, 20)
    with db.transaction(services.sessions) as session:
        session.add(
            SupervisionWarning(
                id="wrn_october",
                rule_id="WR-OFF-HOURS",
                warning_type="off-hours",
                department_id=registry.first,
                subject_type="department",
                subject_id="subject-october",
                window="2026-10-05",
                raised_at=china(5, 20).replace(month=10),
                description_zh="十月",
                description_en="October",
            )
        )
    services.clock = FixedClock(china(25, 9))
    zhang = Supervisor(name="console:zhang")
    acknowledge(services, seen, "已联系该部门核实", zhang)
    close(services, done, "系统时钟有误，已修正", zhang)
    services.clock = FixedClock(china(3, 10).replace(month=12))
    return registry


def _text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "report-text.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def _pdf(services: Services, document: SealedDocument) -> bytes:
    with services.blobs.open(document.blob_key) as stream:
        return stream.read()


# --- the figures -------------------------------------------------------------------------------


def test_the_province_totals_of_the_month_and_the_month_before(month: Registry) -> None:
    report = monthly_report(month.services, NOVEMBER)
    assert report.totals == Totals(
        issued=6,
        revoked=3,
        suspended=1,
        envelopes_started=9,
        envelopes_completed=6,
        uses=4,
        scans=8,
        failed_scans=3,
        warnings=3,
    )
    assert report.totals_before == Totals(
        issued=1,
        revoked=0,
        suspended=0,
        envelopes_started=0,
        envelopes_completed=0,
        uses=0,
        scans=0,
        failed_scans=0,
        warnings=1,
    )


def test_each_department_has_its_line(month: Registry) -> None:
    report = monthly_report(month.services, NOVEMBER)
    lines = {row.department_id: row for row in report.departments}
    assert set(lines) == {month.first, month.second, month.third}
    first, second, third = lines[month.first], lines[month.second], lines[month.third]
    assert (first.issued, first.revoked, first.suspended) == (4, 2, 1)
    assert (second.issued, second.revoked, second.suspended) == (2, 1, 0)
    assert (first.envelopes_completed, first.envelopes_started) == (5, 7)
    # Completed after 1, 3, 5, 10 and 30 hours: the median is 5 hours.
    assert first.completion_median == 5 * 3600
    assert (first.uses_made, first.uses_of_its_licences) == (1, 2)
    assert (second.uses_made, second.uses_of_its_licences) == (2, 2)
    assert (third.uses_made, third.issued) == (1, 0)
    assert (first.scans, first.failed_scans) == (3, 0)
    assert (second.scans, second.failed_scans) == (4, 2)
    assert (first.warnings, first.warnings_open) == (2, 1)
    assert (second.warnings, second.warnings_open) == (1, 0)


def test_the_warnings_of_the_month_with_their_handling(month: Registry) -> None:
    report = monthly_report(month.services, NOVEMBER)
    assert [w.id for w in report.warnings] == ["wrn_seen", "wrn_done", "wrn_open"]
    assert report.warning_counts == {
        ("WR-OFF-HOURS", "acknowledged"): 1,
        ("WR-OFF-HOURS", "closed"): 1,
        ("WR-OFF-HOURS", "open"): 1,
    }
    done = report.warnings[1]
    assert done.closed_by == "console:zhang"
    assert done.note is not None
    assert "系统时钟有误" in done.note


def test_one_departments_report_counts_only_its_own(month: Registry) -> None:
    report = monthly_report(month.services, NOVEMBER, department_code=SECOND)
    assert [row.department_id for row in report.departments] == [month.second]
    assert report.department_name == "台州市市场监督管理局"
    assert (report.totals.issued, report.totals.revoked, report.totals.warnings) == (2, 1, 1)
    assert [w.id for w in report.warnings] == ["wrn_done"]


def test_a_month_not_begun_is_refused(month: Registry) -> None:
    with pytest.raises(InvalidInputError, match="has not begun"):
        monthly_report(month.services, Month(year=2027, month=1))


def test_an_unknown_department_is_not_found(month: Registry) -> None:
    with pytest.raises(NotFoundError, match="no department"):
        monthly_report(month.services, NOVEMBER, department_code="91330000000000000X")


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "2026/11", "11-2026", "2026-1", ""])
def test_a_month_is_written_yyyy_mm(text: str) -> None:
    with pytest.raises(InvalidInputError, match="month"):
        Month.parse(text)


def test_the_month_before_january_is_last_december() -> None:
    assert Month.parse("2026-01").previous == Month(year=2025, month=12)
    assert str(Month.parse(" 2026-11 ")) == "2026-11"


# --- the PDF -----------------------------------------------------------------------------------


def test_the_sealed_report_reads_renders_and_verifies(
    month: Registry,
    tmp_path: Path,
    cli_env: dict[str, str],  # noqa: F811
) -> None:
    services = month.services
    document = make_monthly_report(services, NOVEMBER, actor=audit.Actor.operator("test"))
    pdf = _pdf(services, document)
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)

    text = _text(pdf, tmp_path)
    assert "电子监察月度通报 2026年11月" in text
    # Table cells wrap: words are looked for in the text without its spaces and line breaks.
    joined = re.sub(r"\s+", "", text)
    for name in ("台州市市场监督管理局", "宁波市税务局", "已联系该部门核实", "console:zhang"):
        assert name in joined
    # A use's pair, with an arrow the font draws (it has no →).
    assert "宁波市税务局▶台州市市场监督管理局1" in joined
    summary = next(line for line in text.splitlines() if "Licences issued" in line)
    assert summary.split()[-4:] == ["6", "1", "+5", "(+500%)"]

    pages = tmp_path / "page"
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(path), str(pages)], check=True)
    rendered = sorted(tmp_path.glob("page-*.png"))
    assert len(rendered) >= 2
    for png in rendered:
        with Image.open(png) as image:
            grey = image.convert("L")
            dark = sum(grey.histogram()[:200])
        assert dark > 500, f"{png.name} is blank"

    subprocess.run(["qpdf", "--check", str(path)], check=True, capture_output=True)
    assert "Signature is Valid." in pdfsig_trusting(services, path)
    assert run(["verify", str(path)]) == 0


def test_the_report_is_registered_as_the_platforms_document(month: Registry) -> None:
    services = month.services
    document = make_monthly_report(
        services, NOVEMBER, department_code=SECOND, actor=audit.Actor.operator("test")
    )
    assert document.file_name == f"monthly-report-2026-11-{SECOND}.pdf"
    assert document.level == "B-LT"
    with services.sessions() as session:
        registered = session.get(SealedDocument, document.id)
        assert registered is not None
        platform = session.get(Department, registered.department_id)
        assert platform is not None
        assert platform.code == services.settings.platform_code


# --- the command line --------------------------------------------------------------------------


def test_the_command_writes_the_sealed_report(
    month: Registry,
    tmp_path: Path,
    cli_env: dict[str, str],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out.pdf"
    status = run(
        ["report", "monthly", "--month", "2026-11", "--department", SECOND, "-o", str(out)]
    )
    assert status == 0, capsys.readouterr().err
    assert out.read_bytes().startswith(b"%PDF")
    assert run(["verify", str(out)]) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--month", "2026-13"], "no month 2026-13"),
        (["--month", "November"], "is not written YYYY-MM"),
        (["--month", "2099-01"], "has not begun"),
        (["--month", "2026-11", "--department", "91330000000000000X"], "no department"),
    ],
)
def test_the_command_refuses_bad_input_in_one_line(
    month: Registry,
    tmp_path: Path,
    cli_env: dict[str, str],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    out = tmp_path / "refused.pdf"
    assert run(["report", "monthly", *args, "-o", str(out)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert not out.exists()
    assert list(tmp_path.glob(".refused.pdf*")) == []
