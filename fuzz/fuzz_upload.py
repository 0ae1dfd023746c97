"""An atheris harness over the upload path: the structure check and the PDF reader of
``verify/``, with the verification worker's limits.

Every input must end in a report or a ``VerificationError`` (a verdict on a bad file); the
worker also maps ``MemoryError`` and ``RecursionError`` to errors of the file. Anything else
is a defect: atheris stops and writes the input that caused it, which then becomes a
regression test under ``tests/verify/``.

Run with ``make fuzz`` (a bounded number of runs from the seeds in ``fuzz/corpus``), or::

    .venv/bin/python fuzz/fuzz_upload.py fuzz/corpus -runs=100000
"""

from __future__ import annotations

import contextlib
import sys
from datetime import UTC, datetime, timedelta

import atheris
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

with atheris.instrument_imports(include=["verify", "pyhanko"]):
    from verify.errors import VerificationError
    from verify.pdf import verify_pdf
    from verify.policy import VerificationLimits, VerificationPolicy

#: The worker's limits, but for the wall clock, which a fuzzer's instrumented build cannot
#: keep: libFuzzer's own -timeout takes its place (see the Makefile).
LIMITS = VerificationLimits()


def _throwaway_root() -> x509.Certificate:
    # The harness judges the reading of a file, not its trust: any root will do.
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fuzz root")])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


POLICY = VerificationPolicy(trust_roots=(_throwaway_root(),), limits=LIMITS)


def check_upload(data: bytes) -> None:
    """Verify ``data`` as an upload would be; raise only for a defect."""
    with contextlib.suppress(VerificationError, MemoryError, RecursionError):
        verify_pdf(data, policy=POLICY)


def main() -> None:
    """libFuzzer's entry point: the arguments are its options and corpus directories."""
    atheris.Setup(sys.argv, check_upload)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
