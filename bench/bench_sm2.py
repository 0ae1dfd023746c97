"""SM2 benchmark: SM2 seals against RSA-2048 (sealing) and ECDSA P-256 (verification).

Run::

    .venv/bin/python -m bench.bench_sm2 [--count N] [--repeats R]

The bars of the national cryptography issue, measured on the same one-page licence in the
same run, in pairs of blocks (``bench.timing.compare``): a block of ``count`` documents of one
contender, then one of the other, the order alternating from pair to pair, so that the shared
machine's drift hits both sides of a pair alike:

- Sealing: the project's path (``signing.sealer.seal_pdf_bytes``, identity and context made
  once) at PAdES B-B with an SM2 seal (SM3, SM2-with-SM3, tongsuopy's C code) and with an
  RSA-2048 seal; the SM2 rate must be at least the RSA-2048 rate. ECDSA P-256 is printed
  beside them for reference.
- Verification: the project's full report (``verify.pdf.verify_pdf`` with the policy's root
  and CRLs and an in-memory registry holding the file, as ``bench.bench_verify`` measures it)
  of the licence certified NO_CHANGES by an SM2 seal and by an ECDSA P-256 seal, at B-B, B-LT
  and B-LTA; the SM2 time per document must be within 1.2x of the ECDSA one.

Each hierarchy is the service's: the ECDSA seal's CAs are P-384, its timestamp authority and
OCSP responder P-256 (``bench.inputs``); the SM2 seal's root, issuing CA and timestamp
authority are SM2, the issuing CA answering OCSP itself (``econtract.sm2_authorities``).
Figures are documents per second, median (min, max) over the blocks; each ratio is the
median of the pairs' ratios, with its quartiles, then its bar, met or missed. The same ratio
from the process's CPU time (``bench.timing.cpu_time_ratio``) follows: the wall clock counts
the time spent waiting for a core, the CPU time does not.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from bench.inputs import BenchPKI, build_bench_pki, licence_pdf
from bench.timing import Comparison, compare, cpu_time_ratio, measure_rate
from keys.ca import PKIURLs, SealSubject
from keys.crl import build_crl
from keys.handles import KeyAlgorithm
from keys.ocsp import OCSPResponder, RevocationStatus
from keys.signer import KeySigner
from keys.sm2 import generate_sm2_key
from keys.sm2ca import (
    SM2Authority,
    SM2Hierarchy,
    create_sm2_hierarchy,
    issue_sm2_seal_certificate,
    issue_sm2_tsa_certificate,
)
from keys.tsa import InProcessTimeStamper, TimestampAuthority
from signing.material import ValidationMaterial
from signing.options import Certification, SealLevel, SealOptions
from signing.sealer import SealIdentity, SealingContext, seal_pdf_bytes
from verify.pdf import verify_pdf
from verify.policy import VerificationPolicy
from verify.registry import InMemoryRegistry, IssuedRecord, certificate_fingerprint
from verify.report import Verdict

_TARGET_SEALING = 1.0
_TARGET_VERIFICATION = 1.2
_CPU_ROUNDS = 5
_VERIFIED_LEVELS = (SealLevel.B_B, SealLevel.B_LT, SealLevel.B_LTA)
_LONG_TERM = (SealLevel.B_LT, SealLevel.B_LTA)
_SUBJECT = SealSubject(
    department_name="杭州市市场监督管理局",
    department_code="9133010052CL12THX9",
    seal_kind="licence",
    seal_name="证照专用章",
)


@dataclass(frozen=True)
class Sealer:
    """A seal with everything the project's sealer and verifier need, of one algorithm."""

    name: str
    """The algorithm, as printed."""
    identity: SealIdentity
    """The seal."""
    root: x509.Certificate
    """Its hierarchy's root."""
    crls: tuple[bytes, ...]
    """The current CRLs of its root and issuing CA."""
    timestamper: InProcessTimeStamper
    """Its hierarchy's timestamp authority, answered in process."""
    material: ValidationMaterial
    """Its validation material for B-LT and B-LTA."""

    def context(self, level: SealLevel) -> SealingContext:
        """The sealing context of ``level``: no timestamper at B-B (none is asked)."""
        return SealingContext(
            timestamper=None if level is SealLevel.B_B else self.timestamper,
            material=self.material if level in _LONG_TERM else None,
        )

    def sealing(self, level: SealLevel) -> Callable[[], object]:
        """The timed operation: one seal of the licence at ``level``, as an approval."""
        pdf = licence_pdf()
        options = SealOptions(level=level)
        context = self.context(level)
        return lambda: seal_pdf_bytes(pdf, identity=self.identity, options=options, context=context)

    def verification(self, level: SealLevel) -> Callable[[], object]:
        """The timed operation: the full report on the licence certified at ``level``."""
        pdf, result = seal_pdf_bytes(
            licence_pdf(),
            identity=self.identity,
            options=SealOptions(level=level, certification=Certification.NO_CHANGES),
            context=self.context(level),
        )
        record = IssuedRecord(
            record_id="LIC-2026-000123",
            kind="certificate",
            pdf_sha256=hashlib.sha256(pdf).hexdigest(),
            signed_digest=result.signed_digest,
            seal_fingerprint=certificate_fingerprint(self.identity.certificate),
        )
        policy = VerificationPolicy(
            trust_roots=(self.root,), crls=self.crls, registry=InMemoryRegistry([record])
        )

        def run() -> object:
            report = verify_pdf(pdf, policy=policy)
            assert report.verdict is Verdict.VALID, report.reasons
            return report

        return run


