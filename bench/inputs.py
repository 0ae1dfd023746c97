"""Benchmark inputs, made once and shared by every contender: the licence, a large PDF, a PKI.

The PDFs are cached under ``bench/out/`` (git-ignored), so that every run and every
contender seals the same bytes. The PKI is built afresh on each run (it takes well under a
second) with the project's own CA code, and written as PEM files to a directory of the run's
own, because the baseline loads its key and certificates from disk as pyHanko's documentation
shows.
"""

from __future__ import annotations

import atexit
import datetime
import io
import random
import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from PIL import Image
from pyhanko_certvalidator import ValidationContext
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from econtract.issuance import TEMPLATES, LicenceContent, render_licence
from keys.ca import (
    Authority,
    SealSubject,
    create_in_memory_hierarchy,
    issue_seal_certificate,
)
from keys.crl import build_crl
from keys.handles import KeyAlgorithm, SoftwareKeyHandle, generate_software_key
from keys.ocsp import OCSPResponder, RevocationStatus
from keys.signer import to_asn1
from keys.tsa import InProcessTimeStamper, TimestampAuthority

ROOT = Path(__file__).resolve().parent
OUT_DIR = ROOT / "out"
"""Where inputs are cached (git-ignored)."""
FONT_PATH = ROOT.parent / "signing" / "fonts" / "EContractSerifSC.ttf"
"""The project's CJK font."""
LICENCE_PATH = OUT_DIR / "licence-v2.pdf"
"""The cached one-page licence."""
LARGE_PATH = OUT_DIR / "large-50mb-v1.pdf"
"""The cached 50 MB PDF."""

_FONT_NAME = "EContractSerifSC"
_ISSUING_CA_NAME = "bench"
_DEPARTMENT_NAME = "杭州市市场监督管理局"
_DEPARTMENT_CODE = "9133010052CL12THX9"  # a valid unified social credit code
_LARGE_PAGES = 100
_LARGE_IMAGE_SIDE = 850  # an 850×850 noise JPEG at quality 70 is about 500 KB


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_bytes(data)
    partial.replace(path)


@cache
def _register_font() -> str:
    """Register the project font with reportlab, once per process."""
    if not FONT_PATH.exists():
        raise FileNotFoundError(f"The project font {FONT_PATH} has not been built yet.")
    pdfmetrics.registerFont(TTFont(_FONT_NAME, str(FONT_PATH)))
    return _FONT_NAME


def render_project_licence() -> bytes:
    """The one-page A4 business licence (营业执照) as the project renders it for issuance:
    the template's example fields, a number, the department, and a QR code of a URL as long
    as a real one."""
    template = TEMPLATES["business_licence"]
    today = datetime.date.today()
    content = LicenceContent(
        template=template,
        fields=template.example,
        number="YYZZ3301002026000042",
        department_name=_DEPARTMENT_NAME,
        issued_on=today,
        valid_from=today,
        valid_until=template.valid_until(template.example, today),
        verify_url="http://127.0.0.1:8000/v/" + "x" * 380,
    )
    return render_licence(content).pdf


def licence_pdf() -> bytes:
    """The one-page licence every contender seals (rendered once, then read from the cache)."""
    if not LICENCE_PATH.exists():
        _write_atomically(LICENCE_PATH, render_project_licence())
    return LICENCE_PATH.read_bytes()


def large_pdf() -> Path:
    """The path of a ~50 MB PDF: 100 A4 pages, each with a distinct ~500 KB noise JPEG.

    Noise does not compress, so the file stays large; the images are seeded, so that a
    rebuilt file has the same content.
    """
    if not LARGE_PATH.exists():
        out = io.BytesIO()
        page = canvas.Canvas(out, pagesize=A4, invariant=True)
        side = _LARGE_IMAGE_SIDE
        for number in range(1, _LARGE_PAGES + 1):
            noise = random.Random(number).randbytes(side * side * 3)
            jpeg = io.BytesIO()
            Image.frombytes("RGB", (side, side), noise).save(jpeg, "JPEG", quality=70)
            jpeg.seek(0)
            page.drawImage(ImageReader(jpeg), 50, 150, 500, 500)
            page.drawString(72, 800, f"page {number}")
            page.showPage()
        page.save()
        _write_atomically(LARGE_PATH, out.getvalue())
    return LARGE_PATH


@dataclass(frozen=True, kw_only=True)
class BenchSeal:
    """A seal of the benchmark PKI: the handle for the project, PEM files for the baseline."""

    algorithm: KeyAlgorithm
    """The key type and size."""
    handle: SoftwareKeyHandle
    """The key, held in memory."""
    certificate: x509.Certificate
    """The seal certificate."""
    key_file: Path
    """The unencrypted PKCS#8 PEM of the key (benchmark only)."""
    cert_file: Path
    """The PEM of the certificate."""


