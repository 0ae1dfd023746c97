"""The OCSP responder, checked with the openssl command line."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from keys.ocsp import OCSPResponder, RevocationStatus
from tests.keys.openssl import openssl
from tests.testpki import PKIFiles, TestPKI, pem

REVOKED_AT = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


def _ask_openssl(
    responder: OCSPResponder, files: PKIFiles, cert: x509.Certificate, tmp_path: Path
) -> str:
    """Make a request with openssl, answer it, and return openssl's verdict on the answer."""
    (tmp_path / "cert.pem").write_bytes(pem(cert))
    openssl(
        "ocsp",
        "-issuer",
        files.issuing,
        "-cert",
        tmp_path / "cert.pem",
        "-reqout",
        tmp_path / "req.der",
    )
    reply = responder.respond((tmp_path / "req.der").read_bytes())
    assert not reply.malformed
    (tmp_path / "resp.der").write_bytes(reply.der)
    # -no_nonce: with -cert openssl builds a fresh request (and nonce) to compare with, so the
    # nonce echo is checked by test_nonce_is_echoed instead.
    result = openssl(
        "ocsp",
        "-no_nonce",
        "-respin",
        tmp_path / "resp.der",
        "-issuer",
        files.issuing,
        "-cert",
        tmp_path / "cert.pem",
        "-CAfile",
        files.root,
        "-verify_other",
        files.chain,
    )
    return result.stdout + result.stderr


def test_live_seal_is_good(pki: TestPKI, pki_files: PKIFiles, tmp_path: Path) -> None:
    _, cert = pki.make_seal()
    output = _ask_openssl(pki.ocsp_responder(), pki_files, cert, tmp_path)
    assert "Response verify OK" in output
    assert ": good" in output


def test_revoked_seal_is_revoked_with_time_and_reason(
    pki: TestPKI, pki_files: PKIFiles, tmp_path: Path
) -> None:
    _, cert = pki.make_seal()
    status = RevocationStatus("revoked", REVOKED_AT, x509.ReasonFlags.key_compromise)
    responder = pki.ocsp_responder({cert.serial_number: status})
    output = _ask_openssl(responder, pki_files, cert, tmp_path)
    assert "Response verify OK" in output
    assert ": revoked" in output
    assert "Reason: keyCompromise" in output
    assert "Revocation Time: Jan  2 03:04:05 2026 GMT" in output


def test_unknown_serial_is_unknown(pki: TestPKI, pki_files: PKIFiles, tmp_path: Path) -> None:
    _, cert = pki.make_seal()
    responder = OCSPResponder(
        responder=pki.ocsp,
        issuers=[pki.issuing.certificate],
        lookup=lambda _issuer, _serial: RevocationStatus("unknown"),
    )
    output = _ask_openssl(responder, pki_files, cert, tmp_path)
    assert "Response verify OK" in output
    assert ": unknown" in output


def test_ca_may_sign_its_own_responses(pki: TestPKI, pki_files: PKIFiles, tmp_path: Path) -> None:
    _, cert = pki.make_seal()
    responder = OCSPResponder(
        responder=pki.issuing,
        issuers=[pki.issuing.certificate],
        lookup=lambda _issuer, _serial: RevocationStatus("good"),
    )
    output = _ask_openssl(responder, pki_files, cert, tmp_path)
    assert "Response verify OK" in output
    assert ": good" in output


def _request(
    pki: TestPKI,
    cert: x509.Certificate,
    algorithm: hashes.HashAlgorithm,
    nonce: bytes | None = None,
) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, pki.issuing.certificate, algorithm)
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(Encoding.DER)


def test_nonce_is_echoed(pki: TestPKI) -> None:
    _, cert = pki.make_seal()
    reply = pki.ocsp_responder().respond(_request(pki, cert, hashes.SHA1(), b"0123456789abcdef"))
    response = ocsp.load_der_ocsp_response(reply.der)
    nonce = response.extensions.get_extension_for_class(x509.OCSPNonce).value
    assert nonce.nonce == b"0123456789abcdef"


