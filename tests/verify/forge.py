"""Builders of sealed documents and of hostile PDFs made from them, for the verify tests."""

# pyHanko's generic PDF object constructors are untyped; this module builds many of them.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import asyncio
import datetime
import hashlib
import io
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from keys.ca import Authority
from keys.crl import RevokedEntry, build_crl
from keys.handles import hash_algorithm
from keys.ocsp import OCSPResponder
from keys.signer import KeySigner, SealKeyHandle
from keys.sm2 import SM2KeyHandle
from keys.sm2ca import SM2Authority
from keys.sm2ca import _finish as sm2_finish
from signing.options import Certification, SealLevel, SealOptions
from signing.sealer import SealIdentity, SealingContext, SealResult, seal_pdf_bytes
from tests.signing.sealing import context, identity, make_pdf
from tests.testpki import TestPKI
from verify.registry import IssuedRecord, certificate_fingerprint

_BYTE_RANGE = re.compile(rb"/ByteRange\s*\[([^\]]*)\]")
_CONTENTS = re.compile(rb"/Contents\s*<([0-9a-fA-F]*)>")


@dataclass(frozen=True)
class Sealed:
    """A sealed PDF with the seal that made it and the sealing result."""

    pdf: bytes
    seal: SealIdentity
    result: SealResult

    def record(self, record_id: str = "LIC-1", status: str = "valid") -> IssuedRecord:
        """The registry record of this file as issued."""
        return IssuedRecord(
            record_id=record_id,
            kind="certificate",
            pdf_sha256=hashlib.sha256(self.pdf).hexdigest(),
            signed_digest=self.result.signed_digest,
            seal_fingerprint=certificate_fingerprint(self.seal.certificate),
            status=status,  # type: ignore[arg-type]
        )


def seal(
    pki: TestPKI,
    pdf: bytes | None = None,
    *,
    level: SealLevel = SealLevel.B_LT,
    certification: Certification = Certification.APPROVAL,
    seal_identity: SealIdentity | None = None,
) -> Sealed:
    """Seal ``pdf`` (a fresh one-page PDF by default) with a new seal of the test PKI."""
    who = seal_identity or identity(pki)
    return seal_with(who, context(pki, who), pdf, level=level, certification=certification)


def seal_with(
    who: SealIdentity,
    sealing_context: SealingContext,
    pdf: bytes | None = None,
    *,
    level: SealLevel,
    certification: Certification,
) -> Sealed:
    """Seal ``pdf`` (a fresh one-page PDF by default) with the seal ``who``."""
    out, result = seal_pdf_bytes(
        pdf or make_pdf(),
        identity=who,
        options=SealOptions(level=level, certification=certification),
        context=sealing_context,
    )
    return Sealed(out, who, result)


class CertificationAuthorities(Protocol):
    """A root and an issuing CA of either hierarchy (the test PKI, an SM2 hierarchy)."""

    @property
    def root(self) -> Authority | SM2Authority:
        """The root CA."""
        ...

    @property
    def issuing(self) -> Authority | SM2Authority:
        """The issuing CA, which certifies the seals."""
        ...


def service_crls(
    pki: CertificationAuthorities, revoked: tuple[RevokedEntry, ...] = ()
) -> tuple[bytes, ...]:
    """The service's current CRLs (root and issuing CA, which lists ``revoked``), as the API
    hands them in."""
    now = datetime.datetime.now(datetime.UTC)
    return tuple(
        build_crl(
            authority,
            revoked=revoked if authority is pki.issuing else (),
            crl_number=2,
            this_update=now,
            next_update=now + datetime.timedelta(days=1),
        ).public_bytes(Encoding.DER)
        for authority in (pki.root, pki.issuing)
    )


def ocsp_answer(
    responder: OCSPResponder, certificate: x509.Certificate, issuer: x509.Certificate
) -> bytes:
    """``responder``'s fresh DER answer about ``certificate``, issued by ``issuer``."""
    request = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA256())
    return responder.respond(request.build().public_bytes(Encoding.DER)).der


# --- byte-level edits ----------------------------------------------------------------------


def byte_range(pdf: bytes) -> tuple[int, int, int, int, re.Match[bytes]]:
    """The first signature's /ByteRange and its match."""
    match = _BYTE_RANGE.search(pdf)
    assert match is not None
    a, b, c, d = (int(v) for v in match.group(1).split())
    return a, b, c, d, match


def set_byte_range(pdf: bytes, text: bytes) -> bytes:
    """Replace the first /ByteRange's numbers, keeping the file's length."""
    *_, match = byte_range(pdf)
    inner = match.group(1)
    assert len(text) <= len(inner)
    return pdf[: match.start(1)] + text.ljust(len(inner)) + pdf[match.end(1) :]


