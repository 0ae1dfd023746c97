"""Helpers for sealing tests: documents, seal identities, validation material, validation."""

from __future__ import annotations

import datetime
import io
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko_certvalidator import ValidationContext
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from keys.crl import build_crl
from keys.handles import KeyAlgorithm
from keys.signer import KeySigner, to_asn1
from signing.appearance import SealAppearance
from signing.material import ValidationMaterial
from signing.options import SealLevel, SealOptions
from signing.sealer import SealIdentity, SealingContext, seal_pdf_bytes
from tests.testpki import DEPARTMENT_CODE, DEPARTMENT_NAME, TestPKI


def make_pdf(pages: int = 1, text: str = "eContract test document") -> bytes:
    """A plain A4 PDF of ``pages`` pages."""
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=A4)
    for n in range(pages):
        c.drawString(72, 760, f"{text} - page {n + 1}")
        c.showPage()
    c.save()
    return out.getvalue()


def identity(
    pki: TestPKI, algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256, **seal: Any
) -> SealIdentity:
    """A seal of the test PKI with its appearance."""
    handle, cert = pki.make_seal(algorithm, **seal)
    return SealIdentity(
        signer=KeySigner.for_handle(handle, cert, pki.chain),
        certificate=cert,
        chain=pki.chain,
        appearance=SealAppearance(
            department_name=seal.get("department_name", DEPARTMENT_NAME),
            seal_name=seal.get("seal_name", "证照专用章"),
            code=seal.get("department_code", DEPARTMENT_CODE)[-13:],
        ),
    )


def ocsp_response(pki: TestPKI, cert: x509.Certificate) -> bytes:
    """A fresh OCSP response of the test responder for ``cert``."""
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(cert, pki.issuing.certificate, hashes.SHA256())
        .build()
        .public_bytes(Encoding.DER)
    )
    return pki.ocsp_responder().respond(request).der


def context(pki: TestPKI, seal: SealIdentity) -> SealingContext:
    """Timestamper and validation material of the test PKI for ``seal``."""
    now = datetime.datetime.now(datetime.UTC)
    crls = [
        build_crl(
            authority,
            revoked=(),
            crl_number=1,
            this_update=now,
            next_update=now + datetime.timedelta(days=1),
        ).public_bytes(Encoding.DER)
        for authority in (pki.root, pki.issuing)
    ]
    return SealingContext(
        timestamper=pki.timestamper(),
        material=ValidationMaterial.build(
            certificates=[*pki.chain, pki.tsa.certificate, pki.ocsp.certificate],
            crls=crls,
            ocsp_responses=[ocsp_response(pki, seal.certificate)],
        ),
    )


@dataclass(frozen=True)
class Checked:
    """pyHanko's verdict on one embedded signature."""

    field: str
    status: Any


def validate_all(pdf: bytes, pki: TestPKI, *, offline_hard_fail: bool) -> list[Checked]:
    """Validate every signature of ``pdf``; with ``offline_hard_fail``, only with the DSS data."""
    reader = PdfFileReader(io.BytesIO(pdf))
    root = to_asn1(pki.root.certificate)
    if offline_hard_fail:
        dss = DocumentSecurityStore.read_dss(reader)
        vc = dss.as_validation_context(
            {"trust_roots": [root], "allow_fetching": False, "revocation_mode": "hard-fail"}
        )
    else:
        vc = ValidationContext(
            trust_roots=[root], allow_fetching=False, revocation_mode="soft-fail"
        )
    results = []
    for sig in reader.embedded_regular_signatures:
        results.append(
            Checked(sig.field_name, validate_pdf_signature(sig, vc, ts_validation_context=vc))
        )
    return results


def pdfsig(path: Path, *args: str) -> str:
    """pdfsig's report on ``path``."""
    done = subprocess.run(
        ["pdfsig", *args, str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    return done.stdout + done.stderr


def qpdf_check(path: Path) -> subprocess.CompletedProcess[str]:
    """``qpdf --check`` on ``path``."""
    return subprocess.run(
        ["qpdf", "--check", str(path)], capture_output=True, text=True, timeout=60, check=False
    )


def seal_in_a_thread(pki: TestPKI, level: SealLevel) -> bytes:
    """A test document sealed by the test PKI's department at ``level``.

    pyHanko's synchronous API runs its own event loop, so the sealing goes to a thread of its
    own: callers may be inside one (an ASGI test client, Playwright).
    """
    seal = identity(pki)
    with ThreadPoolExecutor(1) as pool:
        sealed, _ = pool.submit(
            seal_pdf_bytes,
            make_pdf(),
            identity=seal,
            options=SealOptions(level=level),
            context=context(pki, seal),
        ).result()
    return sealed
