"""The seal signer: a pyHanko ``Signer`` backed by a key handle of this package.

pyHanko's ``SimpleSigner`` re-parses its private key on every signature, and pyHanko signs
once more in a dry run to size the signature placeholder. This signer keeps the handle
(parsed once) and answers the dry run with placeholder bytes of the right size, so a seal
costs exactly one private-key operation.

Most of the remaining cost of a seal is asn1crypto building the CMS SignedData: copying and
re-encoding the issuer name into the signing-certificate-v2 attribute, the SignerInfo and the
certificate set, for every document. For a plain PAdES signature all of that is the same from
one document to the next, so :class:`KeySigner` encodes those pieces once per signer and
assembles each SignedData from DER bytes; only the message digest, the signature and (for
B-T) the signature timestamp change. The algorithm identifiers in those pieces come from the
signer's :class:`~keys.suites.AlgorithmSuite`, never from a constant, so the same assembly
serves every algorithm family, SM2 included. The result has exactly the structure
pyHanko's own path produces: signed attributes content-type, message-digest and
signing-certificate-v2 (PAdES puts the signing time in the signature dictionary's ``/M``, not
in a signingTime attribute), and the signature timestamp token as the only unsigned
attribute. Anything else (CAdES attributes, Adobe-style revocation info, attribute
providers, attribute certificates, non-PAdES subfilters) goes through pyHanko unchanged.

An SM2 seal (:class:`~keys.sm2.SM2KeyHandle`) signs through the same class: its suite names
SM3 (1.2.156.10197.1.401) as the digest of the document and of the signed attributes and
SM2-with-SM3 (1.2.156.10197.1.501) as the signature algorithm, in the RFC 5652 containers
(id-signedData, id-data), and its handle signs DER(signed attributes) with SM2 and the default
user id, giving DER ``(r, s)``. pyHanko needs no table of its own for SM3: it digests the
document by name through ``getattr(cryptography.hazmat.primitives.hashes, name.upper())``,
which finds cryptography's ``hashes.SM3``, and takes every CMS name from asn1crypto, where
:mod:`keys.oids` registers ``sm3`` and ``sm2_sm3`` (the one place the national algorithms
are named). asn1crypto's ``SignedDigestAlgorithm`` does not know which mechanism and digest
``sm2_sm3`` stands for; the suite's identifier answers ``sm2`` and ``sm3`` for it
(:mod:`keys.suites`), so pyHanko knows that the mechanism fixes SM3.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.sign.attributes import TSTProvider
from pyhanko.sign.general import SigningError, as_signing_certificate_v2
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes, Signer
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore

from keys.errors import KeyStoreError
from keys.handles import KeyHandle
from keys.sm2 import SM2KeyHandle
from keys.suites import AlgorithmSuite, suite_for

SealKeyHandle = KeyHandle | SM2KeyHandle
"""A key a seal signs with: one of cryptography's algorithms, or SM2 (tongsuopy's)."""


def to_asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    """Convert a cryptography certificate to asn1crypto's form (used by pyHanko)."""
    return asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))


# DER tags used when assembling the SignedData.
_SEQUENCE = 0x30
_SET = 0x31
_OCTET_STRING = 0x04
_CONTEXT_0 = 0xA0  # [0]: explicit content of ContentInfo; implicit certificates, signedAttrs.
_CONTEXT_1 = 0xA1  # [1] IMPLICIT: unsignedAttrs.
_VERSION_1 = b"\x02\x01\x01"  # INTEGER 1: CMSVersion v1 (content type data, issuerAndSerial).
# Object identifiers, encoded with their tag and length.
_OID_CONTENT_TYPE = bytes.fromhex("06092a864886f70d010903")
_OID_MESSAGE_DIGEST = bytes.fromhex("06092a864886f70d010904")
_OID_DATA = bytes.fromhex("06092a864886f70d010701")
_OID_SIGNED_DATA = bytes.fromhex("06092a864886f70d010702")
_OID_SIGNATURE_TIMESTAMP = bytes.fromhex("060b2a864886f70d010910020e")


def _tlv(tag: int, content: bytes) -> bytes:
    """One DER element: a single-byte tag, a definite length and ``content``."""
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


def _attribute(kind: str, value: Any) -> bytes:
    """A CMS attribute with one value, DER-encoded (as pyHanko's ``simple_cms_attribute``)."""
    return bytes(cms.CMSAttribute({"type": cms.CMSAttributeType(kind), "values": (value,)}).dump())


@dataclass(frozen=True)
class _SuiteTemplate:
    """The DER pieces of a PAdES SignedData that are the same for every document."""

    content_type_attr: bytes
    """The content-type attribute (id-data)."""
    signing_certificate_attr: bytes
    """The signing-certificate-v2 attribute naming the signer's certificate."""
    digest_algorithm: bytes
    """The suite's DigestAlgorithmIdentifier."""
    signature_algorithm: bytes
    """The suite's SignatureAlgorithmIdentifier."""