def flip_signed_byte(pdf: bytes) -> bytes:
    """Change one byte inside the signed range (in the producer's header comment)."""
    at = pdf.index(b"ReportLab")
    return pdf[:at] + b"X" + pdf[at + 1 :]


def with_cms_revinfo(pdf: bytes, crls: list[bytes], ocsp_responses: list[bytes]) -> bytes:
    """Put CRLs and OCSP responses into the first signature's CMS ``crls`` field (CAdES style;
    OCSP as RFC 5940's other-revocation-info). The field is not signed, so the seal stays
    intact; /Contents keeps its length."""
    from asn1crypto import cms  # noqa: PLC0415
    from asn1crypto import crl as asn1_crl  # noqa: PLC0415
    from asn1crypto import ocsp as asn1_ocsp  # noqa: PLC0415

    match = _CONTENTS.search(pdf)
    assert match is not None
    hex_cms = match.group(1)
    info = cms.ContentInfo.load(bytes.fromhex(hex_cms.decode()), strict=False)
    signed = info["content"]
    signed["crls"] = [
        *(
            cms.RevocationInfoChoice(name="crl", value=asn1_crl.CertificateList.load(c))
            for c in crls
        ),
        *(
            cms.RevocationInfoChoice(
                name="other",
                value={
                    "other_rev_info_format": "ocsp_response",
                    "other_rev_info": asn1_ocsp.OCSPResponse.load(o),
                },
            )
            for o in ocsp_responses
        ),
    ]
    der: bytes = cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()
    assert 2 * len(der) <= len(hex_cms)
    forged = der.hex().encode().ljust(len(hex_cms), b"0")
    return pdf[: match.start(1)] + forged + pdf[match.end(1) :]


def empty_contents(pdf: bytes) -> bytes:
    """Zero the first signature's /Contents (same length)."""
    match = _CONTENTS.search(pdf)
    assert match is not None
    return pdf[: match.start(1)] + b"0" * len(match.group(1)) + pdf[match.end(1) :]


def wrap_signature(pdf: bytes) -> bytes:
    """Signature wrapping: shorten /Contents to the CMS and hide a payload in the unsigned gap."""
    match = _CONTENTS.search(pdf)
    assert match is not None
    hex_cms = match.group(1)
    der_length = 4 + int(hex_cms[4:8], 16)  # 30 82 LL LL
    kept = hex_cms[: 2 * der_length]
    payload = b"> /Payload (4 0 obj << /Type /Page >> endobj) "
    filler = len(hex_cms) + 1 - len(kept) - len(payload)
    forged = kept + payload + b" " * filler
    return pdf[: match.start(1)] + forged + pdf[match.end(1) + 1 :]


def replace_contents(pdf: bytes, signer: KeySigner) -> bytes:
    """Re-sign the first signature's signed bytes with ``signer`` (another genuine seal), over
    the digest of its suite (SHA-256, or SM3 for an SM2 seal)."""
    a, b, c, d, _ = byte_range(pdf)
    digest = hashes.Hash(hash_algorithm(signer.suite.digest))
    digest.update(pdf[a : a + b] + pdf[c : c + d])
    cms = asyncio.run(signer.async_sign(digest.finalize(), signer.suite.digest, use_pades=True))
    match = _CONTENTS.search(pdf)
    assert match is not None
    new_hex: bytes = cms.dump().hex().encode()
    assert len(new_hex) <= len(match.group(1))
    return pdf[: match.start(1)] + new_hex.ljust(len(match.group(1)), b"0") + pdf[match.end(1) :]


# --- incremental updates --------------------------------------------------------------------


def update(pdf: bytes, change: Callable[[IncrementalPdfFileWriter], None]) -> bytes:
    """Append an incremental update made by ``change``."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    change(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def add_page_content(content: bytes) -> Callable[[IncrementalPdfFileWriter], None]:
    """An update drawing ``content`` over page 1 (shadow "hide": a white box over the text)."""

    def change(writer: IncrementalPdfFileWriter) -> None:
        stream = generic.StreamObject(stream_data=content)
        writer.add_stream_to_page(0, writer.add_object(stream))

    return change


def replace_page_content(content: bytes) -> Callable[[IncrementalPdfFileWriter], None]:
    """An update replacing page 1's content stream (shadow "replace")."""

    def change(writer: IncrementalPdfFileWriter) -> None:
        page_ref = writer.root["/Pages"].raw_get("/Kids")[0]
        page = page_ref.get_object()
        page["/Contents"] = writer.add_object(generic.StreamObject(stream_data=content))
        writer.update_container(page)

    return change


