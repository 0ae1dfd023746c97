"""The document security store is read as pyHanko reads it, and refused where pyHanko refuses
it."""

# pyHanko's generic PDF object constructors are untyped.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import io

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation.dss import DocumentSecurityStore

from signing.options import SealLevel
from tests.testpki import TestPKI
from tests.verify.forge import Sealed, seal
from verify import pdf as verify_pdf_module
from verify.errors import MalformedPDFError
from verify.pdf import verify_pdf
from verify.policy import VerificationPolicy
from verify.report import Verdict


@pytest.fixture(scope="module")
def licence_lta(pki: TestPKI) -> Sealed:
    """A seal at B-LTA: a DSS written twice over (the seal's, the document timestamp's)."""
    return seal(pki, level=SealLevel.B_LTA)


def _updated(pdf: bytes, change: object) -> bytes:
    """``pdf`` with one incremental update that sets the catalog's /DSS as ``change`` says."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    change(writer)  # type: ignore[operator]
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize("which", ["licence_lt", "licence_lta"])
def test_the_dss_reads_as_pyhankos_reader_reads_it(
    which: str, request: pytest.FixtureRequest
) -> None:
    sealed: Sealed = request.getfixturevalue(which)
    reader = PdfFileReader(io.BytesIO(sealed.pdf))
    theirs = DocumentSecurityStore.read_dss(reader)
    read = verify_pdf_module._read_dss(reader)
    assert read is not None
    certs, ocsps, crls = read
    assert sorted(c.dump() for c in certs) == sorted(
        ref.get_object().data for ref in theirs.certs.values()
    )
    assert [o.dump() for o in ocsps] == [ref.get_object().data for ref in theirs.ocsps]
    assert [c.dump() for c in crls] == [ref.get_object().data for ref in theirs.crls]
    assert certs
    assert crls


def test_a_file_without_dss_reads_as_none(approval_bb: Sealed) -> None:
    reader = PdfFileReader(io.BytesIO(approval_bb.pdf))
    assert verify_pdf_module._read_dss(reader) is None


def test_an_indirect_certificate_array_is_followed(licence_lt: Sealed) -> None:
    def indirect_certs(writer: IncrementalPdfFileWriter) -> None:
        dss = writer.root["/DSS"]
        dss["/Certs"] = writer.add_object(generic.ArrayObject(list(dss["/Certs"])))
        writer.update_container(dss)

    pdf = _updated(licence_lt.pdf, indirect_certs)
    read = verify_pdf_module._read_dss(PdfFileReader(io.BytesIO(pdf)))
    original = verify_pdf_module._read_dss(PdfFileReader(io.BytesIO(licence_lt.pdf)))
    assert read is not None
    assert original is not None
    assert [c.dump() for c in read[0]] == [c.dump() for c in original[0]]


def test_a_dss_that_is_no_dictionary_is_refused_as_malformed(
    licence_lt: Sealed, policy: VerificationPolicy
) -> None:
    def array_dss(writer: IncrementalPdfFileWriter) -> None:
        writer.root["/DSS"] = generic.ArrayObject([generic.NumberObject(1)])
        writer.update_root()

    with pytest.raises(MalformedPDFError, match="document security store cannot be read"):
        verify_pdf(_updated(licence_lt.pdf, array_dss), policy=policy)


def test_a_vri_that_is_no_dictionary_is_refused_as_malformed(
    licence_lt: Sealed, policy: VerificationPolicy
) -> None:
    def numeric_vri(writer: IncrementalPdfFileWriter) -> None:
        dss = writer.root["/DSS"]
        dss["/VRI"] = generic.NumberObject(7)
        writer.update_container(dss)

    with pytest.raises(MalformedPDFError, match="document security store cannot be read"):
        verify_pdf(_updated(licence_lt.pdf, numeric_vri), policy=policy)


def test_the_genuine_licence_is_still_valid(licence_lt: Sealed, policy: VerificationPolicy) -> None:
    assert verify_pdf(licence_lt.pdf, policy=policy).verdict is Verdict.VALID
