"""Seal a PDF: PAdES B-B to B-LTA, certification or approval, visible or invisible.

pyHanko does the PDF work. Three things are done here rather than through its defaults, for
speed and for honesty about what was made:

- the signature placeholder is sized from the certificates and the level
  (``bytes_reserved``), so pyHanko does not sign a dummy document first;
- B-LT embeds validation material the service already holds (its own chain, CRLs and OCSP
  responses), instead of validating the signer's path again and fetching what the
  certificates point at, in a revision that leaves the document's metadata alone; its PDF
  objects are serialised once per material and appended after the signed revision without
  parsing it again (``signing.dss``);
- the digest of the signed bytes the registry records is the one pyHanko computed for the
  seal's ``messageDigest``, taken from its signing steps (``_sign``) instead of hashing the
  document a second time (SM3, some five times slower than SHA-256 on this hardware, made
  that second pass a visible part of an SM2 seal's cost);
- every failure that would yield less than what was asked (no timestamp, no revocation
  data) raises; a seal is never silently made at a weaker level.

Before anything is written, the document is checked against what it already says: a
licence certified with no changes allowed takes no further seal, and an empty field reserved
for a department (its seed value's certificate constraint) takes only a seal of that
department; the caller may add its own check of the field (the registry's binding). Those
checks, and the fields a seal adds, are in ``signing.preparation``.
"""

from __future__ import annotations

import asyncio
import io
import secrets
import threading
import weakref
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils import misc
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError as PyHankoSigningError
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.sign.validation.dss import DocumentSecurityStore

from keys.signer import KeySigner
from keys.suites import AlgorithmSuite
from signing.appearance import SealAppearance, seal_stamp_style
from signing.dss import append_validation_revision
from signing.errors import BrokenPDFError, SealUnusableError, SigningError, TimestampError
from signing.material import ValidationMaterial
from signing.options import Certification, SealLevel, SealOptions
from signing.preparation import (
    certification_digest,
    check_header,
    check_not_locked,
    open_document,
    prepare_fields,
)

#: Marker of the sealing format, recorded with every seal the service makes.
SEAL_FORMAT = "econtract-seal/1"

# Size of everything in a PAdES CMS besides the certificates, the signature value and the
# timestamp token (attributes, algorithm identifiers, DER overhead), with room to spare.
_CMS_OVERHEAD = 2048
# A timestamp token of our TSA (or a typical external one) with its certificates.
_TIMESTAMP_TOKEN = 6144

_T = TypeVar("_T")
_MDP = {
    Certification.NO_CHANGES: fields.MDPPerm.NO_CHANGES,
    Certification.FORM_FILLING: fields.MDPPerm.FILL_FORMS,
}


@dataclass(frozen=True, kw_only=True)
class SealIdentity:
    """The seal that signs: its signer, certificate, chain and look."""

    signer: KeySigner
    """Signs with the seal's key (held in ``keys``), in the seal's algorithm suite."""
    certificate: x509.Certificate
    """The seal's certificate."""
    chain: tuple[x509.Certificate, ...]
    """The issuing CA up to the root."""
    appearance: SealAppearance | None = None
    """How the seal looks on the page; needed for a visible or cross-page seal."""

    @property
    def suite(self) -> AlgorithmSuite:
        """The seal's algorithm suite: its digest and signature mechanism."""
        return self.signer.suite


@dataclass(frozen=True, kw_only=True)
class SealResult:
    """What sealing produced."""

    field_name: str
    """The signature field that holds the seal."""
    level: SealLevel
    """The PAdES level reached (always the level asked for)."""
    signed_digest: str
    """Digest (hex) of the bytes the seal covers, made with the seal suite's digest: the
    seal's ``messageDigest``."""
    signed_at: datetime
    """The signing time written in the signature dictionary."""
    format: str = SEAL_FORMAT
    """The sealing format's version marker."""


@dataclass(frozen=True, kw_only=True)
class FieldToFill:
    """An empty seal field of the document that the seal is about to fill."""

    name: str
    """The field's name."""
    certification_digest: str | None
    """Digest (hex) of the bytes the document's certifying seal covers, made with the digest
    its CMS names, which is how the registry knows that seal; ``None`` when the document is
    not certified."""


#: A check of the field to fill, run before anything is written; it raises to refuse.
FieldCheck = Callable[[FieldToFill], None]


@dataclass(frozen=True, kw_only=True)
class SealingContext:
    """What the engine needs besides the document and the seal."""

    timestamper: TimeStamper | None = None
    """The RFC 3161 client for B-T and above (in-process or over HTTP)."""
    material: ValidationMaterial | None = None
    """Validation data to embed for B-LT and above."""


