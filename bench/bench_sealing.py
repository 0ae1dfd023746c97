"""Sealing benchmark: the project's path against "pyHanko as its documentation shows".

Run::

    .venv/bin/python -m bench.bench_sealing [--count N] [--repeats R]

For RSA-2048 and ECDSA P-256 and each PAdES level (B-B, B-T, B-LT, B-LTA), both contenders
seal the same one-page licence ``count`` times per repetition; the figures are documents per
second, median (min, max) over ``repeats`` repetitions, and the ratio project / baseline.
Both sides use the same in-process timestamp authority and the same revocation data, so that
neither the TSA's network nor fetching is measured. Then the project's B-LT / B-B in CPU time
of the seal alone, the two levels alternating, and, in a fresh subprocess each, the peak
memory of sealing a 50 MB PDF from file to file, as a multiple of the file's size.

The baseline (``bench/README.md``), once per document: ``SimpleSigner.load`` from PEM
files, ``PdfSigner(PdfSignatureMetadata(field_name, subfilter=PADES, md_algorithm="sha256"))``
(with a timestamper for B-T and up, ``embed_validation_info`` and a validation context for
B-LT, ``use_pades_lta`` for B-LTA), ``sign_pdf(IncrementalPdfFileWriter(BytesIO(pdf)),
output=BytesIO())``.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import logging
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from bench.inputs import OUT_DIR, BenchPKI, BenchSeal, build_bench_pki, large_pdf, licence_pdf
from bench.timing import Rate, measure_rate, ratio_line
from keys.handles import KeyAlgorithm
from keys.signer import KeySigner, to_asn1
from signing.material import ValidationMaterial
from signing.options import SealLevel, SealOptions
from signing.sealer import SealIdentity, SealingContext, seal_pdf, seal_pdf_bytes

LEVELS = ("B-B", "B-T", "B-LT", "B-LTA")
"""The PAdES levels measured."""
ALGORITHMS = (KeyAlgorithm.RSA_2048, KeyAlgorithm.EC_P256)
"""The seal key types measured."""
FIELD_NAME = "Seal"
"""The signature field both contenders create."""
MEMORY_ALGORITHM = KeyAlgorithm.EC_P256
"""The key type of the memory measurement (the key does not change the memory profile)."""

PROJECT_LABEL = "project (signing.sealer)"
"""What the project's figures measure."""

_TARGET_BB_SPEEDUP = 10.0
_TARGET_BT_OVER_BB = 1.5
_TARGET_BLT_OVER_BB = 1.3
_CPU_ROUNDS = 7
_TARGET_MEMORY = 3.0


@dataclass(frozen=True)
class Contender:
    """One way of sealing: from bytes to bytes (timed) and from file to file (memory)."""

    label: str
    """What is measured, printed next to its figures."""
    seal: Callable[[bytes], bytes]
    """Seal a PDF given as bytes and return the sealed bytes."""
    seal_file: Callable[[Path, Path], None]
    """Seal the PDF at the first path into the second."""


def _timestamper(pki: BenchPKI, level: str) -> TimeStamper | None:
    return pki.timestamper() if level != "B-B" else None


def _metadata(pki: BenchPKI, level: str) -> signers.PdfSignatureMetadata:
    """The signature metadata of a level, as pyHanko's documentation spells it."""
    long_term = level in ("B-LT", "B-LTA")
    return signers.PdfSignatureMetadata(
        field_name=FIELD_NAME,
        subfilter=SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        embed_validation_info=long_term,
        validation_context=pki.validation_context() if long_term else None,
        use_pades_lta=level == "B-LTA",
    )


def baseline_contender(seal: BenchSeal, pki: BenchPKI, level: str) -> Contender:
    """pyHanko as its documentation shows: the signer is loaded from PEM files per document.

    The timestamper is made once, as a script would make it once: a fresh one per document
    would also ask the TSA for a real token just to size the placeholder, and the TSA is not
    what is measured.
    """
    timestamper = _timestamper(pki, level)
    chain_files = tuple(str(path) for path in pki.chain_files)

    def seal_bytes(pdf: bytes) -> bytes:
        signer = signers.SimpleSigner.load(  # type: ignore[no-untyped-call]  # untyped upstream
            str(seal.key_file), str(seal.cert_file), ca_chain_files=chain_files
        )
        pdf_signer = signers.PdfSigner(
            _metadata(pki, level), signer=signer, timestamper=timestamper
        )
        output = pdf_signer.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf)), output=io.BytesIO())
        return bytes(output.getvalue())

    def seal_file(source: Path, target: Path) -> None:
        target.write_bytes(seal_bytes(source.read_bytes()))

    return Contender(label="baseline (pyHanko as documented)", seal=seal_bytes, seal_file=seal_file)


