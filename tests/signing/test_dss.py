"""The B-LT validation revision: the DSS streams prepared once per material, appended after the
signed revision without parsing it again, and what pyHanko would have written."""

from __future__ import annotations

import dataclasses
import datetime
import io
import subprocess
from pathlib import Path

import pytest
from asn1crypto import crl as asn1_crl
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils.decode_limits import DecodePurpose
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation.dss import DocumentSecurityStore, enumerate_ocsp_certs

from keys.crl import RevokedEntry, build_crl
from signing.material import ValidationMaterial
from signing.options import SealLevel, SealOptions
from signing.sealer import SealingContext, seal_pdf_bytes
from tests.signing.sealing import context, identity, make_pdf, pdfsig, qpdf_check, validate_all
from tests.testpki import TestPKI, build_test_pki


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return build_test_pki()


def _object_streams_pdf(tmp_path: Path) -> bytes:
    """A test document rewritten by qpdf with cross-reference and object streams."""
    plain = tmp_path / "plain.pdf"
    packed = tmp_path / "packed.pdf"
    plain.write_bytes(make_pdf())
    subprocess.run(
        ["qpdf", "--object-streams=generate", str(plain), str(packed)], check=True, timeout=60
    )
    return packed.read_bytes()


def _dss_contents(pdf: bytes) -> dict[str, set[bytes]]:
    """The DER of every certificate, OCSP response and CRL in the document's DSS."""
    dss = DocumentSecurityStore.read_dss(PdfFileReader(io.BytesIO(pdf)))
    return {
        "certs": {
            ref.get_object().read_data(DecodePurpose.CERTIFICATE) for ref in dss.certs.values()
        },
        "ocsps": {ref.get_object().read_data(DecodePurpose.OCSP_RESPONSE) for ref in dss.ocsps},
        "crls": {ref.get_object().read_data(DecodePurpose.CRL) for ref in dss.crls},
    }


def _material_contents(material: ValidationMaterial) -> dict[str, set[bytes]]:
    carried = {
        c.dump()
        for r in material.ocsp_responses
        for c in enumerate_ocsp_certs(r)  # type: ignore[no-untyped-call]  # untyped upstream
    }
    return {
        "certs": {c.dump() for c in material.certificates} | carried,
        "ocsps": {r.dump() for r in material.ocsp_responses},
        "crls": {c.dump() for c in material.crls},
    }


def test_the_dss_holds_exactly_the_material(pki: TestPKI) -> None:
    seal = identity(pki)
    ctx = context(pki, seal)
    assert ctx.material is not None
    sealed, _ = seal_pdf_bytes(
        make_pdf(), identity=seal, options=SealOptions(level=SealLevel.B_LT), context=ctx
    )
    assert _dss_contents(sealed) == _material_contents(ctx.material)


def test_the_dss_revision_holds_what_pyhanko_writes(pki: TestPKI) -> None:
    seal = identity(pki)
    ctx = context(pki, seal)
    material = ctx.material
    assert material is not None
    signed, _ = seal_pdf_bytes(
        make_pdf(), identity=seal, options=SealOptions(level=SealLevel.B_T), context=ctx
    )
    by_pyhanko = io.BytesIO(signed)
    DocumentSecurityStore.add_dss(
        by_pyhanko,
        None,
        certs=list(material.certificates),
        ocsps=list(material.ocsp_responses),
        crls=list(material.crls),
    )
    ours, _ = seal_pdf_bytes(
        make_pdf(), identity=seal, options=SealOptions(level=SealLevel.B_LT), context=ctx
    )
    assert _dss_contents(ours) == _dss_contents(by_pyhanko.getvalue())
    ours_root = PdfFileReader(io.BytesIO(ours)).root
    theirs_root = PdfFileReader(io.BytesIO(by_pyhanko.getvalue())).root
    assert set(ours_root.keys()) == set(theirs_root.keys())


