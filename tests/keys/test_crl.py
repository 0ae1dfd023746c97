"""Certificate revocation lists."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from keys.crl import RevokedEntry, build_crl
from keys.errors import PKIError
from tests.keys.openssl import openssl
from tests.testpki import PKIFiles, TestPKI, pem


def _crl(pki: TestPKI, entries: list[RevokedEntry]) -> x509.CertificateRevocationList:
    return build_crl(
        pki.issuing,
        revoked=entries,
        crl_number=7,
        this_update=pki.now,
        next_update=pki.now + datetime.timedelta(days=7),
    )


def _revoked_at(pki: TestPKI) -> datetime.datetime:
    return pki.now - datetime.timedelta(hours=1)


@pytest.fixture
def listing(pki: TestPKI) -> x509.CertificateRevocationList:
    """A CRL listing serial 1234 (key compromise) and serial 99 (no reason)."""
    at = _revoked_at(pki)
    return _crl(
        pki, [RevokedEntry(1234, at, x509.ReasonFlags.key_compromise), RevokedEntry(99, at, None)]
    )


def test_crl_is_signed_by_the_ca(pki: TestPKI, listing: x509.CertificateRevocationList) -> None:
    assert listing.is_signature_valid(pki.issuing.certificate.public_key())  # type: ignore[arg-type]
    assert listing.issuer == pki.issuing.certificate.subject


def test_crl_lists_an_entry_with_its_time_and_reason(
    pki: TestPKI, listing: x509.CertificateRevocationList
) -> None:
    revoked = listing.get_revoked_certificate_by_serial_number(1234)
    assert revoked is not None
    assert revoked.revocation_date_utc == _revoked_at(pki)
    reason = revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.key_compromise


def test_crl_entry_without_a_reason_has_no_extensions(
    listing: x509.CertificateRevocationList,
) -> None:
    plain = listing.get_revoked_certificate_by_serial_number(99)
    assert plain is not None
    assert len(plain.extensions) == 0


def test_crl_carries_its_number(pki: TestPKI) -> None:
    crl = _crl(pki, [])
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 7


def test_crl_names_the_issuing_cas_key(pki: TestPKI) -> None:
    crl = _crl(pki, [])
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    extensions = pki.issuing.certificate.extensions
    ski = extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest


def test_openssl_checks_a_revoked_seal_against_the_crl(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    _, live = pki.make_seal()
    _, dead = pki.make_seal()
    crl = _crl(pki, [RevokedEntry(dead.serial_number, pki.now, x509.ReasonFlags.superseded)])
    (tmp_path / "crl.pem").write_bytes(crl.public_bytes(Encoding.PEM))
    root_crl = build_crl(
        pki.root,
        revoked=[],
        crl_number=1,
        this_update=pki.now,
        next_update=pki.now + datetime.timedelta(days=7),
    )
    (tmp_path / "root-crl.pem").write_bytes(root_crl.public_bytes(Encoding.PEM))
    for name, cert in [("live.pem", live), ("dead.pem", dead)]:
        (tmp_path / name).write_bytes(pem(cert))
    args: list[str | Path] = [
        "verify",
        "-crl_check_all",
        "-CAfile",
        pki_files.root,
        "-untrusted",
        pki_files.issuing,
        "-CRLfile",
        tmp_path / "crl.pem",
        "-CRLfile",
        tmp_path / "root-crl.pem",
    ]
    assert openssl(*args, tmp_path / "live.pem").stdout.strip().endswith("OK")
    result = openssl(*args, tmp_path / "dead.pem", check=False)
    assert result.returncode != 0
    assert "certificate revoked" in result.stdout + result.stderr


def test_next_update_must_follow_this_update(pki: TestPKI) -> None:
    with pytest.raises(PKIError, match="next update"):
        build_crl(pki.issuing, revoked=[], crl_number=1, this_update=pki.now, next_update=pki.now)
