"""Seals made through KeySigner: PAdES B-B and B-T, software and PKCS#11 handles.

The fast PAdES path assembles the CMS itself, so these tests hold it to pyHanko's own
output: pyHanko validates it, poppler's ``pdfsig`` accepts it, its signed and unsigned
attributes are those pyHanko's ``SimpleSigner`` writes, and each seal costs one private-key
operation.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import keys as asn1_keys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.ades.api import CAdESSignedAttrSpec, GenericCommitment
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.general import SigningError
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from keys.ca import SealSubject, issue_seal_certificate
from keys.errors import KeyStoreError
from keys.handles import HASHES, KeyAlgorithm, KeyHandle, SoftwareKeyHandle
from keys.pkcs11store import PKCS11KeyStore
from keys.signer import KeySigner, to_asn1
from keys.store import KeyStoreConfig
from keys.suites import suite_for
from tests.testpki import DEPARTMENT_CODE, DEPARTMENT_NAME, TestPKI

ALGORITHMS = [KeyAlgorithm.RSA_2048, KeyAlgorithm.RSA_3072, KeyAlgorithm.EC_P256]
LEVELS = ["B-B", "B-T"]
RESERVED = 16384


@dataclass(eq=False)
class CountingHandle:
    """A key handle that counts the private-key operations of the handle it wraps."""

    inner: KeyHandle
    signatures: int = field(default=0)

    @property
    def label(self) -> str:
        return self.inner.label

    @property
    def algorithm(self) -> KeyAlgorithm:
        return self.inner.algorithm

    def public_key(self) -> PublicKeyTypes:
        return self.inner.public_key()

    def sign(self, data: bytes, digest: str = "sha256") -> bytes:
        self.signatures += 1
        return self.inner.sign(data, digest)


def _one_page_pdf() -> bytes:
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4)
    page.drawString(72, 720, "eContract test document")
    page.save()
    return out.getvalue()


def _metadata(subfilter: SigSeedSubFilter = SigSeedSubFilter.PADES) -> signers.PdfSignatureMetadata:
    return signers.PdfSignatureMetadata(
        field_name="Seal", subfilter=subfilter, md_algorithm="sha256"
    )


def _seal(
    signer: signers.Signer,
    *,
    timestamper: TimeStamper | None = None,
    subfilter: SigSeedSubFilter = SigSeedSubFilter.PADES,
    bytes_reserved: int | None = RESERVED,
) -> bytes:
    pdf_signer = signers.PdfSigner(_metadata(subfilter), signer=signer, timestamper=timestamper)
    output = pdf_signer.sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(_one_page_pdf())),
        output=io.BytesIO(),
        bytes_reserved=bytes_reserved,
    )
    return bytes(output.getvalue())


def _level_timestamper(pki: TestPKI, level: str) -> TimeStamper | None:
    return pki.timestamper() if level == "B-T" else None


def _signature(sealed: bytes) -> Any:
    return PdfFileReader(io.BytesIO(sealed)).embedded_signatures[0]


def _attributes(attrs: Any) -> dict[str, bytes]:
    """Attributes by dotted OID, each value DER-encoded."""
    return {a["type"].dotted: a["values"].dump() for a in attrs}


def _assert_valid(pki: TestPKI, sealed: bytes, *, timestamp: bool) -> None:
    context = ValidationContext(trust_roots=[to_asn1(pki.root.certificate)])
    status = validate_pdf_signature(_signature(sealed), context, ts_validation_context=context)
    details = status.pretty_print_details()  # type: ignore[no-untyped-call]
    assert status.intact, details
    assert status.valid, details
    assert status.trusted, details
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE, details
    if timestamp:
        assert status.timestamp_validity is not None, details
        assert status.timestamp_validity.intact, details
        assert status.timestamp_validity.valid, details
    else:
        assert status.timestamp_validity is None, details


def _simple_signer_twin(pki: TestPKI, algorithm: KeyAlgorithm) -> tuple[KeySigner, Any]:
    """A KeySigner and pyHanko's SimpleSigner over the same key and certificate."""
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if algorithm.is_rsa:
        key = rsa.generate_private_key(public_exponent=65537, key_size=algorithm.rsa_bits)
    else:
        key = ec.generate_private_key(algorithm.curve)
    handle = SoftwareKeyHandle("twin", key)
    _, template = pki.make_seal(algorithm)
    cert = issue_seal_certificate(
        pki.issuing,
        key.public_key(),
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
    store = SimpleCertificateStore()  # type: ignore[no-untyped-call]
    store.register_multiple([to_asn1(c) for c in pki.chain])
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    simple = signers.SimpleSigner(
        signing_key=asn1_keys.PrivateKeyInfo.load(der),
        signing_cert=to_asn1(cert),
        cert_registry=store,
    )
    return KeySigner.for_handle(handle, cert, pki.chain), simple


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_pades_seal_is_valid_for_pyhanko(pki: TestPKI, algorithm: KeyAlgorithm, level: str) -> None:
    handle, cert = pki.make_seal(algorithm)
    signer = KeySigner.for_handle(handle, cert, pki.chain)
    sealed = _seal(signer, timestamper=_level_timestamper(pki, level))
    _assert_valid(pki, sealed, timestamp=level == "B-T")


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_pades_seal_is_valid_for_pdfsig(
    pki: TestPKI, algorithm: KeyAlgorithm, level: str, tmp_path: Path
) -> None:
    handle, cert = pki.make_seal(algorithm)
    sealed = _seal(
        KeySigner.for_handle(handle, cert, pki.chain), timestamper=_level_timestamper(pki, level)
    )
    path = tmp_path / "sealed.pdf"
    path.write_bytes(sealed)
    result = subprocess.run(
        ["pdfsig", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert "Signature is Valid." in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("algorithm", [KeyAlgorithm.RSA_2048, KeyAlgorithm.EC_P256])
def test_cms_structure_matches_pyhanko_simple_signer(
    pki: TestPKI, algorithm: KeyAlgorithm, level: str
) -> None:
    ours_signer, simple = _simple_signer_twin(pki, algorithm)
    timestamper = _level_timestamper(pki, level)
    ours = _signature(_seal(ours_signer, timestamper=timestamper))
    theirs = _signature(_seal(simple, timestamper=timestamper))
    our_info, their_info = ours.signer_info, theirs.signer_info

    our_attrs = _attributes(our_info["signed_attrs"])
    their_attrs = _attributes(their_info["signed_attrs"])
    assert list(our_attrs) == list(their_attrs)
    # Everything but the digest of the (different) signed revisions is the same.
    message_digest = "1.2.840.113549.1.9.4"
    our_attrs.pop(message_digest)
    their_attrs.pop(message_digest)
    assert our_attrs == their_attrs
    assert "1.2.840.113549.1.9.5" not in their_attrs  # PAdES: no signingTime attribute

    our_unsigned = our_info["unsigned_attrs"]
    their_unsigned = their_info["unsigned_attrs"]
    if level == "B-B":
        assert our_unsigned.native is None
        assert their_unsigned.native is None
    else:
        assert [a["type"].dotted for a in our_unsigned] == [
            a["type"].dotted for a in their_unsigned
        ]

    for name in ("version", "sid", "digest_algorithm", "signature_algorithm"):
        assert our_info[name].dump() == their_info[name].dump(), name
    for name in ("version", "digest_algorithms", "encap_content_info", "certificates"):
        assert ours.signed_data[name].dump() == theirs.signed_data[name].dump(), name


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.RSA_2048, KeyAlgorithm.EC_P256])
def test_signature_verifies_with_the_handles_public_key(
    pki: TestPKI, algorithm: KeyAlgorithm
) -> None:
    handle, cert = pki.make_seal(algorithm)
    signature = _signature(_seal(KeySigner.for_handle(handle, cert, pki.chain)))
    info = signature.signer_info
    signed_attrs = info["signed_attrs"]
    # The signature covers the attributes encoded as a SET OF, not as the [0] they travel in.
    data = b"\x31" + signed_attrs.dump()[1:]
    assert data == signed_attrs.untag().dump(force=True)
    key = handle.public_key()
    raw = info["signature"].native
    digest = HASHES["sha256"]
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(raw, data, padding.PKCS1v15(), digest)
    else:
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(raw, data, ec.ECDSA(digest))
    message_digest = _attributes(signed_attrs)["1.2.840.113549.1.9.4"]
    assert message_digest[4:] == signature.compute_digest()


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("bytes_reserved", [RESERVED, None])
def test_one_private_key_operation_per_seal(
    pki: TestPKI, level: str, bytes_reserved: int | None
) -> None:
    inner, cert = pki.make_seal(KeyAlgorithm.RSA_2048)
    handle = CountingHandle(inner)
    signer = KeySigner.for_handle(handle, cert, pki.chain)
    for documents in range(1, 4):
        _seal(signer, timestamper=_level_timestamper(pki, level), bytes_reserved=bytes_reserved)
        assert handle.signatures == documents


def test_a_signers_names_are_filled_before_threads_share_it(pki: TestPKI) -> None:
    # asn1crypto fills a name's ``native`` dictionary lazily, in place: a sealing thread that
    # read it while another filled it saw it part empty (KeyError in pyHanko's subject_name).
    handle, cert = pki.make_seal(KeyAlgorithm.EC_P256)
    signer = KeySigner.for_handle(handle, cert, pki.chain)
    assert signer.signing_cert is not None
    known = [*signer.cert_registry, signer.signing_cert]
    names = [c.subject for c in known] + [c.issuer for c in known]
    assert all(name._native is not None for name in names)
    assert signer.subject_name


def test_signed_attributes_are_in_der_order(pki: TestPKI) -> None:
    handle, cert = pki.make_seal(KeyAlgorithm.EC_P256)
    info = _signature(_seal(KeySigner.for_handle(handle, cert, pki.chain))).signer_info
    encodings = [a.dump() for a in info["signed_attrs"]]
    assert encodings == sorted(encodings)


def test_dry_run_is_as_large_as_a_real_signature(pki: TestPKI) -> None:
    handle, cert = pki.make_seal(KeyAlgorithm.RSA_2048)
    signer = KeySigner.for_handle(handle, cert, pki.chain)
    digest = hashlib.sha256(b"document").digest()

    async def sign(dry_run: bool) -> int:
        cms = await signer.async_sign(digest, "sha256", dry_run=dry_run, use_pades=True)
        return len(cms.dump())

    assert asyncio.run(sign(True)) == asyncio.run(sign(False))


def test_non_pades_subfilter_is_left_to_pyhanko(pki: TestPKI) -> None:
    handle, cert = pki.make_seal(KeyAlgorithm.EC_P256)
    sealed = _seal(
        KeySigner.for_handle(handle, cert, pki.chain),
        subfilter=SigSeedSubFilter.ADOBE_PKCS7_DETACHED,
    )
    attrs = _attributes(_signature(sealed).signer_info["signed_attrs"])
    # pyHanko's generic PDF path adds CMSAlgorithmProtection, which PAdES signatures lack.
    assert "1.2.840.113549.1.9.52" in attrs
    _assert_valid(pki, sealed, timestamp=False)


def test_cades_signed_attributes_are_left_to_pyhanko(pki: TestPKI) -> None:
    handle, cert = pki.make_seal(KeyAlgorithm.EC_P256)
    metadata = signers.PdfSignatureMetadata(
        field_name="Seal",
        subfilter=SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        cades_signed_attr_spec=CAdESSignedAttrSpec(
            commitment_type=GenericCommitment.PROOF_OF_ORIGIN.asn1
        ),
    )
    sealed = signers.PdfSigner(
        metadata, signer=KeySigner.for_handle(handle, cert, pki.chain)
    ).sign_pdf(IncrementalPdfFileWriter(io.BytesIO(_one_page_pdf())), output=io.BytesIO())
    data = bytes(sealed.getvalue())
    attrs = _attributes(_signature(data).signer_info["signed_attrs"])
    assert "1.2.840.113549.1.9.16.2.16" in attrs  # commitment-type-indication
    _assert_valid(pki, data, timestamp=False)


def test_roots_are_left_out_when_asked(pki: TestPKI) -> None:
    handle, cert = pki.make_seal(KeyAlgorithm.EC_P256)
    signer = KeySigner(
        handle=handle,
        certificate=to_asn1(cert),
        chain=[to_asn1(c) for c in pki.chain],
        embed_roots=False,
    )
    signature = _signature(_seal(signer))
    embedded = {c.chosen.dump() for c in signature.signed_data["certificates"]}
    assert embedded == {to_asn1(cert).dump(), to_asn1(pki.issuing.certificate).dump()}
    _assert_valid(pki, _seal(signer), timestamp=False)


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
    counting = CountingHandle(handle)
    sealed = _seal(KeySigner.for_handle(counting, cert, pki.chain), timestamper=pki.timestamper())
    _assert_valid(pki, sealed, timestamp=True)
    assert counting.signatures == 1


@pytest.mark.parametrize("level", LEVELS)
def test_plain_pades_bypasses_pyhankos_cms_assembly(
    pki: TestPKI, level: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("pyHanko's CMS assembly was used")

    monkeypatch.setattr(signers.Signer, "signed_attrs", refuse)
    monkeypatch.setattr(signers.Signer, "async_sign_prescribed_attributes", refuse)
    handle, cert = pki.make_seal(KeyAlgorithm.RSA_2048)
    sealed = _seal(
        KeySigner.for_handle(handle, cert, pki.chain), timestamper=_level_timestamper(pki, level)
    )
    _assert_valid(pki, sealed, timestamp=level == "B-T")


SEAL_ALGORITHMS = [KeyAlgorithm.RSA_2048, KeyAlgorithm.RSA_3072, KeyAlgorithm.EC_P256]


@pytest.mark.parametrize("algorithm", SEAL_ALGORITHMS, ids=lambda a: a.value)
@pytest.mark.parametrize(
    "subfilter", [SigSeedSubFilter.PADES, SigSeedSubFilter.ADOBE_PKCS7_DETACHED], ids=str
)
def test_the_cms_names_the_signers_suite_on_both_paths(
    pki: TestPKI, algorithm: KeyAlgorithm, subfilter: SigSeedSubFilter
) -> None:
    handle, cert = pki.make_seal(algorithm)
    signer = KeySigner.for_handle(handle, cert, pki.chain)
    suite = suite_for(algorithm)
    assert signer.suite is suite
    signature = _signature(_seal(signer, subfilter=subfilter))
    info = signature.signer_info
    assert info["digest_algorithm"]["algorithm"].dotted == suite.digest_oid
    assert info["signature_algorithm"]["algorithm"].dotted == suite.signature_oid
    assert [a["algorithm"].dotted for a in signature.signed_data["digest_algorithms"]] == [
        suite.digest_oid
    ]


def test_a_suite_that_does_not_fit_the_key_is_refused(pki: TestPKI) -> None:
    handle, cert = pki.make_seal(KeyAlgorithm.EC_P256)
    with pytest.raises(KeyStoreError, match="rsa-2048 suite cannot sign with a ecdsa-p256 key"):
        KeySigner.for_handle(handle, cert, pki.chain, suite=suite_for(KeyAlgorithm.RSA_2048))


def test_a_digest_other_than_the_suites_is_refused(pki: TestPKI) -> None:
    handle, cert = pki.make_seal(KeyAlgorithm.EC_P256)
    signer = KeySigner.for_handle(handle, cert, pki.chain)
    digest = hashlib.sha384(b"document").digest()
    with pytest.raises(SigningError, match="whose digest is sha256, not sha384"):
        asyncio.run(signer.async_sign(digest, "sha384", use_pades=True))
