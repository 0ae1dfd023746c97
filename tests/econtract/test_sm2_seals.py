"""The SM2 hierarchy that ``econtract init`` makes, its publication, and SM2 seals."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from econtract import audit, db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE, initialise
from econtract.cli import EXIT_USAGE, run
from econtract.models import Authority, Seal, SealKind
from econtract.pki import ROOT, SM2_AUTHORITIES, SM2_ISSUING, SM2_ROOT
from econtract.seals import SealRequest, create_seal
from econtract.services import Services
from keys.filestore import KeyFileParameters, pbes2_parameters
from keys.handles import KeyAlgorithm
from tests.econtract.test_cli import cli_json
from tests.keys.openssl import openssl, sm2_signed_by


def test_init_makes_an_sm2_root_and_issuing_ca_signed_sm2_with_sm3(
    initialised: Services, tmp_path: Path
) -> None:
    cas = initialised.pki.sm2_ca_certificates
    root, issuing = cas[SM2_ROOT], cas[SM2_ISSUING]
    assert "Signature Verified Successfully" in sm2_signed_by(tmp_path, root, root)
    assert "Signature Verified Successfully" in sm2_signed_by(tmp_path, issuing, root)
    assert issuing.issuer == root.subject
    path = tmp_path / "issuing.pem"
    path.write_bytes(issuing.public_bytes(Encoding.PEM))
    text = openssl("x509", "-in", path, "-noout", "-text").stdout
    assert "Signature Algorithm: SM2-with-SM3" in text
    assert "ASN1 OID: SM2" in text
    assert f"/pki/ca/{SM2_ROOT}.cer" in text


def test_a_registry_made_before_gets_the_sm2_hierarchy_at_its_next_init(
    initialised: Services,
) -> None:
    with db.transaction(initialised.sessions) as session:
        session.execute(delete(Authority).where(Authority.name.in_(SM2_AUTHORITIES)))
    with initialised.sessions() as session:
        root_before = session.scalars(select(Authority).where(Authority.name == ROOT)).one()
        root_der = root_before.certificate_der
    assert sorted(initialise(initialised).authorities_created) == sorted(SM2_AUTHORITIES)
    with initialised.sessions() as session:
        root_after = session.scalars(select(Authority).where(Authority.name == ROOT)).one()
        assert root_after.certificate_der == root_der
    assert initialise(initialised).authorities_created == []


def test_the_sm2_cas_are_published_beside_the_others(
    api_client: TestClient, initialised: Services
) -> None:
    body = api_client.get("/pki/trust-list.json").json()
    cas = initialised.pki.sm2_ca_certificates
    assert body["sm2_root"]["name"] == SM2_ROOT
    assert body["sm2_root"]["pem"] == cas[SM2_ROOT].public_bytes(Encoding.PEM).decode()
    assert [e["name"] for e in body["sm2_intermediates"]] == [SM2_ISSUING]
    # The other hierarchy's root stays the root relying parties pin.
    assert body["root"]["name"] == ROOT
    for name, cert in cas.items():
        der = api_client.get(f"/pki/ca/{name}.cer")
        assert der.status_code == 200
        assert x509.load_der_x509_certificate(der.content) == cert
        assert api_client.get(f"/pki/ca/{name}.pem").status_code == 200
    assert body["crl_urls"][SM2_ISSUING].endswith(f"/pki/crl/{SM2_ISSUING}.crl")
    assert body["crl_urls"][SM2_ROOT].endswith(f"/pki/crl/{SM2_ROOT}.crl")


def test_seals_create_with_sm2_makes_an_encrypted_key_and_an_sm2_certificate(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    cli_json(capsys, "init")
    row = cli_json(
        capsys, "seals", "create", "--department", DEMO_DEPARTMENT_CODE, "--algorithm", "sm2"
    )
    assert row["algorithm"] == "sm2"
    data_dir = Path(cli_env["ECONTRACT_DATA_DIR"])
    [key_file] = data_dir.rglob(f"{row['id']}.key.pem")
    assert pbes2_parameters(key_file.read_bytes()) == KeyFileParameters.current(
        int(cli_env["ECONTRACT_KEY_KDF_ROUNDS"])
    )
    text = openssl(
        "pkey", "-in", key_file, "-passin", f"pass:{cli_env['ECONTRACT_KEY_PASSPHRASE']}",
        "-noout", "-text",
    ).stdout  # fmt: skip
    assert "ASN1 OID: SM2" in text


def test_an_sm2_seal_certificate_chains_to_the_sm2_root(
    initialised: Services, tmp_path: Path
) -> None:
    with db.transaction(initialised.sessions) as session:
        seal = create_seal(
            session,
            request=SealRequest(
                department_code=DEMO_DEPARTMENT_CODE,
                kind=SealKind.CONTRACT,
                algorithm=KeyAlgorithm.SM2,
            ),
            key_store=initialised.key_store,
            pki=initialised.pki,
            actor=audit.Actor.operator("test"),
            clock=initialised.clock,
        )
        assert seal.issuer == SM2_ISSUING
        cert = x509.load_der_x509_certificate(seal.certificate_der)
    cas = initialised.pki.sm2_ca_certificates
    assert "Signature Verified Successfully" in sm2_signed_by(tmp_path, cert, cas[SM2_ISSUING])
    assert cert.issuer == cas[SM2_ISSUING].subject
    with initialised.sessions() as session:
        assert session.scalars(select(Seal).where(Seal.id == seal.id)).one().algorithm == "sm2"


def test_a_bad_algorithm_is_a_one_line_usage_error(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    status = run(["seals", "create", "--department", "x", "--algorithm", "sm9"])
    assert status == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "sm9" in err
