"""Parallel approval with bound fields, over HTTP and on the command line: the certifying
department reserves a field for each later department; another department's seal on it is
refused and nothing is written; a certified licence takes no further seal."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pyhanko.pdf_utils.reader import PdfFileReader
from sqlalchemy import func, select

from api import create_app
from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.cli import run
from econtract.config import get_settings
from econtract.departments import add_department
from econtract.models import Department, ReservedSealField, Seal, SealedDocument, SealKind
from econtract.sealing import check_reserved_field
from econtract.seals import SealRequest, create_seal
from econtract.services import Services
from signing.errors import FieldReservedError
from signing.sealer import FieldToFill
from tests.factories import OPERATOR, token_for
from tests.licences import issue_example
from tests.signing.sealing import make_pdf, pdfsig
from tests.test_api_documents import seal_id

CODE_1 = DEMO_DEPARTMENT_CODE
CODE_2 = "9133100015J1YG617W"
CODE_3 = "9133040016D272HD32"
RESERVE = [f"Dept2@1:280,150={CODE_2}", f"Dept3@1:460,150={CODE_3}"]


@pytest.fixture
def three_departments(initialised: Services) -> Services:
    """The demo department and two more, each with an official seal."""
    with db.transaction(initialised.sessions) as session:
        for code, name in ((CODE_2, "台州市建设局"), (CODE_3, "嘉兴市住房和城乡建设局")):
            add_department(session, code=code, name=name, region=None, actor=OPERATOR)
            create_seal(
                session,
                request=SealRequest(department_code=code, kind=SealKind.OFFICIAL),
                key_store=initialised.key_store,
                pki=initialised.pki,
                actor=OPERATOR,
            )
    return initialised


@pytest.fixture
def api_client(three_departments: Services) -> Iterator[TestClient]:
    with TestClient(create_app(three_departments.settings)) as client:
        yield client


def documents(services: Services) -> int:
    with services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(SealedDocument)) or 0)


def seal_over_http(
    client: TestClient, services: Services, code: str, pdf: bytes, **form: object
) -> object:
    return client.post(
        "/v1/documents/seal",
        headers={
            "Authorization": f"Bearer {token_for(client, services, code, 'seal')}",
            "Accept": "application/pdf",
        },
        files={"file": ("approval.pdf", pdf, "application/pdf")},
        data={"seal": seal_id(services, code), "level": "B-LT", **form},
    )


def certified_over_http(client: TestClient, services: Services) -> bytes:
    response = seal_over_http(
        client,
        services,
        CODE_1,
        make_pdf(),
        certify="form-filling",
        field="Dept1",
        visible="1:100,150",
        reserve=RESERVE,
    )
    assert response.status_code == 201, response.text  # type: ignore[attr-defined]
    return bytes(response.content)  # type: ignore[attr-defined]


def assert_three_valid_seals(pdf: bytes, tmp_path: Path) -> None:
    signatures = PdfFileReader(io.BytesIO(pdf)).embedded_regular_signatures
    assert [s.field_name for s in signatures] == ["Dept1", "Dept2", "Dept3"]
    path = tmp_path / "approved.pdf"
    path.write_bytes(pdf)
    assert pdfsig(path, "-nocert").count("Signature is Valid.") == 3


# --- HTTP ------------------------------------------------------------------------------------


def test_sealing_another_departments_field_is_refused_over_http(
    api_client: TestClient, three_departments: Services, tmp_path: Path
) -> None:
    services = three_departments
    step1 = certified_over_http(api_client, services)
    before = documents(services)

    refused = seal_over_http(api_client, services, CODE_2, step1, field="Dept3")

    assert refused.status_code == 403  # type: ignore[attr-defined]
    problem = refused.json()  # type: ignore[attr-defined]
    assert problem["type"] == "urn:econtract:problem:field-reserved"
    assert "'Dept3'" in problem["detail"]
    assert "reserved for another department" in problem["detail"]
    assert documents(services) == before

    step2 = seal_over_http(api_client, services, CODE_2, step1, field="Dept2")
    assert step2.status_code == 201, step2.text  # type: ignore[attr-defined]
    step3 = seal_over_http(
        api_client,
        services,
        CODE_3,
        step2.content,  # type: ignore[attr-defined]
        field="Dept3",
    )
    assert step3.status_code == 201, step3.text  # type: ignore[attr-defined]
    approved = bytes(step3.content)  # type: ignore[attr-defined]
    assert_three_valid_seals(approved, tmp_path)
    report = api_client.post(
        "/v1/verify", files={"file": ("approved.pdf", approved, "application/pdf")}
    ).json()
    assert report["verdict"] == "VALID", report["reasons"]


def test_the_registry_knows_who_may_fill_each_field(
    api_client: TestClient, three_departments: Services
) -> None:
    certified_over_http(api_client, three_departments)
    with three_departments.sessions() as session:
        rows = session.execute(
            select(ReservedSealField.field_name, Department.code, ReservedSealField.seal_id)
            .join(Department, Department.id == ReservedSealField.department_id)
            .order_by(ReservedSealField.field_name)
        ).all()
    assert [tuple(r) for r in rows] == [("Dept2", CODE_2, None), ("Dept3", CODE_3, None)]


def test_the_registry_refuses_another_departments_field_on_its_own_word(
    api_client: TestClient, three_departments: Services
) -> None:
    # The registry's binding holds even for a file whose seed values were stripped: the
    # check needs only the certifying seal's digest and the field's name.
    certified_over_http(api_client, three_departments)
    with three_departments.sessions() as session:
        certifying = session.scalars(select(SealedDocument)).one()
        intruder = session.get(Seal, seal_id(three_departments, CODE_2))
        rightful = session.get(Seal, seal_id(three_departments, CODE_3))
    assert intruder is not None
    assert rightful is not None
    field = FieldToFill(name="Dept3", certification_digest=certifying.signed_digest)
    with pytest.raises(FieldReservedError, match=f"reserved for another department \\({CODE_3}\\)"):
        check_reserved_field(three_departments, field, intruder)
    check_reserved_field(three_departments, field, rightful)


def test_a_reservation_for_an_unknown_department_is_refused_naming_it(
    api_client: TestClient, three_departments: Services
) -> None:
    response = seal_over_http(
        api_client,
        three_departments,
        CODE_1,
        make_pdf(),
        certify="form-filling",
        reserve=[f"Dept2={CODE_2}", "Dept9=91330100MA2B3C4D5E"],
    )
    assert response.status_code == 422  # type: ignore[attr-defined]
    problem = response.json()  # type: ignore[attr-defined]
    assert problem["errors"] == [
        {"pointer": "/reserve/1", "detail": "No department with code '91330100MA2B3C4D5E'."}
    ]
    assert documents(three_departments) == 0


def test_sealing_a_certified_licence_is_refused_as_certified_over_http(
    api_client: TestClient, three_departments: Services
) -> None:
    licence = issue_example(three_departments)
    with three_departments.blobs.open(licence.blob_key) as stored:
        pdf = stored.read()
    before = documents(three_departments)

    response = seal_over_http(api_client, three_departments, CODE_1, pdf)

    assert response.status_code == 409  # type: ignore[attr-defined]
    problem = response.json()  # type: ignore[attr-defined]
    assert problem["type"] == "urn:econtract:problem:document-certified"
    assert "certified: no further changes are allowed" in problem["detail"]
    assert documents(three_departments) == before


# --- the command line ------------------------------------------------------------------------


@pytest.fixture
def cli(three_departments: Services, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    """The command line pointed at the test's registry."""
    settings = three_departments.settings
    monkeypatch.setenv("ECONTRACT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ECONTRACT_DATABASE_URL", settings.effective_database_url)
    monkeypatch.setenv("ECONTRACT_KEY_PASSPHRASE", "test-passphrase-0123")
    get_settings.cache_clear()
    yield three_departments
    get_settings.cache_clear()


