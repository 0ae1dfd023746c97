"""Every issued licence carries its national identity: the identifier in the registry and
the API, the GB/T 36903 metadata in the API and in the sealed PDF's XMP."""

from __future__ import annotations

import secrets
from pathlib import Path

from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import select

from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.certificates import change_status, supersede
from econtract.issuance import IssueRequest, issue_certificate
from econtract.licence_identifier import parse
from econtract.licence_metadata import NATIONAL_STATUS
from econtract.models import Certificate
from econtract.services import Services
from tests.factories import OPERATOR, token_for
from tests.licences import holder_fields, issue_example
from tests.sharing.xmp import licence_metadata
from tests.signing.sealing import pdfsig


def _pdf(services: Services, certificate: Certificate, tmp_path: Path) -> Path:
    path = tmp_path / f"{certificate.number}.pdf"
    path.write_bytes((services.settings.blob_dir / certificate.blob_key).read_bytes())
    return path


def _supersede(services: Services, old: Certificate) -> Certificate:
    return supersede(
        services,
        certificate_id=old.id,
        department_code=DEMO_DEPARTMENT_CODE,
        fields=None,
        valid_from=None,
        valid_until=None,
        actor=OPERATOR,
    ).certificate


def test_an_issued_licences_identifier_in_the_api_parses_and_names_its_type_issuer_and_number(
    api_client: TestClient, initialised: Services
) -> None:
    token = token_for(api_client, initialised)
    created = api_client.post(
        "/v1/certificates",
        json={"type": "business_licence", "fields": holder_fields()},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": secrets.token_hex(8)},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    identifier = parse(body["identifier"])  # raises unless every part and the check are right
    assert identifier.type_code == "11100000000013338W032"
    assert identifier.issuer_code == DEMO_DEPARTMENT_CODE
    assert identifier.serial == body["number"]
    assert identifier.version_text == "001"
    read = api_client.get(
        f"/v1/certificates/{body['id']}", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert read["identifier"] == body["identifier"]


def test_the_api_carries_the_gbt36903_metadata_with_the_national_status(
    api_client: TestClient, initialised: Services
) -> None:
    certificate = issue_example(initialised)
    token = token_for(api_client, initialised)
    url = f"/v1/certificates/{certificate.id}"
    metadata = api_client.get(url, headers={"Authorization": f"Bearer {token}"}).json()[
        "national_metadata"
    ]
    assert metadata["identifier"] == certificate.identifier
    assert metadata["name"] == "营业执照"
    assert metadata["type_code"] == "11100000000013338W032"
    assert metadata["issuer_code"] == DEMO_DEPARTMENT_CODE
    assert metadata["issuer_name"] == "杭州市市场监督管理局"
    assert metadata["holder_code"] == certificate.holder_code
    assert metadata["holder_type"] == "001"
    assert (metadata["status_code"], metadata["status"]) == NATIONAL_STATUS["valid"]
    change_status(
        initialised,
        certificate_id=certificate.id,
        action="revoke",
        reason="吊销",
        actor=OPERATOR,
    )
    revoked = api_client.get(url, headers={"Authorization": f"Bearer {token}"}).json()
    assert revoked["national_metadata"]["status"] == NATIONAL_STATUS["revoked"][1]


def test_a_licence_of_a_person_names_the_holder_by_citizen_id_number(
    initialised: Services, tmp_path: Path
) -> None:
    fields = holder_fields("food_business_permit")
    del fields["credit_code"]
    fields["id_number"] = "11010519491231002X"
    certificate = issue_certificate(
        initialised,
        department_code=DEMO_DEPARTMENT_CODE,
        request=IssueRequest(type_code="food_business_permit", fields=fields),
        actor=OPERATOR,
    ).certificate
    xmp = licence_metadata(_pdf(initialised, certificate, tmp_path))
    assert (xmp["holder_code"], xmp["holder_type"]) == ("11010519491231002X", "111")


def test_supersede_gives_version_002_under_the_new_number(initialised: Services) -> None:
    old = issue_example(initialised)
    new = _supersede(initialised, old)
    newer = _supersede(initialised, new)
    assert [c.version for c in (old, new, newer)] == [1, 2, 3]
    identifier = parse(new.identifier)
    assert identifier.version_text == "002"
    assert identifier.serial == new.number != old.number
    assert parse(newer.identifier).version_text == "003"


def test_the_xmp_of_an_issued_pdf_carries_identifier_holder_code_and_status(
    initialised: Services, tmp_path: Path
) -> None:
    certificate = issue_example(initialised)
    xmp = licence_metadata(_pdf(initialised, certificate, tmp_path))
    assert xmp["identifier"] == certificate.identifier
    assert xmp["holder_code"] == certificate.holder_code
    assert xmp["holder_type"] == "001"
    assert (xmp["status_code"], xmp["status"]) == NATIONAL_STATUS["valid"]
    assert xmp["number"] == certificate.number
    assert xmp["valid_from"] == certificate.valid_from.isoformat()


def test_pdfsig_still_validates_a_licence_that_carries_xmp(
    initialised: Services, tmp_path: Path
) -> None:
    report = pdfsig(_pdf(initialised, issue_example(initialised), tmp_path))
    assert "Signature Validation: Signature is Valid." in report
    assert "Total document signed" in report or "Not total document signed" in report


def test_migration_0007_gives_existing_certificates_the_identifiers_issuance_gives(
    initialised: Services,
) -> None:
    old = issue_example(initialised)
    new = _supersede(initialised, old)
    other = issue_example(initialised, "construction_permit")
    issued = {c.id: (c.identifier, c.version) for c in (old, new, other)}
    config = db.alembic_config(initialised.engine)
    command.downgrade(config, "0006")
    command.upgrade(config, "0007")
    with initialised.sessions() as session:
        rows = session.execute(
            select(Certificate.id, Certificate.identifier, Certificate.version)
        ).all()
    assert {row.id: (row.identifier, row.version) for row in rows} == issued