def project_contender(seal: BenchSeal, pki: BenchPKI, level: str) -> Contender:
    """The project's path: ``signing.sealer`` with a seal identity and context made once."""
    identity = SealIdentity(
        signer=KeySigner.for_handle(seal.handle, seal.certificate, pki.chain),
        certificate=seal.certificate,
        chain=pki.chain,
    )
    options = SealOptions(level=SealLevel(level), field_name=FIELD_NAME)
    context = SealingContext(
        timestamper=_timestamper(pki, level),
        material=ValidationMaterial.build(
            certificates=[*pki.chain, pki.tsa.certificate],
            crls=pki.crls,
            ocsp_responses=pki.ocsp_responses,
        ),
    )

    def seal_bytes(pdf: bytes) -> bytes:
        sealed, _ = seal_pdf_bytes(pdf, identity=identity, options=options, context=context)
        return sealed

    def seal_file(source: Path, target: Path) -> None:
        # pyHanko reads the output back to hash it, so the target is opened for reading too.
        with source.open("rb") as infile, target.open("w+b") as outfile:
            seal_pdf(infile, outfile, identity=identity, options=options, context=context)

    return Contender(label=PROJECT_LABEL, seal=seal_bytes, seal_file=seal_file)


def _sealing(contender: Contender, pdf: bytes) -> Callable[[], bytes]:
    """The timed operation: one seal of ``pdf``."""
    return lambda: contender.seal(pdf)


def _check_sealed(pki: BenchPKI, sealed: bytes, who: str) -> None:
    """Refuse to time a contender whose seal does not validate."""
    context = ValidationContext(trust_roots=[to_asn1(pki.root.certificate)])
    signature = PdfFileReader(io.BytesIO(sealed)).embedded_signatures[0]
    status = validate_pdf_signature(signature, context, ts_validation_context=context)
    if not (status.intact and status.valid and status.trusted):
        raise SystemExit(f"{who} made a seal that does not validate: {status.summary()}")


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def _time_ratio_line(label: str, level: Rate, reference: Rate, target: float) -> str:
    # A time ratio is the inverse rate ratio: time(level) / time(B-B) = rate(B-B) / rate(level).
    value = reference.median / level.median
    return f"{label:<48} {value:10.2f}x  target <= {target}x: {_verdict(value <= target)}"