@pytest.mark.parametrize("xref_streams", [False, True], ids=["xref-table", "xref-stream"])
def test_the_dss_revision_reuses_no_object_number_and_validates(
    pki: TestPKI, tmp_path: Path, xref_streams: bool
) -> None:
    source = _object_streams_pdf(tmp_path) if xref_streams else make_pdf()
    seal = identity(pki)
    sealed, _ = seal_pdf_bytes(
        source,
        identity=seal,
        options=SealOptions(level=SealLevel.B_LT),
        context=context(pki, seal),
    )
    reader = PdfFileReader(io.BytesIO(sealed), strict=True)
    assert reader.has_xref_stream is xref_streams
    last = reader.xrefs.total_revisions - 1
    earlier = {
        ref.idnum for rev in range(last) for ref in reader.xrefs.explicit_refs_in_revision(rev)
    }
    added = {ref.idnum for ref in reader.xrefs.explicit_refs_in_revision(last)}
    # Only the catalog is written again; every other object of the revision is new.
    assert added & earlier == {reader.root_ref.idnum}
    assert min(added - earlier) > max(earlier)
    [checked] = validate_all(sealed, pki, offline_hard_fail=True)
    assert checked.status.bottom_line
    assert checked.status.modification_level == ModificationLevel.LTA_UPDATES
    path = tmp_path / "sealed.pdf"
    path.write_bytes(sealed)
    report = pdfsig(path, "-nocert")
    assert "Signature Validation: Signature is Valid." in report, report
    check = qpdf_check(path)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_prepared_streams_are_made_once_per_material(pki: TestPKI) -> None:
    seal = identity(pki)
    material = context(pki, seal).material
    assert material is not None
    prepared = material.prepared_dss
    assert material.prepared_dss is prepared
    # The test material names the OCSP responder's certificate, which the response carries
    # too: it is embedded once.
    assert len(prepared.certificates) == len(material.certificates)
    assert len(prepared.ocsp_responses) == 1
    assert len(prepared.crls) == 2


def _material_revoking(pki: TestPKI, base: ValidationMaterial, serial: int) -> ValidationMaterial:
    """``base`` with a newer CRL of the issuing CA that revokes ``serial``."""
    now = datetime.datetime.now(datetime.UTC)
    newer = build_crl(
        pki.issuing,
        revoked=[RevokedEntry(serial_number=serial, revoked_at=now)],
        crl_number=2,
        this_update=now,
        next_update=now + datetime.timedelta(days=1),
    ).public_bytes(Encoding.DER)
    root_crl = base.crls[0].dump()
    return dataclasses.replace(
        base, crls=(asn1_crl.CertificateList.load(root_crl), asn1_crl.CertificateList.load(newer))
    )


def test_new_material_reaches_the_next_seal(pki: TestPKI) -> None:
    seal = identity(pki)
    first = context(pki, seal)
    assert first.material is not None
    other = identity(pki)
    revoked_serial = other.certificate.serial_number
    options = SealOptions(level=SealLevel.B_LT)
    before, _ = seal_pdf_bytes(make_pdf(), identity=seal, options=options, context=first)
    first.material.prepared_dss  # noqa: B018  # prepared and kept, as the service keeps it
    renewed = SealingContext(
        timestamper=first.timestamper,
        material=_material_revoking(pki, first.material, revoked_serial),
    )
    after, _ = seal_pdf_bytes(make_pdf(), identity=seal, options=options, context=renewed)

    def revoked(pdf: bytes) -> set[int]:
        return {
            entry["user_certificate"].native
            for der in _dss_contents(pdf)["crls"]
            for entry in asn1_crl.CertificateList.load(der)["tbs_cert_list"]["revoked_certificates"]
        }

    assert revoked_serial not in revoked(before)
    assert revoked_serial in revoked(after)


def test_a_second_long_term_seal_adds_to_the_existing_dss(pki: TestPKI, tmp_path: Path) -> None:
    first_seal = identity(pki)
    first = context(pki, first_seal)
    assert first.material is not None
    once, _ = seal_pdf_bytes(
        make_pdf(), identity=first_seal, options=SealOptions(level=SealLevel.B_LT), context=first
    )
    second_seal = identity(pki)
    second = context(pki, second_seal)
    assert second.material is not None
    twice, _ = seal_pdf_bytes(
        once, identity=second_seal, options=SealOptions(level=SealLevel.B_LT), context=second
    )
    reader = PdfFileReader(io.BytesIO(twice))
    # One DSS, updated: the material of both seals (the second seal's OCSP response is its own).
    contents = _dss_contents(twice)
    for material in (first.material, second.material):
        for kind, ders in _material_contents(material).items():
            assert ders <= contents[kind], kind
    assert len(contents["ocsps"]) == 2
    assert "/DSS" in reader.root
    checked = validate_all(twice, pki, offline_hard_fail=True)
    assert len(checked) == 2
    assert all(c.status.bottom_line for c in checked)
    path = tmp_path / "twice.pdf"
    path.write_bytes(twice)
    check = qpdf_check(path)
    assert check.returncode == 0, check.stdout + check.stderr