@dataclass(frozen=True, kw_only=True)
class BenchPKI:
    """A root, an issuing CA, a TSA, an OCSP responder, seals, and their revocation data."""

    root: Authority
    """The root CA."""
    issuing: Authority
    """The issuing CA."""
    tsa: Authority
    """The timestamp authority's identity."""
    seals: dict[KeyAlgorithm, BenchSeal]
    """One seal per key algorithm."""
    chain_files: tuple[Path, ...]
    """PEM files of the issuing CA and the root (``ca_chain_files``)."""
    crls: tuple[bytes, ...]
    """DER CRLs of the root and the issuing CA."""
    ocsp_responses: tuple[bytes, ...]
    """DER OCSP responses (good) for every seal and the TSA."""

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """The certificates above a seal: the issuing CA, then the root."""
        return (self.issuing.certificate, self.root.certificate)

    def timestamper(self) -> InProcessTimeStamper:
        """A pyHanko timestamper answered in process (so the TSA's network is not measured)."""
        return InProcessTimeStamper(TimestampAuthority(authority=self.tsa))

    def validation_context(self) -> ValidationContext:
        """A validation context holding this PKI's revocation data; it never fetches."""
        return ValidationContext(
            trust_roots=[to_asn1(self.root.certificate)],
            other_certs=[to_asn1(self.issuing.certificate)],
            crls=list(self.crls),
            ocsps=list(self.ocsp_responses),
            allow_fetching=False,
        )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.PEM)


def _ocsp_response(
    responder: OCSPResponder, cert: x509.Certificate, issuer: x509.Certificate
) -> bytes:
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256()).build()
    return responder.respond(request.public_bytes(Encoding.DER)).der


def build_bench_pki(
    algorithms: tuple[KeyAlgorithm, ...] = (KeyAlgorithm.RSA_2048, KeyAlgorithm.EC_P256),
    directory: Path | None = None,
) -> BenchPKI:
    """Build the benchmark PKI with the project's CA code and write its PEM files to
    ``directory``; by default to a directory of this process's own, removed when it exits, so
    that two benchmarks run at the same time never replace each other's files halfway."""
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="bench-pki-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0) - datetime.timedelta(hours=1)
    hierarchy = create_in_memory_hierarchy(
        name="Bench", base_url="http://127.0.0.1:8000", ca_name=_ISSUING_CA_NAME, now=now
    )
    root, issuing, tsa, urls = hierarchy.root, hierarchy.issuing, hierarchy.tsa, hierarchy.urls
    responder = OCSPResponder(
        responder=hierarchy.ocsp,
        issuers=[issuing.certificate],
        lookup=lambda _issuer, _serial: RevocationStatus("good"),
    )

    directory.mkdir(parents=True, exist_ok=True)
    chain_files = (directory / "issuing.pem", directory / "root.pem")
    chain_files[0].write_bytes(_pem(issuing.certificate))
    chain_files[1].write_bytes(_pem(root.certificate))
    subject = SealSubject(
        department_name=_DEPARTMENT_NAME,
        department_code=_DEPARTMENT_CODE,
        seal_kind="licence",
        seal_name="证照专用章",
    )
    seals: dict[KeyAlgorithm, BenchSeal] = {}
    for algorithm in algorithms:
        handle = generate_software_key(f"bench-seal-{algorithm.value}", algorithm)
        cert = issue_seal_certificate(
            issuing,
            handle.public_key(),
            subject=subject,
            ca_name=_ISSUING_CA_NAME,
            urls=urls,
            not_before=now,
            not_after=now + datetime.timedelta(days=365),
        )
        key_file = directory / f"seal-{algorithm.value}.key.pem"
        cert_file = directory / f"seal-{algorithm.value}.pem"
        # The baseline loads an unencrypted key file, as pyHanko's documentation does; this
        # throwaway key exists only for the benchmark, in the git-ignored bench/out/.
        key_file.write_bytes(
            handle._key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_file.chmod(0o600)
        cert_file.write_bytes(_pem(cert))
        seals[algorithm] = BenchSeal(
            algorithm=algorithm,
            handle=handle,
            certificate=cert,
            key_file=key_file,
            cert_file=cert_file,
        )

    this_update = now
    next_update = now + datetime.timedelta(days=7)
    crls = tuple(
        build_crl(
            ca, revoked=[], crl_number=1, this_update=this_update, next_update=next_update
        ).public_bytes(Encoding.DER)
        for ca in (root, issuing)
    )
    responses = tuple(
        _ocsp_response(responder, cert, issuing.certificate)
        for cert in [*(s.certificate for s in seals.values()), tsa.certificate]
    )
    return BenchPKI(
        root=root,
        issuing=issuing,
        tsa=tsa,
        seals=seals,
        chain_files=chain_files,
        crls=crls,
        ocsp_responses=responses,
    )