def _ocsp_answer(
    responder: OCSPResponder, cert: x509.Certificate, issuer: x509.Certificate
) -> bytes:
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256()).build()
    return responder.respond(request.public_bytes(Encoding.DER)).der


def _crls(*authorities: SM2Authority) -> tuple[bytes, ...]:
    now = datetime.datetime.now(datetime.UTC)
    return tuple(
        build_crl(
            ca,
            revoked=[],
            crl_number=1,
            this_update=now,
            next_update=now + datetime.timedelta(days=7),
        ).public_bytes(Encoding.DER)
        for ca in authorities
    )


def sm2_sealer() -> Sealer:
    """An SM2 seal of a new SM2 hierarchy shaped as the service's."""
    hierarchy: SM2Hierarchy = create_sm2_hierarchy(
        root_key=generate_sm2_key("bench-sm2-root"),
        issuing_key=generate_sm2_key("bench-sm2-issuing"),
        name="Bench",
        urls=PKIURLs(base_url="http://127.0.0.1:8000"),
    )
    issuing = hierarchy.issuing
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    seal_key = generate_sm2_key("bench-sm2-seal")
    certificate = issue_sm2_seal_certificate(
        issuing, seal_key.public_key_info(), subject=_SUBJECT, ca_name=hierarchy.ca_name,
        urls=hierarchy.urls, not_before=now, not_after=now + datetime.timedelta(days=365),
    )  # fmt: skip
    tsa_key = generate_sm2_key("bench-sm2-tsa")
    tsa_certificate = issue_sm2_tsa_certificate(
        issuing, tsa_key.public_key_info(), common_name="eContract Bench SM2 TSA",
        ca_name=hierarchy.ca_name, urls=hierarchy.urls,
    )  # fmt: skip
    tsa = SM2Authority(certificate=tsa_certificate, handle=tsa_key, chain=hierarchy.chain)
    responder = OCSPResponder(
        responder=issuing,
        issuers=[issuing.certificate],
        lookup=lambda _issuer, _serial: RevocationStatus("good"),
    )
    crls = _crls(hierarchy.root, issuing)
    return Sealer(
        name="SM2",
        identity=SealIdentity(
            signer=KeySigner.for_handle(seal_key, certificate, hierarchy.chain),
            certificate=certificate,
            chain=hierarchy.chain,
        ),
        root=hierarchy.root.certificate,
        crls=crls,
        timestamper=InProcessTimeStamper(TimestampAuthority(authority=tsa)),
        material=ValidationMaterial.build(
            certificates=[*hierarchy.chain, tsa_certificate],
            crls=crls,
            ocsp_responses=[
                _ocsp_answer(responder, c, issuing.certificate)
                for c in (certificate, tsa_certificate)
            ],
        ),
    )


def bench_sealer(pki: BenchPKI, algorithm: KeyAlgorithm) -> Sealer:
    """A seal of the benchmark PKI (``bench.inputs``) of ``algorithm``."""
    seal = pki.seals[algorithm]
    return Sealer(
        name=algorithm.value,
        identity=SealIdentity(
            signer=KeySigner.for_handle(seal.handle, seal.certificate, pki.chain),
            certificate=seal.certificate,
            chain=pki.chain,
        ),
        root=pki.root.certificate,
        crls=pki.crls,
        timestamper=pki.timestamper(),
        material=ValidationMaterial.build(
            certificates=[*pki.chain, pki.tsa.certificate],
            crls=pki.crls,
            ocsp_responses=pki.ocsp_responses,
        ),
    )


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def _cpu_line(label: str, ratio: tuple[float, float, float], met: bool, target: str) -> str:
    median, low, high = ratio
    return (
        f"{label:<48} {median:10.2f}x  (min {low:.2f}, max {high:.2f})  "
        f"target {target}: {_verdict(met)}"
    )


