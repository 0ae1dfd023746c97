"""The signature validator that verifies an issued object's signature once per process."""

from __future__ import annotations

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko_certvalidator.sig_validate import SignatureValidationContext

from tests.testpki import TestPKI
from verify._signatures_seen import RememberingSignatureValidator


def _asn1(pki: TestPKI) -> tuple[asn1_x509.Certificate, asn1_x509.Certificate]:
    """The issuing CA's certificate and the root's, as pyHanko reads them."""
    issuing = asn1_x509.Certificate.load(pki.issuing.certificate.public_bytes(Encoding.DER))
    root = asn1_x509.Certificate.load(pki.root.certificate.public_bytes(Encoding.DER))
    return issuing, root


def _check(
    validator: RememberingSignatureValidator,
    cert: asn1_x509.Certificate,
    issuer: asn1_x509.Certificate,
    *,
    signature: bytes | None = None,
) -> None:
    validator.validate_signature(
        signature if signature is not None else cert["signature_value"].native,
        cert["tbs_certificate"].dump(),
        issuer.public_key,
        cert["signature_algorithm"],
    )


def test_verified_certificate_signature_is_remembered_once(pki: TestPKI) -> None:
    issuing, root = _asn1(pki)
    validator = RememberingSignatureValidator()
    _check(validator, issuing, root)
    _check(validator, issuing, root)
    assert validator.remembered == 1


def test_failed_signature_raises_every_time_and_is_not_remembered(pki: TestPKI) -> None:
    issuing, root = _asn1(pki)
    validator = RememberingSignatureValidator()
    _check(validator, issuing, root)
    forged = bytearray(issuing["signature_value"].native)
    forged[-1] ^= 1
    for _ in range(2):
        with pytest.raises(InvalidSignature):
            _check(validator, issuing, root, signature=bytes(forged))
    assert validator.remembered == 1


def test_remembered_signature_does_not_vouch_for_another_key(pki: TestPKI) -> None:
    issuing, root = _asn1(pki)
    validator = RememberingSignatureValidator()
    _check(validator, issuing, root)
    with pytest.raises(InvalidSignature):
        _check(validator, issuing, issuing)


def test_signature_checked_with_its_own_context_is_never_remembered(pki: TestPKI) -> None:
    issuing, root = _asn1(pki)
    validator = RememberingSignatureValidator()
    validator.validate_signature(
        issuing["signature_value"].native,
        issuing["tbs_certificate"].dump(),
        root.public_key,
        issuing["signature_algorithm"],
        SignatureValidationContext(contextual_md_algorithm="sha256"),
    )
    assert validator.remembered == 0


def test_least_recently_used_is_forgotten_beyond_capacity(pki: TestPKI) -> None:
    issuing, root = _asn1(pki)
    tsa = asn1_x509.Certificate.load(pki.tsa.certificate.public_bytes(Encoding.DER))
    validator = RememberingSignatureValidator(capacity=1)
    _check(validator, issuing, root)
    _check(validator, tsa, issuing)
    assert validator.remembered == 1


def test_empty_validator_is_still_used_by_pyhanko() -> None:
    # pyHanko takes ``signature_validator or DefaultSignatureValidator()``.
    assert RememberingSignatureValidator()


def test_capacity_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RememberingSignatureValidator(capacity=0)
