"""The catalogue (证照目录): public, every type with what a using department needs to know,
and cacheable."""

from __future__ import annotations

from fastapi.testclient import TestClient

from econtract.bootstrap import DEMO_DEPARTMENT_CODE, DEMO_DEPARTMENT_NAME
from econtract.issuance import TEMPLATES
from econtract.services import Services
from tests.licences import issue_example


def test_the_catalogue_lists_every_type_with_its_schema_without_a_token(
    api_client: TestClient,
) -> None:
    response = api_client.get("/v1/catalogue")
    assert response.status_code == 200, response.text
    listed = {entry["code"]: entry for entry in response.json()}
    assert list(listed) == list(TEMPLATES)
    for code, template in TEMPLATES.items():
        assert listed[code]["name"] == template.name
        assert listed[code]["fields_schema"] == template.schema


def test_the_holder_type_is_read_from_the_holder_fields(api_client: TestClient) -> None:
    listed = {e["code"]: e["holder_types"] for e in api_client.get("/v1/catalogue").json()}
    assert listed == {
        # Named by a credit code.
        "business_licence": ["001"],
        # An organisation by its credit code, or an individual operator by an identity number.
        "food_business_permit": ["001", "111"],
        # The builder is an organisation; the permit carries no personal number.
        "construction_permit": ["001"],
    }


def test_the_defining_authority_is_the_national_type_codes_credit_code(
    api_client: TestClient,
) -> None:
    listed = {
        e["code"]: (e["national_type_code"], e["defining_authority"])
        for e in api_client.get("/v1/catalogue").json()
    }
    assert listed == {
        "business_licence": ("11100000000013338W032", "11100000000013338W"),
        "food_business_permit": ("11100000000013338W046", "11100000000013338W"),
        "construction_permit": ("11100000000019713D001", "11100000000019713D"),
    }


def test_issuing_departments_are_those_that_issued_the_type(
    api_client: TestClient, initialised: Services
) -> None:
    before = {e["code"]: e for e in api_client.get("/v1/catalogue").json()}
    assert all(entry["issuing_departments"] == [] for entry in before.values())
    issue_example(initialised, "business_licence")
    after = {e["code"]: e for e in api_client.get("/v1/catalogue").json()}
    assert after["business_licence"]["issuing_departments"] == [
        {"code": DEMO_DEPARTMENT_CODE, "name": DEMO_DEPARTMENT_NAME}
    ]
    assert after["food_business_permit"]["issuing_departments"] == []


def test_an_unchanged_catalogue_answers_304_to_its_etag(api_client: TestClient) -> None:
    first = api_client.get("/v1/catalogue")
    etag = first.headers["etag"]
    assert "max-age" in first.headers["cache-control"]
    again = api_client.get("/v1/catalogue", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag


def test_a_new_issuing_department_changes_the_etag(
    api_client: TestClient, initialised: Services
) -> None:
    etag = api_client.get("/v1/catalogue").headers["etag"]
    issue_example(initialised, "food_business_permit")
    changed = api_client.get("/v1/catalogue", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