def hide_and_replace(writer: IncrementalPdfFileWriter) -> None:
    """Shadow "hide-and-replace": swap the content and add an overlay form XObject."""
    replace_page_content(b"BT /F1 24 Tf 72 700 Td (Licence revoked: none) Tj ET")(writer)
    form = generic.StreamObject(
        {
            generic.pdf_name("/Type"): generic.pdf_name("/XObject"),
            generic.pdf_name("/Subtype"): generic.pdf_name("/Form"),
            generic.pdf_name("/BBox"): generic.ArrayObject(
                [generic.NumberObject(v) for v in (0, 0, 600, 800)]
            ),
        },
        stream_data=b"1 1 1 rg 0 0 600 800 re f",
    )
    page = writer.root["/Pages"].raw_get("/Kids")[0].get_object()
    resources = page.setdefault(generic.pdf_name("/Resources"), generic.DictionaryObject())
    resources = resources.get_object()
    xobjects = resources.setdefault(generic.pdf_name("/XObject"), generic.DictionaryObject())
    xobjects[generic.pdf_name("/Shadow")] = writer.add_object(form)
    writer.update_container(page)


def evil_annotation(writer: IncrementalPdfFileWriter) -> None:
    """An update adding a link annotation that runs JavaScript."""
    page = writer.root["/Pages"].raw_get("/Kids")[0].get_object()
    annotation = generic.DictionaryObject(
        {
            generic.pdf_name("/Type"): generic.pdf_name("/Annot"),
            generic.pdf_name("/Subtype"): generic.pdf_name("/Link"),
            generic.pdf_name("/Rect"): generic.ArrayObject(
                [generic.NumberObject(v) for v in (0, 0, 600, 800)]
            ),
            generic.pdf_name("/A"): generic.DictionaryObject(
                {
                    generic.pdf_name("/S"): generic.pdf_name("/JavaScript"),
                    generic.pdf_name("/JS"): generic.TextStringObject("app.alert('forged')"),
                }
            ),
        }
    )
    annots = page.get("/Annots")
    ref = writer.add_object(annotation)
    if annots is None:
        page[generic.pdf_name("/Annots")] = generic.ArrayObject([ref])
    else:
        annots.get_object().append(ref)
    writer.update_container(page)


def delete_seal_value(writer: IncrementalPdfFileWriter) -> None:
    """An update removing the /V (the signature) of every signature field."""
    for field_ref in writer.root["/AcroForm"]["/Fields"]:
        field = field_ref.get_object()
        if "/V" in field:
            del field["/V"]
            writer.update_container(field)


def flate_bomb(writer: IncrementalPdfFileWriter) -> None:
    """An update adding a doubly deflated content stream of 512 MiB of zeros."""
    inner = zlib.compress(b"\0" * (64 * 1024 * 1024), 9) * 8
    outer = zlib.compress(inner, 9)
    stream = generic.StreamObject(
        {
            generic.pdf_name("/Filter"): generic.ArrayObject(
                [generic.pdf_name("/FlateDecode"), generic.pdf_name("/FlateDecode")]
            )
        },
        encoded_data=outer,
    )
    writer.add_stream_to_page(0, writer.add_object(stream))


def prev_loop(pdf: bytes) -> bytes:
    """Point the last trailer's /Prev at the last cross-reference section itself."""
    startxref: bytes = re.findall(rb"startxref\s+(\d+)", pdf)[-1]
    prev = list(re.finditer(rb"/Prev (\d+)", pdf))[-1]
    forged = startxref.ljust(len(prev.group(1)))
    assert len(forged) == len(prev.group(1))
    return pdf[: prev.start(1)] + forged + pdf[prev.end(1) :]


def deep_nesting(depth: int = 100_000) -> bytes:
    """A small PDF whose one object nests ``depth`` arrays."""
    body = b"[" * depth + b"]" * depth
    objects = [
        b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n",
        b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 /Deep " + body + b" >>\nendobj\n",
    ]
    return _assemble(objects)


def append_deep_update(pdf: bytes, depth: int = 100_000) -> bytes:
    """An incremental update (with its own cross-reference section) adding a deep object."""
    prev = re.findall(rb"startxref\s+(\d+)", pdf)[-1].decode()
    offset = len(pdf)
    body = b"900 0 obj\n" + b"[" * depth + b"]" * depth + b"\nendobj\n"
    xref = offset + len(body)
    tail = (
        f"xref\n900 1\n{offset:010d} 00000 n \n"
        f"trailer\n<< /Size 901 /Root 1 0 R /Prev {prev} >>\nstartxref\n{xref}\n%%EOF\n"
    )
    return pdf + body + tail.encode()


