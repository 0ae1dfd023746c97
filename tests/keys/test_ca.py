"""The CA hierarchy and the certificates it issues."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from keys.ca import (
    SealSubject,
    create_root_ca,
    department_code_of,
    issue_seal_certificate,
    seal_kind_of,
)
from keys.errors import PKIError
from keys.handles import KeyAlgorithm, generate_software_key
from keys.oids import ORGANIZATION_IDENTIFIER, SEAL_KIND_POLICIES, SEAL_POLICY
from tests.keys.openssl import openssl
from tests.testpki import DEPARTMENT_CODE, PKIFiles, TestPKI, pem

_E = TypeVar("_E", bound=x509.ExtensionType)


def _ext(cert: x509.Certificate, kind: type[_E]) -> x509.Extension[_E]:
    return cert.extensions.get_extension_for_class(kind)


@pytest.mark.parametrize("algorithm", [a for a in KeyAlgorithm if a is not KeyAlgorithm.SM2])
def test_openssl_verifies_a_seal_certificate(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path, algorithm: KeyAlgorithm
) -> None:
    _, cert = pki.make_seal(algorithm)
    (tmp_path / "seal.pem").write_bytes(pem(cert))
    result = openssl(
        "verify", "-CAfile", pki_files.root, "-untrusted", pki_files.issuing, tmp_path / "seal.pem"
    )
    assert result.stdout.strip().endswith(": OK")


def test_root_is_self_signed_ca(pki: TestPKI) -> None:
    root = pki.root.certificate
    assert root.issuer == root.subject
    root.verify_directly_issued_by(root)
    assert _ext(root, x509.BasicConstraints).value == x509.BasicConstraints(
        ca=True, path_length=None
    )
    assert _ext(root, x509.BasicConstraints).critical
    assert pki.root.chain == ()


def test_issuing_ca_is_issued_by_the_root(pki: TestPKI) -> None:
    pki.issuing.certificate.verify_directly_issued_by(pki.root.certificate)
    assert pki.issuing.chain == (pki.root.certificate,)


def test_issuing_ca_has_path_length_zero(pki: TestPKI) -> None:
    bc = _ext(pki.issuing.certificate, x509.BasicConstraints)
    assert bc.critical
    assert bc.value == x509.BasicConstraints(ca=True, path_length=0)


def test_issuing_ca_key_usage_is_certificate_and_crl_signing(pki: TestPKI) -> None:
    ku = _ext(pki.issuing.certificate, x509.KeyUsage)
    assert ku.critical
    assert ku.value.key_cert_sign
    assert ku.value.crl_sign


def test_issuing_ca_points_at_the_roots_crl(pki: TestPKI) -> None:
    dp = _ext(pki.issuing.certificate, x509.CRLDistributionPoints).value
    assert dp[0].full_name == [x509.UniformResourceIdentifier(pki.urls.crl_url("root"))]


def test_ca_signatures_use_sha384_for_p384(pki: TestPKI) -> None:
    assert pki.issuing.certificate.signature_hash_algorithm is not None
    assert pki.issuing.certificate.signature_hash_algorithm.name == "sha384"


def test_seal_key_usage_is_signature_and_non_repudiation(pki: TestPKI) -> None:
    _, cert = pki.make_seal()
    ku = _ext(cert, x509.KeyUsage)
    assert ku.critical
    assert ku.value.digital_signature
    assert ku.value.content_commitment
    assert not ku.value.key_cert_sign


def test_a_seal_certificate_is_not_a_ca(pki: TestPKI) -> None:
    _, cert = pki.make_seal()
    assert _ext(cert, x509.BasicConstraints).value.ca is False


def test_seal_points_at_the_issuing_cas_crl(pki: TestPKI) -> None:
    _, cert = pki.make_seal()
    dp = _ext(cert, x509.CRLDistributionPoints).value
    assert dp[0].full_name == [
        x509.UniformResourceIdentifier("http://127.0.0.1:8000/pki/crl/issuing.crl")
    ]


def test_seal_points_at_the_ocsp_responder_and_the_issuing_ca(pki: TestPKI) -> None:
    _, cert = pki.make_seal()
    access = _ext(cert, x509.AuthorityInformationAccess).value
    aia = {d.access_method: d.access_location.value for d in access}
    assert aia == {
        AuthorityInformationAccessOID.OCSP: "http://127.0.0.1:8000/pki/ocsp",
        AuthorityInformationAccessOID.CA_ISSUERS: "http://127.0.0.1:8000/pki/ca/issuing.cer",
    }


def test_seal_subject_names_the_department(pki: TestPKI) -> None:
    _, cert = pki.make_seal()
    values = {a.oid: a.value for a in cert.subject}
    assert values == {
        NameOID.COUNTRY_NAME: "CN",
        NameOID.ORGANIZATION_NAME: "杭州市市场监督管理局",
        ORGANIZATION_IDENTIFIER: f"NTRCN-{DEPARTMENT_CODE}",
        NameOID.ORGANIZATIONAL_UNIT_NAME: "证照专用章",
        NameOID.COMMON_NAME: "杭州市市场监督管理局证照专用章",
    }
    assert department_code_of(cert) == DEPARTMENT_CODE


@pytest.mark.parametrize("kind", sorted(SEAL_KIND_POLICIES))
def test_seal_kind_is_readable_from_the_policies(pki: TestPKI, kind: str) -> None:
    _, cert = pki.make_seal(seal_kind=kind)
    policies = [p.policy_identifier for p in _ext(cert, x509.CertificatePolicies).value]
    assert policies == [SEAL_POLICY, SEAL_KIND_POLICIES[kind]]
    assert seal_kind_of(cert) == kind


def test_readers_return_none_for_other_certificates(pki: TestPKI) -> None:
    assert seal_kind_of(pki.root.certificate) is None
    assert department_code_of(pki.root.certificate) is None


def test_seal_serials_are_random_and_positive(pki: TestPKI) -> None:
    serials = {pki.make_seal()[1].serial_number for _ in range(5)}
    assert len(serials) == 5
    assert all(0 < s < 2**159 for s in serials)


def test_seal_keeps_a_given_serial_and_validity(pki: TestPKI) -> None:
    key = generate_software_key("given", KeyAlgorithm.EC_P256)
    start = pki.now + datetime.timedelta(hours=1)
    cert = issue_seal_certificate(
        pki.issuing,
        key.public_key(),
        subject=SealSubject(
            department_name="测试局",
            department_code=DEPARTMENT_CODE,
            seal_kind="official",
            seal_name="公章",
        ),
        ca_name="issuing",
        urls=pki.urls,
        not_before=start,
        not_after=start + datetime.timedelta(days=30),
        serial_number=12345,
    )
    assert cert.serial_number == 12345
    assert cert.not_valid_before_utc == start
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)


def test_seal_may_not_outlive_its_ca(pki: TestPKI) -> None:
    key = generate_software_key("long", KeyAlgorithm.EC_P256)
    with pytest.raises(PKIError, match="outlive"):
        issue_seal_certificate(
            pki.issuing,
            key.public_key(),
            subject=SealSubject(
                department_name="测试局",
                department_code=DEPARTMENT_CODE,
                seal_kind="official",
                seal_name="公章",
            ),
            ca_name="issuing",
            urls=pki.urls,
            not_before=pki.now,
            not_after=pki.now + datetime.timedelta(days=365 * 30),
        )


def test_tsa_certificate_has_critical_time_stamping_eku(pki: TestPKI) -> None:
    eku = _ext(pki.tsa.certificate, x509.ExtendedKeyUsage)
    assert eku.critical
    assert list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    assert _ext(pki.tsa.certificate, x509.KeyUsage).value.digital_signature


def test_ocsp_responder_certificate_has_ocsp_signing_and_nocheck(pki: TestPKI) -> None:
    cert = pki.ocsp.certificate
    assert list(_ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    assert isinstance(_ext(cert, x509.OCSPNoCheck).value, x509.OCSPNoCheck)
    cert.verify_directly_issued_by(pki.issuing.certificate)


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.RSA_2048, KeyAlgorithm.EC_P256])
def test_root_with_other_algorithms_is_self_signed(algorithm: KeyAlgorithm) -> None:
    root = create_root_ca(generate_software_key("r", algorithm), common_name="R", organization="O")
    root.certificate.verify_directly_issued_by(root.certificate)
    assert root.certificate.signature_hash_algorithm is not None
    assert root.certificate.signature_hash_algorithm.name == "sha256"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("department_code", "91330100ABC", "unified social credit code"),
        ("seal_kind", "secret", "Unknown seal kind"),
        ("region", "3301", "6-digit"),
        ("seal_name", " ", "seal name"),
    ],
)
def test_seal_subject_validates(field: str, value: str, message: str) -> None:
    fields: dict[str, str] = {
        "department_name": "测试局",
        "department_code": DEPARTMENT_CODE,
        "seal_kind": "official",
        "seal_name": "公章",
        field: value,
    }
    with pytest.raises(ValueError, match=message):
        SealSubject(**fields)  # type: ignore[arg-type]
