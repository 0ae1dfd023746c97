"""What the service publishes about SM2 seals, signed with SM2: timestamps, CRLs, OCSP answers.

OpenSSL 3.0 is the judge. It reads each structure (``ts -reply -text``, ``crl -text``,
``ocsp -resp_text``); Debian's 3.0 cannot check an SM2 signature inside them (``openssl
verify`` and ``crl -verify`` fail on SM2-with-SM3, a known 3.0 limitation), so every
signature is checked over its to-be-signed bytes with ``pkeyutl -verify -rawin -digest sm3``
and the default user id.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from asn1crypto import cms, ocsp, tsp
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from econtract import audit, db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE, initialise
from econtract.models import Authority, SealKind
from econtract.pki import SM2_ISSUING, SM2_ROOT, SM2_TSA
from econtract.seals import SealRequest, create_seal, revoke_seal
from econtract.services import Services
from keys.handles import KeyAlgorithm
from keys.tsa import TimeStampResponse
from tests.keys.openssl import openssl, sm2_verify_raw

VERIFIED = "Signature Verified Successfully"
TSQ = {"Content-Type": "application/timestamp-query"}
OCSP = {"Content-Type": "application/ocsp-request"}


def _public_key_der(cert: x509.Certificate) -> bytes:
    return bytes(asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER)).public_key.dump())


def _sm2_seal(services: Services) -> tuple[str, x509.Certificate]:
    """A new SM2 seal of the demo department: its id and certificate."""
    with db.transaction(services.sessions) as session:
        seal = create_seal(
            session,
            request=SealRequest(
                department_code=DEMO_DEPARTMENT_CODE,
                kind=SealKind.CONTRACT,
                algorithm=KeyAlgorithm.SM2,
            ),
            key_store=services.key_store,
            pki=services.pki,
            actor=audit.Actor.operator("test"),
            clock=services.clock,
        )
        return seal.id, x509.load_der_x509_certificate(seal.certificate_der)


def _revoke(services: Services, seal_id: str) -> None:
    with db.transaction(services.sessions) as session:
        revoke_seal(
            session,
            seal_id=seal_id,
            reason="keyCompromise",
            actor=audit.Actor.operator("test"),
            clock=services.clock,
        )


@pytest.fixture
def sm2_files(initialised: Services, tmp_path: Path) -> dict[str, Path]:
    """The SM2 CA certificates as PEM files."""
    files = {}
    for name, cert in initialised.pki.sm2_ca_certificates.items():
        files[name] = tmp_path / f"{name}.pem"
        files[name].write_bytes(cert.public_bytes(Encoding.PEM))
    return files


def test_the_sm2_issuing_crl_lists_a_revoked_sm2_seal_signed_sm2_with_sm3(
    api_client: TestClient, initialised: Services, tmp_path: Path
) -> None:
    (_, kept), (revoked_id, revoked) = _sm2_seal(initialised), _sm2_seal(initialised)
    before = api_client.get(f"/pki/crl/{SM2_ISSUING}.crl")
    assert before.status_code == 200
    assert before.headers["content-type"] == "application/pkix-crl"
    _revoke(initialised, revoked_id)
    response = api_client.get(f"/pki/crl/{SM2_ISSUING}.crl")
    (tmp_path / "sm2.crl").write_bytes(response.content)
    text = openssl("crl", "-inform", "DER", "-in", tmp_path / "sm2.crl", "-noout", "-text").stdout
    assert "Signature Algorithm: SM2-with-SM3" in text
    assert f"{revoked.serial_number:X}" in text.replace(":", "").upper()
    assert f"{kept.serial_number:X}" not in text.replace(":", "").upper()
    assert "Key Compromise" in text
    assert "SM2 Seal CA" in text
    # The revocation is seen at once: a new CRL with a higher number.
    numbers = [
        asn1_crl.CertificateList.load(r.content)["tbs_cert_list"]["crl_extensions"]
        for r in (before, response)
    ]
    assert [n[0]["extn_value"].native for n in numbers] == [
        numbers[0][0]["extn_value"].native,
        numbers[0][0]["extn_value"].native + 1,
    ]
    parsed = asn1_crl.CertificateList.load(response.content)
    issuing = initialised.pki.sm2_ca_certificates[SM2_ISSUING]
    signed = (parsed["tbs_cert_list"].dump(), parsed["signature"].native)
    assert VERIFIED in sm2_verify_raw(tmp_path, _public_key_der(issuing), *signed)
    # The other hierarchy's CA key does not verify it; a changed byte does not verify.
    other = _public_key_der(initialised.pki.sm2_ca_certificates[SM2_ROOT])
    assert VERIFIED not in sm2_verify_raw(tmp_path, other, *signed)
    assert VERIFIED not in sm2_verify_raw(
        tmp_path, _public_key_der(issuing), signed[0] + b"\0", signed[1]
    )
    # The first hierarchy's CRL still lists no SM2 seal.
    first = x509.load_der_x509_crl(api_client.get("/pki/crl/issuing.crl").content)
    assert first.get_revoked_certificate_by_serial_number(revoked.serial_number) is None


def test_the_sm2_root_crl_is_signed_by_the_sm2_root(
    api_client: TestClient, initialised: Services, tmp_path: Path
) -> None:
    response = api_client.get(f"/pki/crl/{SM2_ROOT}.crl")
    assert response.status_code == 200
    (tmp_path / "root.crl").write_bytes(response.content)
    text = openssl("crl", "-inform", "DER", "-in", tmp_path / "root.crl", "-noout", "-text").stdout
    assert "Signature Algorithm: SM2-with-SM3" in text
    assert "No Revoked Certificates" in text
    parsed = asn1_crl.CertificateList.load(response.content)
    root = initialised.pki.sm2_ca_certificates[SM2_ROOT]
    assert VERIFIED in sm2_verify_raw(
        tmp_path, _public_key_der(root), parsed["tbs_cert_list"].dump(), parsed["signature"].native
    )
    assert api_client.get("/pki/crl/sm2-nothing.crl").status_code == 404


def _ocsp_answer(
    api_client: TestClient, sm2_files: dict[str, Path], cert: x509.Certificate, tmp_path: Path
) -> tuple[str, bytes]:
    (tmp_path / "seal.pem").write_bytes(cert.public_bytes(Encoding.PEM))
    openssl("ocsp", "-issuer", sm2_files[SM2_ISSUING], "-cert", tmp_path / "seal.pem",
            "-reqout", tmp_path / "req.der")  # fmt: skip
    response = api_client.post("/pki/ocsp", content=(tmp_path / "req.der").read_bytes(),
                               headers=OCSP)  # fmt: skip
    assert response.status_code == 200
    (tmp_path / "resp.der").write_bytes(response.content)
    text = openssl("ocsp", "-respin", tmp_path / "resp.der", "-resp_text", "-noverify").stdout
    return text, response.content


def test_ocsp_answers_about_sm2_seals_good_then_revoked_signed_sm2_with_sm3(
    api_client: TestClient, initialised: Services, sm2_files: dict[str, Path], tmp_path: Path
) -> None:
    seal_id, cert = _sm2_seal(initialised)
    issuing = initialised.pki.sm2_ca_certificates[SM2_ISSUING]
    text, der = _ocsp_answer(api_client, sm2_files, cert, tmp_path)
    assert "OCSP Response Status: successful (0x0)" in text
    assert "Cert Status: good" in text
    assert "Signature Algorithm: SM2-with-SM3" in text
    basic = ocsp.OCSPResponse.load(der)["response_bytes"]["response"].parsed
    # The SM2 issuing CA answers itself, named by its key hash, and sends its certificate.
    key_hash = asn1_x509.Certificate.load(issuing.public_bytes(Encoding.DER)).public_key.sha1
    assert basic["tbs_response_data"]["responder_id"].chosen.native == key_hash
    assert [c.dump() for c in basic["certs"]] == [issuing.public_bytes(Encoding.DER)]
    signed = (basic["tbs_response_data"].dump(), basic["signature"].native)
    assert VERIFIED in sm2_verify_raw(tmp_path, _public_key_der(issuing), *signed)

    _revoke(initialised, seal_id)
    text, der = _ocsp_answer(api_client, sm2_files, cert, tmp_path)
    assert "Cert Status: revoked" in text
    assert "Revocation Reason: keyCompromise" in text
    basic = ocsp.OCSPResponse.load(der)["response_bytes"]["response"].parsed
    signed = (basic["tbs_response_data"].dump(), basic["signature"].native)
    assert VERIFIED in sm2_verify_raw(tmp_path, _public_key_der(issuing), *signed)


def test_the_tsa_stamps_an_sm3_imprint_with_the_sm2_authority(
    api_client: TestClient, initialised: Services, sm2_files: dict[str, Path], tmp_path: Path
) -> None:
    (tmp_path / "data").write_bytes("电子印章 sealed bytes".encode())
    openssl("ts", "-query", "-data", tmp_path / "data", "-sm3", "-cert",
            "-out", tmp_path / "q.tsq")  # fmt: skip
    response = api_client.post("/pki/tsa", content=(tmp_path / "q.tsq").read_bytes(), headers=TSQ)
    assert response.status_code == 200
    (tmp_path / "r.tsr").write_bytes(response.content)
    text = openssl("ts", "-reply", "-in", tmp_path / "r.tsr", "-text").stdout
    assert "Status: Granted." in text
    assert "Hash Algorithm: sm3" in text
    assert "SM2 Timestamp Authority" in text
    digest = hashlib.new("sm3", (tmp_path / "data").read_bytes()).hexdigest()
    imprint = "".join(
        line.split(" - ")[1][:47].replace("-", " ").replace(" ", "")
        for line in text.split("Message data:")[1].split("Serial")[0].splitlines()
        if " - " in line
    )
    assert imprint == digest

    token = TimeStampResponse.load(response.content)["time_stamp_token"]
    signed_data = token["content"]
    [signer] = signed_data["signer_infos"]
    assert signer["digest_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.401"
    assert signer["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"
    # SM2-with-SM3 has no parameters (GM/T 0010).
    assert signer["signature_algorithm"].dump() == bytes.fromhex("300a06082a811ccf55018375")
    tst_info = signed_data["encap_content_info"]["content"].contents
    attrs = {a["type"].native: a["values"][0] for a in signer["signed_attrs"]}
    assert attrs["message_digest"].native == hashlib.new("sm3", tst_info).digest()
    certs = {c.chosen.subject.human_friendly for c in signed_data["certificates"]}
    assert any("SM2 Timestamp Authority" in c for c in certs)
    assert any("SM2 Seal CA" in c for c in certs)
    tsa_cert = next(
        x509.load_der_x509_certificate(c.chosen.dump())
        for c in signed_data["certificates"]
        if "Timestamp" in c.chosen.subject.human_friendly
    )
    # The signature covers DER(signed attributes), tagged as the SET OF they are.
    signed_attrs = cms.CMSAttributes.load(signer["signed_attrs"].untag().dump()).dump()
    assert signed_attrs[0] == 0x31
    signature = signer["signature"].native
    assert VERIFIED in sm2_verify_raw(tmp_path, _public_key_der(tsa_cert), signed_attrs, signature)
    # The TSA certificate: from the SM2 issuing CA, EKU timeStamping only and critical.
    assert tsa_cert.issuer == initialised.pki.sm2_ca_certificates[SM2_ISSUING].subject
    eku = tsa_cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical
    assert list(eku.value) == [x509.oid.ExtendedKeyUsageOID.TIME_STAMPING]
    pem = tmp_path / "tsa.pem"
    pem.write_bytes(tsa_cert.public_bytes(Encoding.PEM))
    assert "Signature Algorithm: SM2-with-SM3" in openssl("x509", "-in", pem, "-noout",
                                                          "-text").stdout  # fmt: skip


def test_a_sha256_imprint_still_goes_to_the_first_authority(
    api_client: TestClient, tmp_path: Path
) -> None:
    (tmp_path / "data").write_bytes(b"a sealed licence")
    openssl("ts", "-query", "-data", tmp_path / "data", "-sha256", "-cert",
            "-out", tmp_path / "q.tsq")  # fmt: skip
    response = api_client.post("/pki/tsa", content=(tmp_path / "q.tsq").read_bytes(), headers=TSQ)
    assert response.status_code == 200
    token = TimeStampResponse.load(response.content)["time_stamp_token"]
    [signer] = token["content"]["signer_infos"]
    assert signer["signature_algorithm"]["algorithm"].native == "sha256_ecdsa"


def test_the_in_process_sm2_timestamper_stamps_sm3_and_sha256(initialised: Services) -> None:
    tsa = initialised.pki.sm2_tsa
    assert tsa is not None
    assert initialised.pki.sm2_timestamper is not None
    for name in ("sm3", "sha256"):
        digest = hashlib.new(name, b"document").digest()
        token = cms.ContentInfo.load(tsa.stamp(digest, name))
        tst = tsp.TSTInfo.load(token["content"]["encap_content_info"]["content"].contents)
        assert tst["message_imprint"]["hashed_message"].native == digest
        assert tst["message_imprint"]["hash_algorithm"]["algorithm"].native == name
    with pytest.raises(ValueError, match="sha384 is not accepted; use one of sm3, sha256"):
        tsa.stamp(hashlib.sha384(b"document").digest(), "sha384")
    # The first authority still refuses SM3: an SM3 imprint is the SM2 authority's.
    with pytest.raises(ValueError, match="sm3 is not accepted"):
        initialised.pki.tsa.stamp(hashlib.new("sm3", b"document").digest(), "sm3")


def test_a_refused_sm3_query_is_a_400_timestamp_reply(api_client: TestClient) -> None:
    query = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": "sm3"},
                "hashed_message": b"\x01" * 20,
            },
        }
    ).dump()
    response = api_client.post("/pki/tsa", content=query, headers=TSQ)
    assert response.status_code == 400
    assert response.headers["x-problem-detail"] == "The message imprint is not a sm3 digest."
    status = TimeStampResponse.load(response.content)["status"]
    assert status["status"].native == "rejection"


def test_an_sm2_seal_embeds_the_sm2_hierarchy_validation_material(
    initialised: Services, tmp_path: Path
) -> None:
    seal_id, cert = _sm2_seal(initialised)
    pki = initialised.pki
    material = pki.validation_material(cert)
    cas = pki.sm2_ca_certificates
    assert pki.sm2_tsa_authority is not None
    expected = [cas[SM2_ISSUING], cas[SM2_ROOT], pki.sm2_tsa_authority.certificate]
    assert [c.dump() for c in material.certificates] == [
        c.public_bytes(Encoding.DER) for c in expected
    ]
    assert [c.dump() for c in material.crls] == [pki.crl_der(SM2_ROOT), pki.crl_der(SM2_ISSUING)]
    [response] = material.ocsp_responses
    basic = response["response_bytes"]["response"].parsed
    [single] = basic["tbs_response_data"]["responses"]
    assert single["cert_id"]["serial_number"].native == cert.serial_number
    assert single["cert_status"].name == "good"
    signed = (basic["tbs_response_data"].dump(), basic["signature"].native)
    assert VERIFIED in sm2_verify_raw(tmp_path, _public_key_der(cas[SM2_ISSUING]), *signed)

    _revoke(initialised, seal_id)
    material = pki.validation_material(cert)
    basic = material.ocsp_responses[0]["response_bytes"]["response"].parsed
    assert basic["tbs_response_data"]["responses"][0]["cert_status"].name == "revoked"
    # A seal of the first hierarchy still gets the first hierarchy's material.
    first = pki.validation_material(pki.tsa_authority.certificate)
    assert first.certificates[0].dump() == pki.issuing.certificate.public_bytes(Encoding.DER)


def test_a_registry_with_the_sm2_cas_gets_the_sm2_tsa_at_its_next_init(
    initialised: Services,
) -> None:
    with db.transaction(initialised.sessions) as session:
        session.execute(delete(Authority).where(Authority.name == SM2_TSA))
    with initialised.sessions() as session:
        before = {
            row.name: row.certificate_der
            for row in session.scalars(select(Authority).where(Authority.name != SM2_TSA))
        }
    assert initialise(initialised).authorities_created == [SM2_TSA]
    with initialised.sessions() as session:
        rows = {row.name: row.certificate_der for row in session.scalars(select(Authority))}
    assert {n: d for n, d in rows.items() if n != SM2_TSA} == before
    tsa = x509.load_der_x509_certificate(rows[SM2_TSA] or b"")
    assert tsa.issuer == initialised.pki.sm2_ca_certificates[SM2_ISSUING].subject