def seal_on_cli(
    services: Services, capsys: pytest.CaptureFixture[str], code: str, *args: str
) -> tuple[int, str]:
    capsys.readouterr()
    status = run(["seal", *args, "--seal", seal_id(services, code), "--level", "B-LT"])
    return status, capsys.readouterr().err


def test_sealing_another_departments_field_is_refused_on_the_cli(
    cli: Services, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "in.pdf"
    source.write_bytes(make_pdf())
    step1, step2, step3 = (tmp_path / f"step{n}.pdf" for n in (1, 2, 3))
    reserve = [arg for entry in RESERVE for arg in ("--reserve", entry)]
    status, err = seal_on_cli(
        cli,
        capsys,
        CODE_1,
        str(source),
        "-o",
        str(step1),
        "--certify",
        "form-filling",
        "--field",
        "Dept1",
        "--visible",
        "1:100,150",
        *reserve,
    )
    assert status == 0, err
    before = documents(cli)

    status, err = seal_on_cli(cli, capsys, CODE_2, str(step1), "-o", str(step2), "--field", "Dept3")

    assert status == 1
    assert err.count("\n") == 1, err
    assert err.startswith("error: Field 'Dept3' is reserved for another department")
    assert not step2.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert documents(cli) == before

    status, err = seal_on_cli(cli, capsys, CODE_2, str(step1), "-o", str(step2), "--field", "Dept2")
    assert status == 0, err
    status, err = seal_on_cli(cli, capsys, CODE_3, str(step2), "-o", str(step3), "--field", "Dept3")
    assert status == 0, err
    assert_three_valid_seals(step3.read_bytes(), tmp_path)


def test_sealing_a_certified_licence_is_one_line_on_the_cli(
    cli: Services, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    licence = issue_example(cli)
    source = tmp_path / "licence.pdf"
    with cli.blobs.open(licence.blob_key) as stored:
        source.write_bytes(stored.read())
    out = tmp_path / "resealed.pdf"

    status, err = seal_on_cli(cli, capsys, CODE_1, str(source), "-o", str(out))

    assert status == 1
    assert err == (
        "error: The licence is certified: no further changes are allowed, so it cannot take "
        "another seal.\n"
    )
    assert not out.exists()
