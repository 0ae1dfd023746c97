"""The report: its JSON validates against the versioned schema; the HTML is printable."""

from __future__ import annotations

import dataclasses
import json

import jsonschema
import pytest

from signing.options import SealLevel
from tests.testpki import TestPKI
from tests.verify import forge
from tests.verify.forge import Sealed
from verify.pdf import verify_pdf
from verify.policy import VerificationPolicy
from verify.registry import InMemoryRegistry, RegistryMatch
from verify.report import REPORT_SCHEMA, Report, report_schema


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
    page = report.to_html()
    assert page.startswith("<!DOCTYPE html>")
    assert "有效 VALID</p>" in page
    assert report.file_sha256 in page
    assert "<script" not in page


def test_html_escapes_names_from_the_file(policy: VerificationPolicy, licence_lt: Sealed) -> None:
    report = verify_pdf(licence_lt.pdf, policy=policy)
    sig = dataclasses.replace(report.signatures[0], field_name="<script>alert(1)</script>")
    page = dataclasses.replace(report, signatures=(sig,)).to_html()
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
