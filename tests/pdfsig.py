"""pdfsig with the service's root as its trust anchor: the independent check that every
seal of a document is valid and trusted."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from econtract.services import Services


def nss_db(directory: Path, root_pem: bytes) -> Path:
    """An NSS database trusting ``root_pem`` for documents (S/MIME and object signing)."""
    directory.mkdir()
    (directory / "root.pem").write_bytes(root_pem)
    subprocess.run(
        ["certutil", "-N", "-d", f"sql:{directory}", "--empty-password"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    subprocess.run(
        [
            "certutil",
            "-A",
            "-n",
            "econtract-root",
            "-t",
            "C,C,C",
            "-i",
            str(directory / "root.pem"),
            "-d",
            f"sql:{directory}",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return directory


def pdfsig_trusting(services: Services, pdf: Path) -> str:
    """pdfsig's report on ``pdf`` with only the service's root trusted (in a new NSS database
    beside the file), offline: the revocation material is the document's own (B-LT)."""
    nss = pdf.with_suffix(".nss")
    root = services.pki.root.certificate.public_bytes(Encoding.PEM)
    nss_db(nss, root)
    done = subprocess.run(
        ["pdfsig", "-nssdir", f"sql:{nss}", "-no-ocsp", str(pdf)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.stdout + done.stderr


def openssl_trusts_every_seal(services: Services, pdf: Path) -> int:
    """How many of the PDF's seals (not its document timestamps) openssl verifies as a CMS
    signature over the bytes its /ByteRange names, with a chain to the service's root and
    nothing else trusted; every one must, or the assertion names the field.

    pdfsig says whether a signature is intact, but with NSS its trust verdict for documents
    holding several seals depends on online OCSP answers and on the order of the seals (a
    certificate met twice in one run reports "Unknown issue"), so trust is checked with openssl
    here, one seal at a time, offline."""
    from asn1crypto import cms as asn1_cms  # noqa: PLC0415
    from pyhanko.pdf_utils.reader import PdfFileReader  # noqa: PLC0415

    root = pdf.with_suffix(".root.pem")
    root.write_bytes(services.pki.root.certificate.public_bytes(Encoding.PEM))
    data = pdf.read_bytes()
    with pdf.open("rb") as stream:
        signatures = PdfFileReader(stream).embedded_signatures
        seals = [s for s in signatures if s.sig_object.get("/Type") != "/DocTimeStamp"]
        for number, seal in enumerate(seals):
            start1, length1, start2, length2 = (int(v) for v in seal.sig_object["/ByteRange"])
            content = pdf.with_suffix(f".{number}.bin")
            content.write_bytes(data[start1 : start1 + length1] + data[start2 : start2 + length2])
            cms = pdf.with_suffix(f".{number}.p7s")
            # /Contents is padded with zeros after the DER; loading it drops the padding.
            raw = bytes(seal.sig_object["/Contents"])
            cms.write_bytes(asn1_cms.ContentInfo.load(raw, strict=False).dump())
            done = subprocess.run(
                [
                    "openssl",
                    "cms",
                    "-verify",
                    "-binary",
                    "-inform",
                    "DER",
                    "-in",
                    str(cms),
                    "-content",
                    str(content),
                    "-CAfile",
                    str(root),
                    "-purpose",
                    "any",
                    "-out",
                    "/dev/null",
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, f"{seal.field_name}: {done.stderr}"
    return len(seals)
