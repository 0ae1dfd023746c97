"""Running the openssl command line in tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from keys.sm2 import DEFAULT_USER_ID

SM2_DISTID = f"distid:{DEFAULT_USER_ID.decode()}"
"""OpenSSL 3.0's command line computes SM2's Z_A with an empty user id unless told this."""


def openssl(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``openssl`` with ``args``; with ``check``, a non-zero exit fails with its output."""
    result = subprocess.run(
        ["openssl", *(str(a) for a in args)], capture_output=True, text=True, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"openssl {' '.join(map(str, args))} failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result


def sm2_verify_raw(directory: Path, public_key_der: bytes, data: bytes, signature: bytes) -> str:
    """``openssl pkeyutl -verify -rawin -digest sm3`` with the default user id; its output."""
    (directory / "pub.der").write_bytes(public_key_der)
    (directory / "data").write_bytes(data)
    (directory / "sig").write_bytes(signature)
    result = openssl(
        "pkeyutl", "-verify", "-rawin", "-digest", "sm3", "-pubin", "-keyform", "DER",
        "-inkey", directory / "pub.der", "-in", directory / "data", "-sigfile", directory / "sig",
        "-pkeyopt", SM2_DISTID, check=False,
    )  # fmt: skip
    return result.stdout + result.stderr


def sm2_signed_by(directory: Path, cert: x509.Certificate, issuer: x509.Certificate) -> str:
    """OpenSSL's verdict on ``cert``'s SM2 signature under ``issuer``'s public key.

    ``openssl verify`` of OpenSSL 3.0 checks an SM2-with-SM3 certificate only when told the
    user id (``-vfyopt distid:…``), and then for the target certificate alone
    (``tests/keys/test_openssl_verify_sm2.py``); pkeyutl checks any one signature.
    """
    parsed = asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))
    issuer_key = asn1_x509.Certificate.load(issuer.public_bytes(Encoding.DER)).public_key
    return sm2_verify_raw(
        directory,
        issuer_key.dump(),
        parsed["tbs_certificate"].dump(),
        parsed["signature_value"].native,
    )