def seal_pdf(
    source: BinaryIO,
    output: BinaryIO,
    *,
    identity: SealIdentity,
    options: SealOptions,
    context: SealingContext,
    now: datetime | None = None,
    check_field: FieldCheck | None = None,
) -> SealResult:
    """Seal the PDF read from ``source`` into ``output`` (opened ``w+b``; it is read back).

    Streams let a large file be sealed without holding it in memory. Raises a
    :class:`SigningError` subclass, with nothing useful written, when the input, the seal
    or the options are unusable. ``check_field`` is called before anything is written when
    the seal fills an empty field the document already has.
    """
    now = now or datetime.now(UTC)
    _check_identity(identity, now)
    _check_context(options, context)
    check_header(source)
    writer = open_document(
        source, _MetadataKeepingWriter if options.keep_metadata else IncrementalPdfFileWriter
    )
    check_not_locked(writer)
    field_name = options.field_name or f"Seal-{secrets.token_hex(4)}"
    new_field = prepare_fields(
        writer,
        options,
        field_name,
        certificate=identity.certificate,
        appearance=identity.appearance,
    )
    if new_field is None and check_field is not None:
        check_field(
            FieldToFill(name=field_name, certification_digest=certification_digest(source, writer))
        )
    metadata = signers.PdfSignatureMetadata(
        field_name=field_name,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm=identity.suite.digest,
        certify=options.certification in _MDP,
        docmdp_permissions=_MDP.get(options.certification, fields.MDPPerm.FILL_FORMS),
        reason=options.reason,
        location=options.location,
    )
    style = seal_stamp_style(identity.appearance) if identity.appearance else None
    pdf_signer = signers.PdfSigner(
        metadata,
        signer=identity.signer,
        timestamper=context.timestamper if options.level.timestamped else None,
        stamp_style=style,
        new_field_spec=new_field,
    )
    with _translated_errors():
        signed_digest = _run(
            _sign(
                pdf_signer,
                writer,
                output=output,
                bytes_reserved=_reserve(identity, timestamped=options.level.timestamped),
                existing_fields_only=new_field is None and options.field_name is not None,
            )
        )
        if options.level.long_term:
            assert context.material is not None
            if not append_validation_revision(output, writer, context.material.prepared_dss):
                _embed_material(output, context.material)
        if options.level is SealLevel.B_LTA:
            assert context.timestamper is not None
            _add_document_timestamp(output, context.timestamper, identity.suite)
    return SealResult(
        field_name=field_name,
        level=options.level,
        signed_digest=signed_digest.hex(),
        signed_at=now,
    )


def seal_pdf_bytes(
    pdf: bytes,
    *,
    identity: SealIdentity,
    options: SealOptions,
    context: SealingContext,
    now: datetime | None = None,
    check_field: FieldCheck | None = None,
) -> tuple[bytes, SealResult]:
    """Seal a PDF held in memory; return the sealed bytes and the result."""
    output = io.BytesIO()
    result = seal_pdf(
        io.BytesIO(pdf),
        output,
        identity=identity,
        options=options,
        context=context,
        now=now,
        check_field=check_field,
    )
    return output.getvalue(), result


# --- checks before anything is written ----------------------------------------------------


def _check_identity(identity: SealIdentity, now: datetime) -> None:
    cert = identity.certificate
    if now < cert.not_valid_before_utc:
        raise SealUnusableError(
            f"The seal's certificate is not valid before {cert.not_valid_before_utc.isoformat()}."
        )
    if now > cert.not_valid_after_utc:
        raise SealUnusableError(
            f"The seal's certificate expired on {cert.not_valid_after_utc.isoformat()}."
        )


def _check_context(options: SealOptions, context: SealingContext) -> None:
    if options.level.timestamped and context.timestamper is None:
        raise TimestampError(f"PAdES {options.level} needs a timestamp authority; none is set.")
    if options.level.long_term and context.material is None:
        raise SigningError(f"PAdES {options.level} needs validation material; none was given.")


def _reserve(identity: SealIdentity, *, timestamped: bool) -> int:
    """Hex digits to reserve for the CMS: twice its largest size in bytes."""
    certs = sum(len(c.public_bytes(Encoding.DER)) for c in (identity.certificate, *identity.chain))
    size = certs + identity.signer.handle.algorithm.max_signature_size + _CMS_OVERHEAD
    if timestamped:
        size += _TIMESTAMP_TOKEN
    return 2 * size


# --- the signature -------------------------------------------------------------------------