class KeySigner(Signer):
    """Signs CMS signatures for pyHanko with a key handle of this package (:data:`SealKeyHandle`).

    Construct with :meth:`for_handle`. The signer signs with one algorithm suite, by default
    the suite of its key's algorithm; it tells pyHanko the suite's signature mechanism, so
    pyHanko's own path writes the same algorithm identifiers as the fast one. A plain PAdES
    signature is assembled from DER pieces encoded once per signer (see the module's
    docstring); the certificates it embeds are those given at construction, so later
    additions to :attr:`cert_registry` are not seen by that path.
    """

    def __init__(
        self,
        *,
        handle: SealKeyHandle,
        certificate: asn1_x509.Certificate,
        chain: Iterable[asn1_x509.Certificate] = (),
        embed_roots: bool = True,
        suite: AlgorithmSuite | None = None,
    ) -> None:
        if suite is None:
            suite = suite_for(handle.algorithm)
        elif suite.key_algorithm != handle.algorithm:
            # A seal row whose algorithm is not its key's would sign with one algorithm and
            # name another in the CMS.
            raise KeyStoreError(
                f"The {suite.key_algorithm} suite cannot sign with a {handle.algorithm} key."
            )
        chain = list(chain)
        # asn1crypto fills a name's ``native`` dictionary lazily and in place, one attribute
        # after another: a thread that reads it while another fills it sees a part of it
        # (pyHanko's Signer.subject_name then raises KeyError: 'organization_name'). A
        # signer is shared by the threads of a process, so its names are filled here, before
        # any other thread can see them.
        for known in (certificate, *chain):
            _ = known.subject.native, known.issuer.native
        store = SimpleCertificateStore()  # type: ignore[no-untyped-call]  # untyped upstream
        store.register_multiple(chain)
        super().__init__(
            signing_cert=certificate,
            cert_registry=store,
            signature_mechanism=suite.signature_algorithm,
            embed_roots=embed_roots,
        )
        self._handle = handle
        self._certificate = certificate
        self._suite = suite
        # Filled on first use, so that building a signer stays cheap. Two threads racing on
        # the first use both encode the same bytes, so no lock is needed.
        self._template: _SuiteTemplate | None = None
        self._identity_der: tuple[bytes, bytes] | None = None

    @classmethod
    def for_handle(
        cls,
        handle: SealKeyHandle,
        certificate: x509.Certificate,
        chain: Iterable[x509.Certificate] = (),
        *,
        suite: AlgorithmSuite | None = None,
    ) -> KeySigner:
        """A signer for ``handle`` whose certificate is ``certificate`` issued under ``chain``.

        ``suite`` defaults to the suite of the handle's key algorithm; one that does not fit
        the key raises :class:`KeyStoreError`.
        """
        return cls(
            handle=handle,
            certificate=to_asn1(certificate),
            chain=[to_asn1(c) for c in chain],
            suite=suite,
        )

    @property
    def handle(self) -> SealKeyHandle:
        """The key handle this signer uses."""
        return self._handle

    @property
    def suite(self) -> AlgorithmSuite:
        """The algorithm suite this signer signs with."""
        return self._suite

    async def async_sign_raw(
        self, data: bytes, digest_algorithm: str, dry_run: bool = False
    ) -> bytes:
        """Sign ``data``; in a dry run return placeholder bytes of the largest signature size."""
        if dry_run:
            return bytes(self._handle.algorithm.max_signature_size)
        return self._handle.sign(data, digest_algorithm)

    async def async_sign(  # pyHanko's signature, positional arguments included
        self,
        data_digest: bytes,
        digest_algorithm: str,
        dry_run: bool = False,
        use_pades: bool = False,
        timestamper: TimeStamper | None = None,
        signed_attr_settings: PdfCMSSignedAttributes | None = None,
        is_pdf_sig: bool = True,
        encap_content_info: Any = None,
    ) -> Any:
        """Produce the detached CMS signature (an asn1crypto ``ContentInfo``) of a digest.

        A plain PAdES signature is assembled from DER pieces encoded once per signer;
        anything else is delegated to pyHanko's ``Signer.async_sign``. The parameters are
        pyHanko's; a ``digest_algorithm`` other than the suite's is refused.
        """
        if not self._is_plain_pades(
            use_pades=use_pades,
            signed_attr_settings=signed_attr_settings,
            is_pdf_sig=is_pdf_sig,
            encap_content_info=encap_content_info,
        ):
            return await super().async_sign(
                data_digest,
                digest_algorithm,
                dry_run=dry_run,
                use_pades=use_pades,
                timestamper=timestamper,
                signed_attr_settings=signed_attr_settings,
                is_pdf_sig=is_pdf_sig,
                encap_content_info=encap_content_info,
            )
        digest_algorithm = digest_algorithm.lower()
        template = self._suite_template(digest_algorithm)
        sid, certificates = self._identity()
        message_digest_attr = _tlv(
            _SEQUENCE,
            _OID_MESSAGE_DIGEST + _tlv(_SET, _tlv(_OCTET_STRING, data_digest)),
        )
        # DER orders the elements of a SET OF by their encodings; the signature is computed
        # over the attributes tagged as a SET OF, and they are embedded tagged [0] IMPLICIT.
        attrs = b"".join(
            sorted(
                (
                    template.content_type_attr,
                    message_digest_attr,
                    template.signing_certificate_attr,
                )
            )
        )
        signature = await self.async_sign_raw(_tlv(_SET, attrs), digest_algorithm, dry_run)
        unsigned_attrs = b""
        if timestamper is not None:
            # The same provider pyHanko's default unsigned attributes use: it hashes the
            # signature value and asks the timestamper (or its dummy response in a dry run).
            token = await TSTProvider(
                digest_algorithm=digest_algorithm, data_to_ts=signature, timestamper=timestamper
            ).build_attr_value(dry_run=dry_run)
            unsigned_attrs = _tlv(
                _CONTEXT_1,
                _tlv(_SEQUENCE, _OID_SIGNATURE_TIMESTAMP + _tlv(_SET, token.dump())),
            )
        signer_info = _tlv(
            _SEQUENCE,
            _VERSION_1
            + sid
            + template.digest_algorithm
            + _tlv(_CONTEXT_0, attrs)
            + template.signature_algorithm
            + _tlv(_OCTET_STRING, signature)
            + unsigned_attrs,
        )
        signed_data = _tlv(
            _SEQUENCE,
            _VERSION_1
            + _tlv(_SET, template.digest_algorithm)
            + _tlv(_SEQUENCE, _OID_DATA)
            + certificates
            + _tlv(_SET, signer_info),
        )
        return cms.ContentInfo.load(
            _tlv(_SEQUENCE, _OID_SIGNED_DATA + _tlv(_CONTEXT_0, signed_data))
        )

    def _is_plain_pades(
        self,
        *,
        use_pades: bool,
        signed_attr_settings: PdfCMSSignedAttributes | None,
        is_pdf_sig: bool,
        encap_content_info: Any,
    ) -> bool:
        """True when pyHanko would sign with exactly the attributes the fast path writes."""
        if not (use_pades and is_pdf_sig) or encap_content_info is not None:
            return False
        if self.signed_attr_prov_spec is not None or self.unsigned_attr_prov_spec is not None:
            return False
        if list(self.attribute_certs):
            return False
        # pyHanko ignores the signing time for PAdES (it goes into the signature's /M).
        return signed_attr_settings is None or (
            signed_attr_settings.cades_signed_attrs is None
            and signed_attr_settings.adobe_revinfo_attr is None
        )

    def _suite_template(self, digest_algorithm: str) -> _SuiteTemplate:
        """The suite's DER pieces, encoded on first use; refuses another digest."""
        if digest_algorithm != self._suite.digest:
            # The same refusal pyHanko makes when the mechanism fixes another digest.
            raise SigningError(
                f"The seal signs with the {self._suite.key_algorithm} suite, whose digest is "
                f"{self._suite.digest}, not {digest_algorithm}."
            )
        if self._template is None:
            self._template = _SuiteTemplate(
                content_type_attr=_attribute("content_type", "data"),
                # ESSCertIDv2 names the signer's certificate by its SHA-256 hash (RFC 5035's
                # default, as pyHanko writes it) whatever the suite: it identifies the
                # certificate and is not the seal's digest.
                signing_certificate_attr=_attribute(
                    "signing_certificate_v2", as_signing_certificate_v2(self._certificate)
                ),
                digest_algorithm=self._suite.digest_algorithm.dump(),
                signature_algorithm=self._suite.signature_algorithm.dump(),
            )
        return self._template

    def _identity(self) -> tuple[bytes, bytes]:
        """The SignerIdentifier and the [0] certificate set, encoded on first use."""
        if self._identity_der is None:
            cert = self._certificate
            sid = cms.IssuerAndSerialNumber(
                {"issuer": cert.issuer, "serial_number": cert.serial_number}
            ).dump()
            # As pyHanko does: the signer's certificate always, self-signed ones only when
            # roots are embedded; a set, so each certificate once, in DER order.
            embedded = {cert.dump()}
            embedded.update(
                c.dump() for c in self.cert_registry if self.embed_roots or c.self_signed == "no"
            )
            certificates = _tlv(_CONTEXT_0, b"".join(sorted(embedded)))
            self._identity_der = (sid, certificates)
        return self._identity_der