def sha1_signed(pki: TestPKI) -> bytes:
    """A PDF signed by a genuine seal key and certificate with SHA-1 as the digest."""
    from pyhanko.sign import signers  # noqa: PLC0415
    from pyhanko.sign.fields import SigSeedSubFilter  # noqa: PLC0415

    meta = signers.PdfSignatureMetadata(
        field_name="Seal", md_algorithm="sha1", subfilter=SigSeedSubFilter.PADES
    )
    return _pyhanko_signed(pki, meta)


def adobe_revinfo_signed(pki: TestPKI) -> bytes:
    """A PDF signed the way Acrobat does: ``adbe.pkcs7.detached``, the seal's CRLs inside the
    signature (the signed attribute adbe-revocationInfoArchival), no DSS."""
    from pyhanko.sign import signers  # noqa: PLC0415
    from pyhanko.sign.fields import SigSeedSubFilter  # noqa: PLC0415
    from pyhanko_certvalidator import ValidationContext  # noqa: PLC0415

    from keys.signer import to_asn1  # noqa: PLC0415

    meta = signers.PdfSignatureMetadata(
        field_name="Seal",
        md_algorithm="sha256",
        subfilter=SigSeedSubFilter.ADOBE_PKCS7_DETACHED,
        embed_validation_info=True,
        validation_context=ValidationContext(
            trust_roots=[to_asn1(pki.root.certificate)],
            crls=list(service_crls(pki)),
            allow_fetching=False,
        ),
    )
    return _pyhanko_signed(pki, meta)


def _pyhanko_signed(pki: TestPKI, meta: object) -> bytes:
    """A new seal of ``pki`` signing a plain PDF through pyHanko with ``meta``."""
    from asn1crypto import keys as asn1_keys  # noqa: PLC0415
    from cryptography.hazmat.primitives.serialization import (  # noqa: PLC0415
        NoEncryption,
        PrivateFormat,
    )
    from pyhanko.sign import signers  # noqa: PLC0415
    from pyhanko_certvalidator.registry import SimpleCertificateStore  # noqa: PLC0415

    from keys.signer import to_asn1  # noqa: PLC0415

    assert isinstance(meta, signers.PdfSignatureMetadata)
    handle, cert = pki.make_seal()
    der_key = handle._key.private_bytes(  # type: ignore[attr-defined]  # test-only
        Encoding.DER, PrivateFormat.PKCS8, NoEncryption()
    )
    signer = signers.SimpleSigner(
        signing_cert=to_asn1(cert),
        signing_key=asn1_keys.PrivateKeyInfo.load(der_key),
        cert_registry=SimpleCertificateStore.from_certs([to_asn1(c) for c in pki.chain]),
    )
    out = io.BytesIO()
    signers.PdfSigner(meta, signer=signer).sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(make_pdf())), output=out
    )
    return out.getvalue()


def _assemble(objects: list[bytes]) -> bytes:
    out = b"%PDF-1.7\n"
    offsets = []
    for obj in objects:
        offsets.append(len(out))
        out += obj
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n".encode()
    return out + f"startxref\n{xref}\n%%EOF\n".encode()


def image_only_seal() -> bytes:
    """A licence with a red round seal drawn on it and no signature at all."""
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4)
    page.drawString(72, 760, "eContract test document - page 1")
    page.setStrokeColorRGB(0.8, 0, 0)
    page.setFillColorRGB(0.8, 0, 0)
    page.setLineWidth(4)
    page.circle(450, 150, 60)
    page.drawCentredString(450, 150, "SEAL")
    page.showPage()
    page.save()
    return out.getvalue()


# --- forged seals -----------------------------------------------------------------------------


def look_alike(genuine: SealIdentity, handle: SealKeyHandle) -> SealIdentity:
    """A seal of ``handle``, self-signed with the genuine seal's subject, and its picture."""
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    cert = handle_self_signed(handle, genuine.certificate.subject, now)
    return SealIdentity(
        signer=KeySigner.for_handle(handle, cert, ()),
        certificate=cert,
        chain=(),
        appearance=genuine.appearance,
    )


def handle_self_signed(
    handle: object, subject: x509.Name, now: datetime.datetime
) -> x509.Certificate:
    """A self-signed certificate for a software key handle, valid 30 days from ``now``; for
    an SM2 handle signed SM2-with-SM3 by :mod:`keys.sm2ca`'s own finishing step (cryptography
    cannot sign SM2), without the key usage."""
    draft = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
    )
    if isinstance(handle, SM2KeyHandle):
        return sm2_finish(draft, handle.public_key_info(), handle)
    key = handle._key  # type: ignore[attr-defined]  # test-only: the software key itself
    return (
        draft.public_key(key.public_key())
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )


def reader(pdf: bytes) -> PdfFileReader:
    """A pyHanko reader over ``pdf``."""
    return PdfFileReader(io.BytesIO(pdf))
