"""Seals made through KeySigner, with software and PKCS#11 handles."""

from __future__ import annotations

import io

import pytest
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from reportlab.pdfgen import canvas

from keys.ca import SealSubject, issue_seal_certificate
from keys.handles import KeyAlgorithm, KeyHandle
from keys.pkcs11store import PKCS11KeyStore
from keys.signer import KeySigner, to_asn1
from keys.store import KeyStoreConfig
from tests.testpki import DEPARTMENT_CODE, DEPARTMENT_NAME, TestPKI


def _blank_pdf() -> bytes:
    out = io.BytesIO()
    page = canvas.Canvas(out)
    page.drawString(72, 720, "eContract test document")
    page.save()
    return out.getvalue()


def _seal_and_validate(pki: TestPKI, signer: KeySigner, *, timestamp: bool) -> None:
    writer = IncrementalPdfFileWriter(io.BytesIO(_blank_pdf()))
    sealed = signers.sign_pdf(
        writer,
        signers.PdfSignatureMetadata(field_name="Seal"),
        signer=signer,
        timestamper=pki.timestamper() if timestamp else None,
    )
    signature = PdfFileReader(sealed).embedded_signatures[0]
    context = ValidationContext(trust_roots=[to_asn1(pki.root.certificate)])
    status = validate_pdf_signature(signature, context, ts_validation_context=context)
    details = status.pretty_print_details()  # type: ignore[no-untyped-call]
    assert status.intact, details
    assert status.valid, details
    assert status.trusted, details
    if timestamp:
        assert status.timestamp_validity is not None
        assert status.timestamp_validity.intact
        assert status.timestamp_validity.valid


def test_seal_with_a_pkcs11_handle(pki: TestPKI, softhsm_config: KeyStoreConfig) -> None:
    store = PKCS11KeyStore.open(softhsm_config)
    handle: KeyHandle = store.generate("seal-p11", KeyAlgorithm.EC_P256)
    _, template = pki.make_seal()
    cert = issue_seal_certificate(
        pki.issuing,
        handle.public_key(),
        subject=SealSubject(
            department_name=DEPARTMENT_NAME,
            department_code=DEPARTMENT_CODE,
            seal_kind="licence",
            seal_name="证照专用章",
        ),
        ca_name=pki.ca_name,
        urls=pki.urls,
        not_before=template.not_valid_before_utc,
        not_after=template.not_valid_after_utc,
    )
    _seal_and_validate(pki, KeySigner.for_handle(handle, cert, pki.chain), timestamp=True)


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.EC_P256, KeyAlgorithm.RSA_2048])
def test_seal_with_a_software_handle(pki: TestPKI, algorithm: KeyAlgorithm) -> None:
    handle, cert = pki.make_seal(algorithm)
    _seal_and_validate(pki, KeySigner.for_handle(handle, cert, pki.chain), timestamp=False)
