"""Helpers for SM2 sealing tests: the SM2 test hierarchy and its seals, and a seal's CMS read
back and judged.

OpenSSL 3.0 cannot check an SM2 CMS (its CMS code has no SM2 with the default user id), but
its ``pkeyutl`` checks the SM2 signature over DER(signed attributes), and cryptography's
``hashes.SM3`` recomputes the message digest over the ``/ByteRange``: together they judge a
seal without the service's own code.
"""

from __future__ import annotations

import datetime
import io
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from pyhanko.pdf_utils.reader import PdfFileReader

from keys.ca import PKIURLs, SealSubject
from keys.signer import KeySigner
from keys.sm2 import SM2KeyHandle, generate_sm2_key
from keys.sm2ca import SM2Hierarchy, create_sm2_hierarchy, issue_sm2_seal_certificate
from signing.appearance import SealAppearance
from signing.sealer import SealIdentity
from tests.keys.openssl import SM2_DISTID, openssl
from tests.testpki import BASE_URL, DEPARTMENT_CODE, DEPARTMENT_NAME

_SET = 0x31


def new_sm2_hierarchy(label: str = "sm2") -> SM2Hierarchy:
    """A new SM2 root and issuing CA with the test names and URLs and keys of their own
    (labelled ``label``-root and ``label``-issuing): the test hierarchy, or an impostor's."""
    return create_sm2_hierarchy(
        root_key=generate_sm2_key(f"{label}-root"),
        issuing_key=generate_sm2_key(f"{label}-issuing"),
        name="Test",
        urls=PKIURLs(base_url=BASE_URL),
    )


@cache
def sm2_hierarchy() -> SM2Hierarchy:
    """An SM2 root and issuing CA, made once for the test run."""
    return new_sm2_hierarchy()


def issue_sm2_seal(
    hierarchy: SM2Hierarchy,
    *,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    department_name: str = DEPARTMENT_NAME,
    department_code: str = DEPARTMENT_CODE,
    seal_name: str = "证照专用章",
) -> tuple[SM2KeyHandle, x509.Certificate]:
    """A new SM2 key and its licence seal certificate of the department (the test department
    by default) from ``hierarchy``'s issuing CA."""
    handle = generate_sm2_key("sm2-seal")
    certificate = issue_sm2_seal_certificate(
        hierarchy.issuing,
        handle.public_key_info(),
        subject=SealSubject(
            department_name=department_name,
            department_code=department_code,
            seal_kind="licence",
            seal_name=seal_name,
        ),
        ca_name=hierarchy.ca_name,
        urls=hierarchy.urls,
        not_before=not_before,
        not_after=not_after,
    )
    return handle, certificate


def sm2_identity(
    seal_name: str = "证照专用章",
    *,
    hierarchy: SM2Hierarchy | None = None,
    department_name: str = DEPARTMENT_NAME,
    department_code: str = DEPARTMENT_CODE,
) -> SealIdentity:
    """A new SM2 seal of the department (the test department by default), certified by
    ``hierarchy``'s issuing CA (:func:`sm2_hierarchy`'s by default) from an hour ago for 30
    days."""
    hierarchy = hierarchy or sm2_hierarchy()
    now = datetime.datetime.now(datetime.UTC)
    handle, certificate = issue_sm2_seal(
        hierarchy,
        not_before=now - datetime.timedelta(hours=1),
        not_after=now + datetime.timedelta(days=30),
        department_name=department_name,
        department_code=department_code,
        seal_name=seal_name,
    )
    return SealIdentity(
        signer=KeySigner.for_handle(handle, certificate, hierarchy.chain),
        certificate=certificate,
        chain=hierarchy.chain,
        appearance=SealAppearance(
            department_name=department_name, seal_name=seal_name, code=department_code[-13:]
        ),
    )


