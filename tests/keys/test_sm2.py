"""SM2 keys, signatures and the SM2 CA hierarchy, judged by OpenSSL 3.0.

OpenSSL's command line computes SM2's Z_A with an empty user id unless given ``distid``; the
service signs with the default id, so every check names it.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from asn1crypto import pem
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from keys.ca import PKIURLs, SealSubject
from keys.errors import KeyStoreError
from keys.filestore import FileKeyStore, KeyFileParameters, pbes2_parameters
from keys.handles import KeyAlgorithm
from keys.pkcs11store import PKCS11KeyStore
from keys.sm2 import generate_sm2_key, sm2_verify
from keys.sm2ca import SM2Hierarchy, create_sm2_hierarchy, issue_sm2_seal_certificate
from keys.store import KeyStoreConfig
from keys.suites import suite_for
from tests.keys.conftest import TOKEN_LABEL
from tests.keys.openssl import SM2_DISTID, openssl, sm2_signed_by, sm2_verify_raw

NOW = datetime.datetime(2026, 1, 5, 8, 0, tzinfo=datetime.UTC)
SUBJECT = SealSubject(
    department_name="杭州市市场监督管理局",
    department_code="91330100MA27XL0E2L",
    seal_kind="licence",
    seal_name="证照专用章",
)


def test_openssl_accepts_a_signature_of_the_signer(tmp_path: Path) -> None:
    key = generate_sm2_key("sm2-seal")
    data = "电子证照 signed attributes".encode()
    signature = key.sign(data)
    assert "Signature Verified Successfully" in sm2_verify_raw(
        tmp_path, key.public_key_der(), data, signature
    )
    # A changed byte is refused, by OpenSSL and by the binding alike.
    assert "Signature Verification Failure" in sm2_verify_raw(
        tmp_path, key.public_key_der(), data + b"!", signature
    )
    assert sm2_verify(key.public_key_der(), signature, data)
    assert not sm2_verify(key.public_key_der(), signature, data + b"!")


def test_an_openssl_signature_verifies_here(tmp_path: Path) -> None:
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2",
            "-out", tmp_path / "key.pem")  # fmt: skip
    openssl("pkey", "-in", tmp_path / "key.pem", "-pubout", "-outform", "DER",
            "-out", tmp_path / "pub.der")  # fmt: skip
    (tmp_path / "data").write_bytes(b"hi chappy")
    openssl("pkeyutl", "-sign", "-rawin", "-digest", "sm3", "-inkey", tmp_path / "key.pem",
            "-in", tmp_path / "data", "-out", tmp_path / "sig", "-pkeyopt", SM2_DISTID)  # fmt: skip
    public = (tmp_path / "pub.der").read_bytes()
    assert sm2_verify(public, (tmp_path / "sig").read_bytes(), b"hi chappy")


def test_an_sm2_key_signs_with_sm3_only() -> None:
    with pytest.raises(KeyStoreError, match="SM3, not sha256"):
        generate_sm2_key("sm2-seal").sign(b"data", "sha256")


def test_the_sm2_suite_names_the_national_oids() -> None:
    suite = suite_for(KeyAlgorithm.SM2)
    assert (suite.digest, suite.digest_oid) == ("sm3", "1.2.156.10197.1.401")
    assert suite.signature_oid == "1.2.156.10197.1.501"
    # SM2-with-SM3 has no parameters (GM/T 0006), not a NULL.
    assert suite.signature_algorithm.dump() == bytes.fromhex("300a06082a811ccf55018375")


def test_the_key_file_is_encrypted_like_the_others(tmp_path: Path) -> None:
    store = FileKeyStore(directory=tmp_path, passphrase="口令 passphrase", require_encryption=True,
                         kdf_rounds=1000)  # fmt: skip
    key = store.generate_sm2("sm2-seal")
    path = store.path_of("sm2-seal")
    assert pbes2_parameters(path.read_bytes()) == KeyFileParameters.current(1000)
    parsed = openssl("asn1parse", "-in", path).stdout
    for part in (":PBES2", ":PBKDF2", ":hmacWithSHA256", ":aes-256-cbc"):
        assert part in parsed
    text = openssl("pkey", "-in", path, "-passin", "pass:口令 passphrase", "-noout", "-text").stdout
    assert "ASN1 OID: SM2" in text
    assert "PRIVATE KEY" not in openssl("pkey", "-in", path, "-passin", "pass:wrong",
                                        check=False).stdout  # fmt: skip
    reopened = FileKeyStore(directory=tmp_path, passphrase="口令 passphrase",
                            require_encryption=True, kdf_rounds=1000)  # fmt: skip
    loaded = reopened.load_sm2("sm2-seal")
    assert loaded.public_key_der() == key.public_key_der()
    assert sm2_verify(key.public_key_der(), loaded.sign(b"x"), b"x")
    # The seal path refuses an SM2 key rather than mistaking it for another.
    with pytest.raises(KeyStoreError, match="SM2 key"):
        reopened.load("sm2-seal")
    with pytest.raises(KeyStoreError, match="generate_sm2"):
        reopened.generate("other", KeyAlgorithm.SM2)


def test_rewrap_re_encrypts_an_sm2_key(tmp_path: Path) -> None:
    store = FileKeyStore(directory=tmp_path, passphrase="old", require_encryption=True,
                         kdf_rounds=1000)  # fmt: skip
    key = store.generate_sm2("sm2-seal")
    assert store.rewrap(new_passphrase="new").changed == ["sm2-seal"]
    openssl("pkey", "-in", store.path_of("sm2-seal"), "-passin", "pass:new", "-noout")
    assert store.load_sm2("sm2-seal").public_key_der() == key.public_key_der()


def test_a_token_without_sm2_refuses_an_sm2_key(softhsm_config: KeyStoreConfig) -> None:
    store = PKCS11KeyStore.open(softhsm_config)
    with pytest.raises(KeyStoreError) as caught:
        store.generate("sm2-seal", KeyAlgorithm.SM2)
    message = str(caught.value)
    assert "\n" not in message
    assert repr(TOKEN_LABEL) in message
    assert "CKM_SM2_SM3" in message


@pytest.fixture(scope="module")
def hierarchy() -> SM2Hierarchy:
    return create_sm2_hierarchy(
        root_key=generate_sm2_key("sm2-root"),
        issuing_key=generate_sm2_key("sm2-issuing"),
        name="Test",
        urls=PKIURLs(base_url="http://127.0.0.1:8000"),
        now=NOW,
    )


def _seal_certificate(hierarchy: SM2Hierarchy) -> x509.Certificate:
    return issue_sm2_seal_certificate(
        hierarchy.issuing,
        generate_sm2_key("sm2-seal").public_key_info(),
        subject=SUBJECT,
        ca_name=hierarchy.ca_name,
        urls=hierarchy.urls,
        not_before=NOW,
        not_after=NOW + datetime.timedelta(days=365),
    )


def test_each_certificate_of_the_chain_is_signed_sm2_with_sm3_by_its_issuer(
    hierarchy: SM2Hierarchy, tmp_path: Path
) -> None:
    seal = _seal_certificate(hierarchy)
    root, issuing = hierarchy.root.certificate, hierarchy.issuing.certificate
    for cert, issuer in ((root, root), (issuing, root), (seal, issuing)):
        assert "Signature Verified Successfully" in sm2_signed_by(tmp_path, cert, issuer)
    # The wrong issuer's key does not verify it.
    assert "Signature Verification Failure" in sm2_signed_by(tmp_path, seal, root)


def test_openssl_x509_shows_sm2_with_sm3_and_the_sm2_curve(
    hierarchy: SM2Hierarchy, tmp_path: Path
) -> None:
    seal = _seal_certificate(hierarchy)
    path = tmp_path / "seal.pem"
    path.write_bytes(seal.public_bytes(Encoding.PEM))
    text = openssl("x509", "-in", path, "-noout", "-text").stdout
    assert text.count("Signature Algorithm: SM2-with-SM3") == 2
    assert "ASN1 OID: SM2" in text
    assert "http://127.0.0.1:8000/pki/crl/sm2-issuing.crl" in text
    assert "http://127.0.0.1:8000/pki/ocsp" in text
    # The key identifiers link the chain as in the other hierarchy.
    aki = seal.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = hierarchy.issuing.certificate.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier
    ).value
    assert aki.key_identifier == ski.digest
    assert hierarchy.issuing.certificate.issuer == hierarchy.root.certificate.subject
    _, _, der = pem.unarmor(path.read_bytes())
    assert der == seal.public_bytes(Encoding.DER)