def _measure_memory(which: str, source: Path) -> dict[str, Any]:
    """Seal ``source`` from file to file in a fresh interpreter and return its peak RSS."""
    result = subprocess.run(
        [sys.executable, "-m", "bench.bench_sealing", "--memory-child", which, str(source)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    measured: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def _peak_rss_reset() -> bool:
    """Reset the kernel's RSS high-water mark (Linux 4.0+); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _rss_figures() -> tuple[int, int]:
    """The current RSS and its high-water mark, in bytes."""
    status = Path("/proc/self/status").read_text()
    figures = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.MULTILINE))
    return int(figures["VmRSS"]) * 1024, int(figures["VmHWM"]) * 1024


def _memory_child(which: str, source: Path) -> None:
    """In the subprocess: warm up on the licence, then seal ``source`` and report the peak."""
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-sealing-pki-") as directory:
        _measure_memory_child(which, source, build_bench_pki((MEMORY_ALGORITHM,), Path(directory)))


def _measure_memory_child(which: str, source: Path, pki: BenchPKI) -> None:
    seal = pki.seals[MEMORY_ALGORITHM]
    make = project_contender if which == "project" else baseline_contender
    contender = make(seal, pki, "B-B")
    # A first seal loads every module and cache, so that the peak measures the document.
    contender.seal(licence_pdf())
    target = OUT_DIR / f"large-sealed-{which}.pdf"
    gc.collect()
    # Where the high-water mark can be reset, the peak is that of this seal alone; otherwise
    # getrusage's lifetime maximum hides any peak lower than the one of the start-up.
    if _peak_rss_reset():
        before, _ = _rss_figures()
        contender.seal_file(source, target)
        _, peak = _rss_figures()
        method = "VmHWM after reset"
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        contender.seal_file(source, target)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        method = "getrusage maxrss"
    size = source.stat().st_size
    target.unlink()
    print(json.dumps({"size": size, "before": before, "peak": peak, "method": method}))


def run(count: int, repeats: int) -> None:
    """Measure and print every figure.

    The PKI's PEM files (which the baseline loads for every document) go to a directory of
    this run's own: another benchmark building its PKI at the same time would otherwise
    replace them halfway through.
    """
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-sealing-pki-") as directory:
        _run(count, repeats, build_bench_pki(ALGORITHMS, Path(directory)))


def _cpu_ratio_line(seal: BenchSeal, pki: BenchPKI, pdf: bytes, count: int) -> str:
    """B-LT / B-B in CPU time of the seal alone, the two alternating, over several rounds.

    The wall-clock rates above share the machine with whatever else runs; the process's CPU
    time does not count the time it waits for a core, and alternating the two levels gives
    both the same conditions.
    """
    levels = {level: project_contender(seal, pki, level).seal for level in ("B-B", "B-LT")}
    ratios = []
    for _ in range(_CPU_ROUNDS):
        spent = {}
        for level, seal_bytes in levels.items():
            started = time.process_time()
            for _ in range(count):
                seal_bytes(pdf)
            spent[level] = time.process_time() - started
        ratios.append(spent["B-LT"] / spent["B-B"])
    median = statistics.median(ratios)
    label = f"{seal.algorithm.value} B-LT / B-B, CPU, median of {_CPU_ROUNDS}"
    return (
        f"{label:<48} {median:10.2f}x  (min {min(ratios):.2f}, max {max(ratios):.2f})  "
        f"target <= {_TARGET_BLT_OVER_BB}x: {_verdict(median <= _TARGET_BLT_OVER_BB)}"
    )


def _run(count: int, repeats: int, pki: BenchPKI) -> None:
    pdf = licence_pdf()
    print("Sealing benchmark")
    print(f"  input: one-page licence (the project renderer), {len(pdf)} bytes")
    print(
        f"  {count} documents per repetition, {repeats} repetitions; pyHanko {version('pyHanko')}"
    )
    print(f"  project = {PROJECT_LABEL}")
    print()
    project_rates: dict[tuple[KeyAlgorithm, str], Rate] = {}
    ratios: list[str] = []
    for algorithm in ALGORITHMS:
        seal = pki.seals[algorithm]
        for level in LEVELS:
            name = f"{algorithm.value} {level}"
            baseline = baseline_contender(seal, pki, level)
            project = project_contender(seal, pki, level)
            _check_sealed(pki, baseline.seal(pdf), baseline.label)
            _check_sealed(pki, project.seal(pdf), project.label)
            baseline_rate = measure_rate(
                f"{name} baseline", _sealing(baseline, pdf), count=count, repeats=repeats
            )
            project_rate = measure_rate(
                f"{name} project", _sealing(project, pdf), count=count, repeats=repeats
            )
            project_rates[algorithm, level] = project_rate
            print(baseline_rate.line())
            print(project_rate.line())
            target = ""
            if algorithm is KeyAlgorithm.RSA_2048 and level == "B-B":
                met = project_rate.median / baseline_rate.median >= _TARGET_BB_SPEEDUP
                target = f"target >= {_TARGET_BB_SPEEDUP}x: {_verdict(met)}"
            line = ratio_line(f"{name} project / baseline", project_rate, baseline_rate, target)
            print(line)
            ratios.append(line)
            sys.stdout.flush()
    print()
    print("Project / baseline (docs/s)")
    for line in ratios:
        print(line)
    print()
    print("Project time per document, level / B-B")
    for algorithm in ALGORITHMS:
        reference = project_rates[algorithm, "B-B"]
        for level, limit in (("B-T", _TARGET_BT_OVER_BB), ("B-LT", _TARGET_BLT_OVER_BB)):
            label = f"{algorithm.value} {level} / B-B"
            print(_time_ratio_line(label, project_rates[algorithm, level], reference, limit))
        label = f"{algorithm.value} B-LTA / B-B"
        value = reference.median / project_rates[algorithm, "B-LTA"].median
        print(f"{label:<48} {value:10.2f}x  (no target)")
    print()
    print("Project CPU time of the seal alone, B-LT / B-B, alternating")
    for algorithm in ALGORITHMS:
        print(_cpu_ratio_line(pki.seals[algorithm], pki, pdf, count))
    print()
    source = large_pdf()
    print(
        f"Peak memory sealing a {source.stat().st_size / 1e6:.1f} MB PDF from file to file "
        f"({MEMORY_ALGORITHM.value}, B-B): RSS peak above the warmed-up process"
    )
    for which in ("baseline", "project"):
        measured = _measure_memory(which, source)
        extra = measured["peak"] - measured["before"]
        multiple = extra / measured["size"]
        target = ""
        if which == "project":
            target = f"  target < {_TARGET_MEMORY}x size: {_verdict(multiple < _TARGET_MEMORY)}"
        print(
            f"{which:<48} {extra / 1e6:8.1f} MB = {multiple:5.2f}x size "
            f"({measured['method']}){target}"
        )


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=20, help="documents per repetition")
    parser.add_argument("--repeats", type=int, default=3, help="repetitions (median, min, max)")
    parser.add_argument("--memory-child", nargs=2, metavar=("WHO", "PDF"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        which, source = args.memory_child
        _memory_child(which, Path(source))
        return
    if args.count < 1 or args.repeats < 1:
        parser.error("--count and --repeats must be at least 1")
    run(args.count, args.repeats)


if __name__ == "__main__":
    main()
