"""``openssl verify`` on the SM2 hierarchy: it accepts the chain link by link when told the SM2
user id, and what it cannot check, pkeyutl does.

OpenSSL 3.0 computes an SM2 signature's Z_A with the user id of the certificate being checked;
a certificate read from a file has none (an empty id) unless ``-vfyopt distid:…`` sets one,
and ``-vfyopt`` sets it on the target certificate only. So ``openssl verify`` checks one link
per run: the issuing CA's certificate under the root, a seal's certificate under the issuing
CA taken as the trust anchor (``-partial_chain``). The whole chain in one run fails at the
intermediate (its signature is checked with the empty id); ``openssl crl -verify`` and
``verify -crl_check`` have no option for the id at all, so a CRL's SM2 signature is checked by
``pkeyutl -verify -rawin -digest sm3`` over its to-be-signed bytes (as in
``tests/econtract/test_sm2_revocation.py``), which is also how a root's self-signature is
checked (``openssl verify`` does not check a trust anchor's own signature).
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from keys.crl import build_crl
from tests.keys.openssl import SM2_DISTID, openssl, sm2_signed_by, sm2_verify_raw
from tests.signing.sm2 import sm2_hierarchy, sm2_identity
from tests.verify.sm2pki import build_sm2_test_pki

_VERIFIED = "Signature Verified Successfully"


@pytest.fixture(scope="module")
def pems(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The SM2 root, issuing CA and a seal, and a look-alike SM2 issuing CA and seal, as PEM."""
    directory = tmp_path_factory.mktemp("sm2-pems")
    hierarchy = sm2_hierarchy()
    impostor = build_sm2_test_pki().look_alike()
    certificates = {
        "root": hierarchy.root.certificate,
        "issuing": hierarchy.issuing.certificate,
        "seal": sm2_identity().certificate,
        "impostor-issuing": impostor.hierarchy.issuing.certificate,
        "impostor-seal": impostor.identity().certificate,
    }
    paths = {}
    for name, certificate in certificates.items():
        paths[name] = directory / f"{name}.pem"
        paths[name].write_bytes(certificate.public_bytes(Encoding.PEM))
    return paths


def _verify(*args: str | Path) -> str:
    result = openssl("verify", *args, check=False)
    return result.stdout + result.stderr


def test_openssl_verify_accepts_the_sm2_issuing_ca_under_the_sm2_root(
    pems: dict[str, Path],
) -> None:
    out = _verify("-vfyopt", SM2_DISTID, "-CAfile", pems["root"], pems["issuing"])
    assert f"{pems['issuing']}: OK" in out


def test_openssl_verify_accepts_an_sm2_seal_under_the_sm2_issuing_ca(
    pems: dict[str, Path],
) -> None:
    out = _verify("-partial_chain", "-vfyopt", SM2_DISTID, "-CAfile", pems["issuing"], pems["seal"])
    assert f"{pems['seal']}: OK" in out


def test_openssl_verify_accepts_the_sm2_root_as_a_trust_anchor_and_pkeyutl_its_signature(
    pems: dict[str, Path], tmp_path: Path
) -> None:
    assert f"{pems['root']}: OK" in _verify("-CAfile", pems["root"], pems["root"])
    root = sm2_hierarchy().root.certificate
    assert _VERIFIED in sm2_signed_by(tmp_path, root, root)


def test_openssl_verify_refuses_a_look_alike_sm2_ca_and_its_seal(pems: dict[str, Path]) -> None:
    # The impostor's CAs have our CAs' names and keys of their own.
    for target, anchor in (("impostor-issuing", "root"), ("impostor-seal", "issuing")):
        out = _verify("-partial_chain", "-vfyopt", SM2_DISTID, "-CAfile", pems[anchor],
                      pems[target])  # fmt: skip
        assert f"{pems[target]}: verification failed" in out
        assert ": OK" not in out


def test_without_the_sm2_user_id_openssl_verify_fails_on_the_signature(
    pems: dict[str, Path],
) -> None:
    out = _verify("-CAfile", pems["root"], pems["issuing"])
    assert "certificate signature failure" in out


def test_the_whole_sm2_chain_in_one_run_fails_at_the_intermediate(pems: dict[str, Path]) -> None:
    # -vfyopt gives the id to the target only; the issuing CA's signature is then checked with
    # an empty id. This is why the chain is checked link by link.
    out = _verify("-vfyopt", SM2_DISTID, "-CAfile", pems["root"], "-untrusted", pems["issuing"],
                  pems["seal"])  # fmt: skip
    assert "error 7 at 1 depth lookup: certificate signature failure" in out


def test_openssl_crl_verify_cannot_check_an_sm2_crl_and_pkeyutl_does(tmp_path: Path) -> None:
    hierarchy = sm2_hierarchy()
    now = datetime.datetime.now(datetime.UTC)
    crl = build_crl(
        hierarchy.issuing,
        revoked=(),
        crl_number=1,
        this_update=now,
        next_update=now + datetime.timedelta(days=1),
    )
    (tmp_path / "issuing.crl").write_bytes(crl.public_bytes(Encoding.PEM))
    (tmp_path / "chain.pem").write_bytes(
        b"".join(c.public_bytes(Encoding.PEM) for c in hierarchy.chain)
    )
    result = openssl("crl", "-in", tmp_path / "issuing.crl", "-CAfile", tmp_path / "chain.pem",
                     "-noout", "-verify", check=False)  # fmt: skip
    assert "verify failure" in result.stdout + result.stderr
    parsed = asn1_crl.CertificateList.load(crl.public_bytes(Encoding.DER))
    issuer_key = _public_key(hierarchy.issuing.certificate)
    signature = parsed["signature"].native
    tbs = parsed["tbs_cert_list"].dump()
    assert _VERIFIED in sm2_verify_raw(tmp_path, issuer_key, tbs, signature)
    assert "Verification Failure" in sm2_verify_raw(tmp_path, issuer_key, tbs + b"\0", signature)


def _public_key(certificate: x509.Certificate) -> bytes:
    """The DER SubjectPublicKeyInfo of ``certificate``."""
    parsed = asn1_x509.Certificate.load(certificate.public_bytes(Encoding.DER))
    der: bytes = parsed.public_key.dump()
    return der
