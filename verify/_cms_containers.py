"""The CMS containers a PDF signature may come in: RFC 5652's and GM/T 0010's.

Some Chinese signers put an SM2 signature in the cryptographic message syntax of GM/T 0010-2012
(GB/T 35275-2017) instead of RFC 5652's. The structures are the same (PKCS #7 v1.5's
SignedData, which RFC 5652 kept); only the content types are named under the OSCCA's arc
instead of PKCS #7's ``1.2.840.113549.1.7``::

    1.2.156.10197.6.1.4.2.1   data
    1.2.156.10197.6.1.4.2.2   signedData
    1.2.156.10197.6.1.4.2.3   envelopedData
    1.2.156.10197.6.1.4.2.4   signedAndEnvelopedData
    1.2.156.10197.6.1.4.2.5   encryptedData
    1.2.156.10197.6.1.4.2.6   keyAgreementInfo

The verifier reads signedData and data under either name and checks them with the same code:

1. asn1crypto learns two names, ``gm_signed_data`` (its content parsed as a SignedData) and
   ``gm_data``, so that pyHanko reads the SignedData of either form;
2. :class:`ContainerReadingSignature` checks the two content types before anything else: the
   ContentInfo must hold signed data, its eContentType must be data (or a timestamp's TSTInfo,
   as pyHanko allows); any other type is refused with a message that names it;
3. pyHanko's own checks then run unchanged. Its check that the signed content-type attribute
   equals the eContentType compares these names, which differ between the two families: an
   attribute saying one while the eContentType says the other is refused as before. The
   ContentInfo's own type is signed by no one and proves nothing either way.

asn1crypto's names are class-level tables shared by the process (pyHanko registers its own
attributes the same way). The two names added here are new ones, so nothing that builds or
reads the RFC 5652 form sees a difference.
"""

from __future__ import annotations

from asn1crypto import cms
from pyhanko.pdf_utils.generic import DictionaryObject
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature

__all__ = [
    "GM_DATA",
    "GM_SIGNED_DATA",
    "ContainerError",
    "ContainerReadingSignature",
    "container_refusal",
]

_GM_ARC = "1.2.156.10197.6.1.4.2"
GM_DATA = f"{_GM_ARC}.1"
"""GM/T 0010 data: the content type of the signed bytes (RFC 5652's id-data)."""
GM_SIGNED_DATA = f"{_GM_ARC}.2"
"""GM/T 0010 signedData (RFC 5652's id-signedData)."""

_RFC_DATA = "1.2.840.113549.1.7.1"
_RFC_SIGNED_DATA = "1.2.840.113549.1.7.2"
_TST_INFO = "1.2.840.113549.1.9.16.1.4"
_SIGNED_DATA = frozenset({_RFC_SIGNED_DATA, GM_SIGNED_DATA})
# What a signature may sign: the document's bytes, or (a timestamp token) a TSTInfo.
_SIGNED_CONTENT = frozenset({_RFC_DATA, GM_DATA, _TST_INFO})
_GM_NAMES = {
    GM_DATA: "GM/T 0010 data",
    GM_SIGNED_DATA: "GM/T 0010 signedData",
    f"{_GM_ARC}.3": "GM/T 0010 envelopedData",
    f"{_GM_ARC}.4": "GM/T 0010 signedAndEnvelopedData",
    f"{_GM_ARC}.5": "GM/T 0010 encryptedData",
    f"{_GM_ARC}.6": "GM/T 0010 keyAgreementInfo",
}


class ContainerError(ValueError):
    """A signature's CMS is not signed data, or signs something other than data."""


def _register_gm_content_types() -> None:
    """Teach asn1crypto GM/T 0010's data and signedData (see the module); idempotent."""
    for dotted, name in ((GM_DATA, "gm_data"), (GM_SIGNED_DATA, "gm_signed_data")):
        if dotted not in cms.ContentType._map:
            cms.ContentType._map[dotted] = name
            # asn1crypto builds the reverse map once, on the class's first instance, and never
            # again: when that has happened, the name is added to it too.
            if cms.ContentType._reverse_map is not None:
                cms.ContentType._reverse_map[name] = dotted
    cms.ContentInfo._oid_specs.setdefault("gm_signed_data", cms.SignedData)
    # GM/T 0010's Data is an OCTET STRING, as PKCS #7's (a v1 SignedData's content is read as
    # a ContentInfo); a detached seal carries none.
    cms.ContentInfo._oid_specs.setdefault("gm_data", cms.OctetString)


_register_gm_content_types()


def _described(dotted: str) -> str:
    """An object identifier with its name when one is known."""
    name = _GM_NAMES.get(dotted) or cms.ContentType.map(dotted)
    return dotted if name == dotted else f"{dotted} ({name})"


def container_refusal(der: bytes | None) -> str | None:
    """Why the CMS ``der`` (from ``/Contents``, zero-padded) cannot hold a PDF signature, as a
    whole sentence; ``None`` when its content types are fine, or when it is too damaged to
    tell (pyHanko then reports the damage)."""
    if der is None:
        return None
    try:
        info = cms.ContentInfo.load(der, strict=False)
        outer = info["content_type"].dotted
        if outer not in _SIGNED_DATA:
            return (
                f"The signature's CMS content type is {_described(outer)}, not signed data "
                f"(RFC 5652 id-signedData {_RFC_SIGNED_DATA} or GM/T 0010 signedData "
                f"{GM_SIGNED_DATA})."
            )
        inner = info["content"]["encap_content_info"]["content_type"].dotted
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    if inner not in _SIGNED_CONTENT:
        return (
            f"The signature signs content of type {_described(inner)}, not data (RFC 5652 "
            f"id-data {_RFC_DATA} or GM/T 0010 data {GM_DATA}) nor a timestamp."
        )
    return None


class ContainerReadingSignature(EmbeddedPdfSignature):
    """pyHanko's embedded signature, read from an RFC 5652 or a GM/T 0010 container.

    Raises :class:`ContainerError` naming the content type when the CMS is not signed data
    over data (see the module); any other damage raises as pyHanko's reader does.
    """

    def __init__(self, reader: PdfFileReader, sig_field: DictionaryObject, fq_name: str) -> None:
        try:
            super().__init__(reader, sig_field, fq_name)
        except Exception:
            # An unknown content type breaks pyHanko's reading with a message about the
            # structure; say what the container is instead.
            refusal = container_refusal(getattr(self, "pkcs7_content", None))
            if refusal is not None:
                raise ContainerError(refusal) from None
            raise
        refusal = container_refusal(self.pkcs7_content)
        if refusal is not None:
            raise ContainerError(refusal)
        if self.signed_data["encap_content_info"]["content_type"].dotted == GM_DATA:
            # pyHanko digests the signed bytes with the SignerInfo's digest for id-data and
            # names no digest for any other type; GM/T 0010 data is the same content.
            self.external_md_algorithm = self.md_algorithm
