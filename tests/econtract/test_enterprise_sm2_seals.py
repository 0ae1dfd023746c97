"""SM2 seals for enterprises: ``econtract seals create --enterprise CODE --algorithm sm2`` makes
an enterprise's SM2 seal under the SM2 issuing CA, and the enterprise seals its step of an
envelope with it; the contract verifies VALID, the enterprise's seal through the SM2 chain."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from sqlalchemy import select

from econtract import audit, db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.enterprises import add_enterprise
from econtract.envelopes import create_envelope, seal_step
from econtract.models import Department, Seal, SealedDocument, SealKind
from econtract.pki import SM2_ISSUING, SM2_ROOT
from econtract.seals import SealRequest, create_seal
from econtract.services import Services
from econtract.verification import service_policy
from keys.handles import KeyAlgorithm
from keys.names import department_code_of, is_enterprise_seal, seal_kind_of
from keys.oids import ENTERPRISE_SEAL_POLICY
from tests.econtract.test_cli import cli_json
from tests.envelopes.parties import ENTERPRISE_A, ENTERPRISE_B, NAMES, contract_request, make_party
from tests.factories import OPERATOR
from tests.keys.openssl import sm2_signed_by
from tests.signing.sealing import make_pdf
from verify.pdf import verify_pdf
from verify.report import Indication, Verdict


def test_seals_create_makes_an_enterprises_sm2_contract_seal(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    cli_json(capsys, "init")
    cli_json(capsys, "enterprises", "add", "--code", ENTERPRISE_A, "--name", NAMES[ENTERPRISE_A])
    row = cli_json(
        capsys, "seals", "create", "--enterprise", ENTERPRISE_A,
        "--kind", "contract", "--algorithm", "sm2",
    )  # fmt: skip
    assert (row["algorithm"], row["kind"]) == ("sm2", "contract")
    [listed] = [s for s in cli_json(capsys, "seals", "list") if s["id"] == row["id"]]
    assert listed["algorithm"] == "sm2"


def _enterprise_sm2_seal(services: Services, code: str = ENTERPRISE_A) -> Seal:
    """An SM2 contract seal of the enterprise ``code``, added first."""
    with db.transaction(services.sessions) as session:
        add_enterprise(session, code=code, name=NAMES[code], actor=OPERATOR)
        return create_seal(
            session,
            request=SealRequest(
                department_code=code, kind=SealKind.CONTRACT, algorithm=KeyAlgorithm.SM2
            ),
            key_store=services.key_store,
            pki=services.pki,
            actor=OPERATOR,
            clock=services.clock,
        )


def test_an_enterprises_sm2_seal_certificate_is_sm2_and_says_enterprise(
    initialised: Services, tmp_path: Path
) -> None:
    seal = _enterprise_sm2_seal(initialised)
    assert seal.issuer == SM2_ISSUING
    cert = x509.load_der_x509_certificate(seal.certificate_der)
    issuing = initialised.pki.sm2_ca_certificates[SM2_ISSUING]
    assert "Signature Verified Successfully" in sm2_signed_by(tmp_path, cert, issuing)
    assert (department_code_of(cert), seal_kind_of(cert)) == (ENTERPRISE_A, "contract")
    assert is_enterprise_seal(cert)
    policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert ENTERPRISE_SEAL_POLICY in [p.policy_identifier for p in policies]


@pytest.mark.registry
def test_an_enterprise_seals_its_envelope_step_with_sm2_and_the_contract_is_valid(
    initialised: Services,
) -> None:
    seal = _enterprise_sm2_seal(initialised)
    with initialised.sessions() as session:
        body = session.scalars(select(Department).where(Department.code == ENTERPRISE_A)).one()
        enterprise = audit.Actor(name=f"client:{ENTERPRISE_A}", department_id=body.id)
    dept = make_party(initialised, DEMO_DEPARTMENT_CODE, SealKind.OFFICIAL)
    other = make_party(initialised, ENTERPRISE_B)
    deadline = initialised.clock.now() + timedelta(hours=48)
    view = create_envelope(
        initialised,
        source=make_pdf(),
        request=contract_request(dept.seal, deadline, deadline + timedelta(hours=24)),
        actor=dept.actor,
    )
    view = seal_step(initialised, envelope_id=view.id, seal_id=seal.id, actor=enterprise)
    view = seal_step(initialised, envelope_id=view.id, seal_id=other.seal, actor=other.actor)
    view = seal_step(initialised, envelope_id=view.id, seal_id=dept.seal, actor=dept.actor)
    assert view.status == "completed"
    with initialised.sessions() as session:
        document = session.get(SealedDocument, view.document_id)
        assert document is not None
        key = document.blob_key
    with initialised.blobs.open(key) as stream:
        pdf = stream.read()

    report = verify_pdf(pdf, policy=service_policy(initialised))
    assert report.verdict is Verdict.VALID, report.reasons
    assert all(s.indication is Indication.TOTAL_PASSED for s in report.signatures)
    [sm2] = [s for s in report.signatures if s.field_name == "PartyA"]
    assert sm2.algorithms is not None
    assert (sm2.algorithms.digest, sm2.algorithms.signature) == ("sm3", "sm2_sm3")
    assert sm2.signer is not None
    assert (sm2.signer.department_code, sm2.signer.seal_kind) == (ENTERPRISE_A, "contract")
    assert sm2.trust_anchor is not None
    sm2_root = initialised.pki.sm2_ca_certificates[SM2_ROOT]
    assert sm2.trust_anchor.sha256 == sm2_root.fingerprint(hashes.SHA256()).hex()
    # The other parties' seals chain to the first hierarchy's root.
    others = [s for s in report.signatures if s.kind == "seal" and s.field_name != "PartyA"]
    assert others
    root_sha256 = initialised.pki.root.certificate.fingerprint(hashes.SHA256()).hex()
    assert all(s.trust_anchor is not None and s.trust_anchor.sha256 == root_sha256 for s in others)
