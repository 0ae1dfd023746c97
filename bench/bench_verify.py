"""Verification benchmark: the project's full report against pyHanko's bare validation.

Run::

    .venv/bin/python -m bench.bench_verify [--count N] [--repeats R]

Both contenders check the same one-page licence, sealed once at the start of the run by the
project's engine (ECDSA P-256 and RSA-2048; PAdES B-LT and B-LTA; certified NO_CHANGES).

- Baseline (``bench/README.md``), once per document: ``PdfFileReader``, then
  ``validate_pdf_signature(reader.embedded_signatures[-1],
  ValidationContext(trust_roots=[root]))``. For B-LTA the last embedded signature is the
  document timestamp, which ``validate_pdf_signature`` refuses; the baseline then validates
  the seal (``embedded_regular_signatures[-1]``), the nearest documented equivalent.
- Project: ``verify.pdf.verify_pdf`` with the service's policy (its root, its CRLs) and an
  in-memory registry holding the issued file: every seal and document timestamp, revocation
  in hard-fail mode, the byte-structure check, the registry lookup and the verdict. The
  signatures of the CA and timestamp-authority certificates, the seal's certificate and the
  CRLs are remembered once verified (``verify._signatures_seen``), as in a kept
  verification worker; the seal's and the timestamps' own signatures, the paths, revocation
  and the difference analysis are checked for every document.

Figures are documents per second, median (min, max) over ``repeats`` pairs of blocks of
``count`` documents (``bench.timing.compare``: one block of each contender back to back, the
order alternating), and the ratio of times project / baseline (target: at most 0.5), the
median of the pairs' ratios, and again from the CPU time of ``count`` documents each, median
(min, max) of ``repeats`` rounds: on a shared machine the wall clock counts the time spent
waiting for a core, the process's CPU time does not. The load average
is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import logging
import os
from collections.abc import Callable

from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from bench.inputs import BenchPKI, build_bench_pki, licence_pdf
from bench.timing import compare, cpu_time_ratio
from keys.handles import KeyAlgorithm
from keys.signer import KeySigner, to_asn1
from signing.material import ValidationMaterial
from signing.options import Certification, SealLevel, SealOptions
from signing.sealer import SealIdentity, SealingContext, seal_pdf_bytes
from verify.pdf import verify_pdf
from verify.policy import VerificationPolicy
from verify.registry import InMemoryRegistry, IssuedRecord, certificate_fingerprint
from verify.report import Verdict

ALGORITHMS = (KeyAlgorithm.EC_P256, KeyAlgorithm.RSA_2048)
"""The seal key types measured."""
LEVELS = (SealLevel.B_LT, SealLevel.B_LTA)
"""The PAdES levels measured (B-LT is the service's default for a licence)."""


def seal_licence(pki: BenchPKI, algorithm: KeyAlgorithm, level: SealLevel) -> tuple[bytes, str]:
    """The licence sealed by the project's engine, and the seal's signed digest."""
    seal = pki.seals[algorithm]
    identity = SealIdentity(
        signer=KeySigner.for_handle(seal.handle, seal.certificate, pki.chain),
        certificate=seal.certificate,
        chain=pki.chain,
    )
    context = SealingContext(
        timestamper=pki.timestamper(),
        material=ValidationMaterial.build(
            certificates=[*pki.chain, pki.tsa.certificate],
            crls=pki.crls,
            ocsp_responses=pki.ocsp_responses,
        ),
    )
    pdf, result = seal_pdf_bytes(
        licence_pdf(),
        identity=identity,
        options=SealOptions(level=level, certification=Certification.NO_CHANGES),
        context=context,
    )
    return pdf, result.signed_digest


def baseline(pki: BenchPKI, pdf: bytes) -> Callable[[], object]:
    """pyHanko's bare validation, as its documentation shows."""
    root = to_asn1(pki.root.certificate)

    def run() -> object:
        reader = PdfFileReader(io.BytesIO(pdf))
        sig = reader.embedded_signatures[-1]
        if sig.sig_object_type == "/DocTimeStamp":
            sig = reader.embedded_regular_signatures[-1]
        status = validate_pdf_signature(sig, ValidationContext(trust_roots=[root]))
        assert status.bottom_line
        return status

    return run


def project(
    pki: BenchPKI, pdf: bytes, signed_digest: str, algorithm: KeyAlgorithm
) -> Callable[[], object]:
    """The project's full report for the same file."""
    registry = InMemoryRegistry(
        [
            IssuedRecord(
                record_id="LIC-2026-000123",
                kind="certificate",
                pdf_sha256=hashlib.sha256(pdf).hexdigest(),
                signed_digest=signed_digest,
                seal_fingerprint=certificate_fingerprint(pki.seals[algorithm].certificate),
            )
        ]
    )
    policy = VerificationPolicy(
        trust_roots=(pki.root.certificate,), crls=pki.crls, registry=registry
    )

    def run() -> object:
        report = verify_pdf(pdf, policy=policy)
        assert report.verdict is Verdict.VALID, report.reasons
        return report

    return run


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20, help="documents per repetition")
    parser.add_argument("--repeats", type=int, default=5, help="repetitions")
    args = parser.parse_args()
    # pyHanko logs soft-fail revocation gaps of the baseline at WARNING; keep the output clean.
    logging.getLogger("pyhanko").setLevel(logging.ERROR)
    logging.getLogger("pyhanko_certvalidator").setLevel(logging.ERROR)
    pki = build_bench_pki(ALGORITHMS)
    print(
        f"verification of the one-page licence; {args.count} docs x {args.repeats} repeats; "
        f"{os.cpu_count()} CPUs, load average {_load()}"
    )
    for algorithm in ALGORITHMS:
        for level in LEVELS:
            pdf, digest = seal_licence(pki, algorithm, level)
            label = f"{algorithm.value} {level.value}"
            bare, full = baseline(pki, pdf), project(pki, pdf, digest, algorithm)
            comparison = compare(
                (f"{label} baseline (pyHanko bare)", bare),
                (f"{label} project (verify_pdf, full report)", full),
                count=args.count,
                repeats=args.repeats,
            )
            print(comparison.first.line())
            print(comparison.second.line())
            ratio = comparison.rate_ratio  # baseline rate / project rate: time project / baseline
            print(f"{label + ' time ratio project / baseline':<48} {ratio:10.2f}x  (target <= 0.5)")
            median, low, high = cpu_time_ratio(full, bare, count=args.count, rounds=args.repeats)
            print(
                f"{label + ' CPU time ratio project / baseline':<48} {median:10.2f}x  "
                f"(min {low:.2f}, max {high:.2f})  (target <= 0.5)"
            )
    print(f"load average at the end {_load()}")


def _load() -> str:
    return ", ".join(f"{load:.2f}" for load in os.getloadavg())


if __name__ == "__main__":
    main()