CLOCK = datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC)
"""The responder's pinned time in the SHA-256 tests."""


@dataclasses.dataclass(frozen=True)
class _Answer:
    """A seal certificate and the responder's answer to a SHA-256 request about it."""

    cert: x509.Certificate
    response: ocsp.OCSPResponse


@pytest.fixture
def sha256_answer(pki: TestPKI) -> _Answer:
    _, cert = pki.make_seal()
    responder = OCSPResponder(
        responder=pki.ocsp,
        issuers=[pki.issuing.certificate],
        lookup=lambda _issuer, _serial: RevocationStatus("good"),
        clock=lambda: CLOCK,
    )
    reply = responder.respond(_request(pki, cert, hashes.SHA256()))
    return _Answer(cert=cert, response=ocsp.load_der_ocsp_response(reply.der))


def test_sha256_cert_ids_are_answered(sha256_answer: _Answer) -> None:
    response = sha256_answer.response
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert response.hash_algorithm.name == "sha256"
    assert response.serial_number == sha256_answer.cert.serial_number


def test_a_response_is_valid_for_an_hour_from_the_responders_clock(
    sha256_answer: _Answer,
) -> None:
    response = sha256_answer.response
    assert response.produced_at_utc == CLOCK
    assert response.this_update_utc == CLOCK
    assert response.next_update_utc == CLOCK + datetime.timedelta(hours=1)


def test_a_response_is_signed_by_the_responder_it_carries(
    pki: TestPKI, sha256_answer: _Answer
) -> None:
    response = sha256_answer.response
    assert response.certificates == [pki.ocsp.certificate]
    public = pki.ocsp.certificate.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))


def test_lookup_gets_the_issuer_and_serial(pki: TestPKI) -> None:
    _, cert = pki.make_seal()
    seen: list[tuple[x509.Certificate, int]] = []

    def lookup(issuer: x509.Certificate, serial: int) -> RevocationStatus:
        seen.append((issuer, serial))
        return RevocationStatus("good")

    OCSPResponder(responder=pki.ocsp, issuers=[pki.issuing.certificate], lookup=lookup).respond(
        _request(pki, cert, hashes.SHA1())
    )
    assert seen == [(pki.issuing.certificate, cert.serial_number)]


@pytest.mark.parametrize("garbage", [b"", b"garbage", b"\x30\x03\x02\x01\x01"])
def test_undecodable_request_is_malformed(pki: TestPKI, garbage: bytes) -> None:
    reply = pki.ocsp_responder().respond(garbage)
    assert reply.malformed
    assert reply.detail is not None
    assert "could not be decoded" in reply.detail
    status = ocsp.load_der_ocsp_response(reply.der).response_status
    assert status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_foreign_issuer_is_unauthorized(pki: TestPKI) -> None:
    # Asking about the issuing CA's certificate names the root as issuer, which is not served.
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(pki.issuing.certificate, pki.root.certificate, hashes.SHA1())
        .build()
        .public_bytes(Encoding.DER)
    )
    reply = pki.ocsp_responder().respond(request)
    assert not reply.malformed
    status = ocsp.load_der_ocsp_response(reply.der).response_status
    assert status is ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_responder_must_be_issued_by_each_issuer(pki: TestPKI) -> None:
    with pytest.raises(ValueError, match="not issued by it"):
        OCSPResponder(
            responder=pki.ocsp,
            issuers=[pki.root.certificate],
            lookup=lambda _i, _s: RevocationStatus("good"),
        )


def test_revocation_status_validates() -> None:
    with pytest.raises(ValueError, match="revocation time"):
        RevocationStatus("revoked")
    with pytest.raises(ValueError, match="revocation time"):
        RevocationStatus("good", REVOKED_AT)