@dataclass(frozen=True)
class EmbeddedSeal:
    """One signature of a PDF, read with pyHanko's reader: its dictionary and its CMS."""

    field_name: str
    filter: str
    """The signature dictionary's ``/Filter``."""
    sub_filter: str
    """Its ``/SubFilter``."""
    byte_range: tuple[int, int, int, int]
    content: cms.ContentInfo
    """The CMS ContentInfo in ``/Contents``."""

    @classmethod
    def of_cms(cls, content: cms.ContentInfo) -> EmbeddedSeal:
        """A CMS that is not in a signature dictionary (a timestamp token, a bare CMS)."""
        return cls(
            field_name="", filter="", sub_filter="", byte_range=(0, 0, 0, 0), content=content
        )

    @property
    def signature_timestamp(self) -> EmbeddedSeal:
        """The signature timestamp token of the seal's unsigned attributes."""
        for attr in self.signer_info["unsigned_attrs"]:
            if attr["type"].native == "signature_time_stamp_token":
                [token] = attr["values"]
                return EmbeddedSeal.of_cms(cms.ContentInfo.load(token.dump()))
        raise AssertionError("The seal has no signature timestamp.")

    @property
    def signed_data(self) -> cms.SignedData:
        """The SignedData inside."""
        signed: cms.SignedData = self.content["content"]
        return signed

    @property
    def signer_info(self) -> cms.SignerInfo:
        """The only SignerInfo."""
        [info] = self.signed_data["signer_infos"]
        return info

    @property
    def signer_certificate(self) -> asn1_x509.Certificate:
        """The embedded certificate the SignerInfo names by issuer and serial."""
        sid = self.signer_info["sid"].chosen
        for choice in self.signed_data["certificates"]:
            cert = choice.chosen
            if cert.issuer == sid["issuer"] and cert.serial_number == sid["serial_number"].native:
                return cert
        raise AssertionError("The signer's certificate is not embedded.")

    def signed_attrs_der(self) -> bytes:
        """DER(signed attributes) as signed: the ``[0] IMPLICIT`` field tagged as a SET OF."""
        tagged: bytes = self.signer_info["signed_attrs"].dump()
        return bytes((_SET,)) + tagged[1:]

    def attribute(self, name: str) -> object:
        """The single value of a signed attribute, as asn1crypto's native value."""
        for attr in self.signer_info["signed_attrs"]:
            if attr["type"].native == name:
                [value] = attr["values"]
                return value.native
        raise AssertionError(f"No signed attribute {name}.")

    @property
    def message_digest(self) -> bytes:
        """The message-digest attribute: the digest of the covered bytes, as signed."""
        digest = self.attribute("message_digest")
        assert isinstance(digest, bytes)
        return digest

    def covered_bytes(self, pdf: bytes) -> bytes:
        """The bytes the ``/ByteRange`` covers."""
        first, first_len, second, second_len = self.byte_range
        return pdf[first : first + first_len] + pdf[second : second + second_len]


def embedded_seals(pdf: bytes) -> list[EmbeddedSeal]:
    """Every regular signature of ``pdf``, in document order."""
    reader = PdfFileReader(io.BytesIO(pdf))
    seals = []
    for sig in reader.embedded_regular_signatures:
        obj = sig.sig_object
        seals.append(
            EmbeddedSeal(
                field_name=sig.field_name,
                filter=str(obj["/Filter"]),
                sub_filter=str(obj["/SubFilter"]),
                byte_range=tuple(int(v) for v in obj["/ByteRange"]),  # type: ignore[arg-type]
                content=_content_info(sig.pkcs7_content),
            )
        )
    return seals


def document_timestamps(pdf: bytes) -> list[EmbeddedSeal]:
    """Every document timestamp of ``pdf``, in document order."""
    reader = PdfFileReader(io.BytesIO(pdf))
    return [
        EmbeddedSeal.of_cms(_content_info(sig.pkcs7_content))
        for sig in reader.embedded_timestamp_signatures
    ]


def _content_info(der: bytes) -> cms.ContentInfo:
    """The ContentInfo from ``/Contents`` (which pads it with zeros after its end)."""
    info = cms.ContentInfo.load(der, strict=False)
    return cms.ContentInfo.load(info.dump())


def sm3(data: bytes) -> bytes:
    """SM3 of ``data``, by cryptography (OpenSSL's libcrypto), not by the service's code."""
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize()


def openssl_verifies(directory: Path, seal: EmbeddedSeal, signed_attrs: bytes | None = None) -> str:
    """OpenSSL's verdict on the seal's SM2 signature over DER(signed attributes).

    Runs ``openssl pkeyutl -verify -rawin -digest sm3 -pubin -inkey seal-pub.pem -pkeyopt
    distid:1234567812345678 -in signedattrs.der -sigfile sig.der``; ``signed_attrs`` replaces
    the seal's own bytes (to show a change is refused).
    """
    spki = seal.signer_certificate.public_key.dump()
    (directory / "seal-pub.der").write_bytes(spki)
    openssl("pkey", "-pubin", "-inform", "DER", "-in", directory / "seal-pub.der",
            "-out", directory / "seal-pub.pem")  # fmt: skip
    (directory / "signedattrs.der").write_bytes(
        seal.signed_attrs_der() if signed_attrs is None else signed_attrs
    )
    (directory / "sig.der").write_bytes(seal.signer_info["signature"].native)
    result = openssl(
        "pkeyutl", "-verify", "-rawin", "-digest", "sm3", "-pubin",
        "-inkey", directory / "seal-pub.pem", "-pkeyopt", SM2_DISTID,
        "-in", directory / "signedattrs.der", "-sigfile", directory / "sig.der", check=False,
    )  # fmt: skip
    return result.stdout + result.stderr