async def _sign(
    pdf_signer: signers.PdfSigner,
    writer: IncrementalPdfFileWriter,
    *,
    output: BinaryIO,
    bytes_reserved: int,
    existing_fields_only: bool,
) -> bytes:
    """Sign as ``PdfSigner.sign_pdf`` does, and return the digest of the signed bytes.

    These are the steps of pyHanko's ``async_sign_pdf``, through its public API for
    interrupted signing, so that the document digest it computes for the ``messageDigest``
    is kept: the registry records that digest, which a second pass over the file would
    only recompute. The seal's metadata has no validation context, so there are no network
    resources for pyHanko's wrapper to release afterwards; nothing else differs.
    """
    session = pdf_signer.init_signing_session(writer, existing_fields_only=existing_fields_only)
    validation_info = await session.perform_presign_validation(writer)
    tbs_document = session.prepare_tbs_document(
        validation_info=validation_info, bytes_reserved=bytes_reserved
    )
    prepared, written = tbs_document.digest_tbs_document(output=output)
    signed = await tbs_document.perform_signature(
        document_digest=prepared.document_digest,
        pdf_cms_signed_attrs=PdfCMSSignedAttributes(
            signing_time=session.system_time,
            adobe_revinfo_attr=(
                None if validation_info is None else validation_info.adobe_revinfo_attr
            ),
            cades_signed_attrs=pdf_signer.signature_meta.cades_signed_attr_spec,
        ),
    )
    await signed.post_signature_processing(written)
    # pyHanko writes to a buffer of its own when ``output`` cannot be read back; as its
    # ``sign_pdf`` does, copy that buffer into ``output`` then.
    misc.finalise_output(output, written)  # type: ignore[no-untyped-call]  # untyped upstream
    return prepared.document_digest


class _ThreadLoop:
    """A thread's event loop for pyHanko's asynchronous API, closed when the thread ends."""

    def __init__(self) -> None:
        self.runner = asyncio.Runner()
        # The thread-local value goes when its thread ends, and its loop with it.
        weakref.finalize(self, self.runner.close)


_thread_loops = threading.local()


def _run(coroutine: Coroutine[object, object, _T]) -> _T:
    """Run ``coroutine`` to its end on the calling thread's own event loop.

    ``asyncio.run`` would make and close a loop (with its executor and self-pipe) for every
    seal, five times the cost of running on a loop kept for the thread.
    """
    loop: _ThreadLoop | None = getattr(_thread_loops, "loop", None)
    if loop is None:
        loop = _thread_loops.loop = _ThreadLoop()
    return loop.runner.run(coroutine)


# --- after the signature ------------------------------------------------------------------


class _MetadataKeepingWriter(IncrementalPdfFileWriter):
    """An incremental writer that leaves the document's metadata alone.

    pyHanko's writer refreshes the document's metadata (the info dictionary's and the XMP
    packet's modification date, the producer) with every revision it writes; parsing and
    rewriting the XMP packet cost more than the whole DSS. Two revisions are written without
    it: the one that only adds the DSS (it changes no content, and the signed revision just
    before it already carries the modification date), and the signed revision of a document
    made for the seal (``SealOptions.keep_metadata``). The method overridden is pyHanko's own
    hook for that refresh; the sealing tests read the revisions back, so a change upstream
    shows there.
    """

    def _update_meta(self) -> None:
        return


def _embed_material(output: BinaryIO, material: ValidationMaterial) -> None:
    """Merge the material into the DSS the document already has, through pyHanko; nothing is
    written when the DSS holds all of it already."""
    output.seek(0)
    writer = _MetadataKeepingWriter(output, strict=True)
    dss = DocumentSecurityStore.supply_dss_in_writer(
        writer,
        None,
        certs=list(material.certificates),
        ocsps=list(material.ocsp_responses),
        crls=list(material.crls),
    )
    if not dss.modified:
        # Everything is in the DSS already (an earlier seal of the same issuer, the same CRLs
        # and OCSP response): a revision would add nothing but an empty cross-reference
        # section whose trailer counts an object never written.
        return
    writer.write_in_place()  # type: ignore[no-untyped-call]  # untyped upstream


def _add_document_timestamp(
    output: BinaryIO, timestamper: TimeStamper, suite: AlgorithmSuite
) -> None:
    # The document timestamp's imprint uses the seal's digest: one digest per document.
    output.seek(0)
    writer = IncrementalPdfFileWriter(output, strict=True)
    signers.PdfTimeStamper(
        timestamper, field_name=f"DocTimeStamp-{secrets.token_hex(4)}"
    ).timestamp_pdf(
        writer,
        suite.digest,
        bytes_reserved=2 * (_TIMESTAMP_TOKEN + _CMS_OVERHEAD),
        in_place=True,
    )


@contextmanager
def _translated_errors() -> Iterator[None]:
    """Turn pyHanko's and the network's exceptions into this package's typed errors."""
    try:
        yield
    except SigningError:
        raise
    except TimestampRequestError as exc:
        raise TimestampError(f"The timestamp authority failed: {exc}.") from None
    except PyHankoSigningError as exc:
        message = str(exc)
        if "forbids" in message or "DocMDP" in message or "certif" in message.lower():
            raise SealUnusableError(
                f"The document's certification does not allow another seal: {message}."
            ) from None
        raise SigningError(f"Sealing failed: {message}.") from None
    except PdfError as exc:
        raise BrokenPDFError(f"The PDF cannot be sealed: {exc}.") from None
    except OSError as exc:
        # requests' and aiohttp's connection errors derive from OSError.
        raise TimestampError(f"The timestamp authority is unreachable: {exc}.") from None