def _print_comparison(comparison: Comparison) -> None:
    print(comparison.first.line())
    print(comparison.second.line())


def _ratio_line(
    label: str, value: float, quartiles: tuple[float, float], met: bool, target: str
) -> str:
    low, high = quartiles
    return (
        f"{label:<48} {value:10.2f}x  (quartiles {low:.2f}, {high:.2f})  "
        f"target {target}: {_verdict(met)}"
    )


def run(count: int, repeats: int) -> None:
    """Measure and print every figure."""
    pki = build_bench_pki((KeyAlgorithm.RSA_2048, KeyAlgorithm.EC_P256))
    sm2 = sm2_sealer()
    rsa = bench_sealer(pki, KeyAlgorithm.RSA_2048)
    ecdsa = bench_sealer(pki, KeyAlgorithm.EC_P256)
    print("SM2 benchmark: the one-page licence, the project's sealer and verifier")
    print(f"  {repeats} pairs of blocks of {count} documents, the order alternating")
    # The machine is shared: the load says how much the wall-clock figures can be trusted.
    print(f"  load average at the start: {_load_average()}")
    print()
    print("Sealing, B-B (docs/s)")
    sealing = compare(
        ("SM2 B-B seal", sm2.sealing(SealLevel.B_B)),
        ("rsa-2048 B-B seal", rsa.sealing(SealLevel.B_B)),
        count=count,
        repeats=repeats,
    )
    _print_comparison(sealing)
    reference = measure_rate(
        "ec-p256 B-B seal (reference)", ecdsa.sealing(SealLevel.B_B), count=count, repeats=repeats
    )
    print(reference.line())
    value = sealing.rate_ratio
    label = f"SM2 / RSA-2048 sealing rate, median of {repeats} pairs"
    print(_ratio_line(label, value, sealing.quartiles(), value >= _TARGET_SEALING, ">= 1.0x"))
    # The rate ratio is the inverse of the CPU time ratio RSA-2048 / SM2.
    rsa_over_sm2 = cpu_time_ratio(
        rsa.sealing(SealLevel.B_B), sm2.sealing(SealLevel.B_B), count=count, rounds=_CPU_ROUNDS
    )
    label = f"SM2 / RSA-2048 sealing rate, CPU, median of {_CPU_ROUNDS}"
    print(_cpu_line(label, rsa_over_sm2, rsa_over_sm2[0] >= _TARGET_SEALING, ">= 1.0x"))
    print()
    print("Verification, full report (docs/s)")
    for level in _VERIFIED_LEVELS:
        verification = compare(
            (f"SM2 {level.value} verify", sm2.verification(level)),
            (f"ec-p256 {level.value} verify", ecdsa.verification(level)),
            count=count,
            repeats=repeats,
        )
        _print_comparison(verification)
        value = verification.time_ratio
        met = value <= _TARGET_VERIFICATION
        label = f"SM2 / ec-p256 {level.value} time per document"
        quartiles = verification.quartiles(times=True)
        print(_ratio_line(label, value, quartiles, met, f"<= {_TARGET_VERIFICATION}x"))
        sm2_over_ecdsa = cpu_time_ratio(
            sm2.verification(level), ecdsa.verification(level), count=count, rounds=_CPU_ROUNDS
        )
        label = f"SM2 / ec-p256 {level.value}, CPU, median of {_CPU_ROUNDS}"
        met = sm2_over_ecdsa[0] <= _TARGET_VERIFICATION
        print(_cpu_line(label, sm2_over_ecdsa, met, f"<= {_TARGET_VERIFICATION}x"))
    print()
    print(f"Load average at the end: {_load_average()}")


def _load_average() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` prints them."""
    return ", ".join(f"{load:.2f}" for load in os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=20, help="documents per block")
    parser.add_argument("--repeats", type=int, default=5, help="pairs of blocks")
    args = parser.parse_args(argv)
    if args.count < 1 or args.repeats < 1:
        parser.error("--count and --repeats must be at least 1")
    # pyHanko logs soft-fail revocation gaps at WARNING; keep the output clean.
    logging.getLogger("pyhanko").setLevel(logging.ERROR)
    logging.getLogger("pyhanko_certvalidator").setLevel(logging.ERROR)
    run(args.count, args.repeats)


if __name__ == "__main__":
    main()
