"""The sealing engine: every PAdES level validates with pyHanko, pdfsig and qpdf; bad input
gets a typed error and no output."""

from __future__ import annotations

import datetime
import hashlib
import http.server
import io
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.fields import SigCertConstraintFlags, SigSeedValueSpec, enumerate_sig_fields
from pyhanko.sign.validation import validate_pdf_timestamp
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko_certvalidator import ValidationContext

from keys.handles import KeyAlgorithm
from keys.signer import to_asn1
from keys.suites import suite_for
from signing.errors import (
    BrokenPDFError,
    DocumentCertifiedError,
    EncryptedPDFError,
    FieldReservedError,
    NotAPDFError,
    PlacementError,
    SealUnusableError,
    TimestampError,
)
from signing.options import (
    Certification,
    FieldHolder,
    Placement,
    ReservedField,
    SealLevel,
    SealOptions,
)
from signing.sealer import FieldToFill, SealIdentity, SealingContext, seal_pdf_bytes
from signing.timestamps import HTTPTimeStamper
from tests.signing.sealing import (
    context,
    identity,
    make_pdf,
    pdfsig,
    qpdf_check,
    validate_all,
)
from tests.testpki import TestPKI, build_test_pki

ALGORITHMS = [KeyAlgorithm.RSA_2048, KeyAlgorithm.EC_P256]
SEAL_ALGORITHMS = [KeyAlgorithm.RSA_2048, KeyAlgorithm.RSA_3072, KeyAlgorithm.EC_P256]


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return build_test_pki()


@pytest.mark.parametrize("algorithm", ALGORITHMS, ids=lambda a: a.value)
@pytest.mark.parametrize("level", list(SealLevel), ids=lambda lv: lv.value)
def test_every_level_validates(
    pki: TestPKI, level: SealLevel, algorithm: KeyAlgorithm, tmp_path: Path
) -> None:
    seal = identity(pki, algorithm)
    pdf, result = seal_pdf_bytes(
        make_pdf(), identity=seal, options=SealOptions(level=level), context=context(pki, seal)
    )
    assert result.level is level
    [checked] = validate_all(pdf, pki, offline_hard_fail=level.long_term)
    status = checked.status
    assert status.intact
    assert status.valid
    assert status.trusted
    assert status.bottom_line
    if level.long_term:
        # Validation data (and for B-LTA a document timestamp) follow the seal's revision.
        assert status.coverage.name == "ENTIRE_REVISION"
        assert status.modification_level == ModificationLevel.LTA_UPDATES
    else:
        assert status.coverage.name == "ENTIRE_FILE"
        assert status.modification_level == ModificationLevel.NONE
    if level.timestamped:
        assert status.timestamp_validity is not None
        assert status.timestamp_validity.intact
        assert status.timestamp_validity.valid
        assert status.timestamp_validity.trusted
    else:
        assert status.timestamp_validity is None
    reader = PdfFileReader(io.BytesIO(pdf))
    dss = DocumentSecurityStore.read_dss(reader) if level.long_term else None
    if dss is not None:
        assert len(list(dss.crls)) == 2
        assert len(list(dss.ocsps)) == 1
    doc_timestamps = reader.embedded_timestamp_signatures
    assert len(doc_timestamps) == (1 if level is SealLevel.B_LTA else 0)
    if doc_timestamps:
        root = to_asn1(pki.root.certificate)
        ts_status = validate_pdf_timestamp(
            doc_timestamps[0],
            validation_context=ValidationContext(trust_roots=[root], allow_fetching=False),
        )
        assert ts_status.intact
        assert ts_status.valid
        assert ts_status.trusted
    path = tmp_path / "sealed.pdf"
    path.write_bytes(pdf)
    report = pdfsig(path, "-nocert")
    assert report.count("Signature Validation: Signature is Valid.") >= 1, report
    assert "Signature is Invalid" not in report
    check = qpdf_check(path)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No syntax or stream encoding errors found" in check.stdout


def test_signed_digest_is_the_message_digest_of_the_signed_bytes(pki: TestPKI) -> None:
    seal = identity(pki)
    pdf, result = seal_pdf_bytes(
        make_pdf(),
        identity=seal,
        options=SealOptions(level=SealLevel.B_B),
        context=context(pki, seal),
    )
    sig = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0]
    assert sig.compute_digest().hex() == result.signed_digest
    start1, len1, start2, len2 = (int(v) for v in sig.sig_object["/ByteRange"])
    expected = hashlib.sha256(pdf[start1 : start1 + len1] + pdf[start2 : start2 + len2]).hexdigest()
    assert result.signed_digest == expected


def test_licence_certified_with_no_changes_refuses_a_second_seal(pki: TestPKI) -> None:
    seal = identity(pki)
    ctx = context(pki, seal)
    pdf, _ = seal_pdf_bytes(
        make_pdf(),
        identity=seal,
        options=SealOptions(
            level=SealLevel.B_B,
            certification=Certification.NO_CHANGES,
            placement=Placement(page=1, x=450, y=150),
        ),
        context=ctx,
    )
    [checked] = validate_all(pdf, pki, offline_hard_fail=False)
    assert checked.status.docmdp_ok
    assert checked.status.bottom_line
    other = identity(pki, department_name="台州市建设局", department_code=CODE_2)
    with pytest.raises(DocumentCertifiedError, match="certified: no further changes"):
        seal_pdf_bytes(pdf, identity=other, options=SealOptions(level=SealLevel.B_B), context=ctx)
    with pytest.raises(DocumentCertifiedError):
        seal_pdf_bytes(pdf, identity=seal, options=SealOptions(level=SealLevel.B_B), context=ctx)


CODE_2 = "9133100015J1YG617W"
CODE_3 = "9133040016D272HD32"


def certified_for_two_departments(pki: TestPKI, first: SealIdentity) -> bytes:
    """Department 1 certifies a document and reserves Dept2 and Dept3 for departments 2, 3."""
    options = SealOptions.from_text(
        level=SealLevel.B_T,
        certification=Certification.FORM_FILLING,
        field_name="Dept1",
        visible="1:100,150",
        reserve=[f"Dept2@1:280,150={CODE_2}", f"Dept3@1:460,150={CODE_3}"],
    )
    pdf, _ = seal_pdf_bytes(
        make_pdf(), identity=first, options=options, context=context(pki, first)
    )
    return pdf


def test_parallel_approval_keeps_every_seal_valid(pki: TestPKI, tmp_path: Path) -> None:
    first = identity(pki)
    second = identity(pki, department_name="台州市建设局", department_code=CODE_2)
    third = identity(pki, department_name="嘉兴市住房和城乡建设局", department_code=CODE_3)
    pdf = certified_for_two_departments(pki, first)
    for name, seal in (("Dept2", second), ("Dept3", third)):
        pdf, _ = seal_pdf_bytes(
            pdf,
            identity=seal,
            options=SealOptions(level=SealLevel.B_T, field_name=name),
            context=context(pki, seal),
        )
    checked = validate_all(pdf, pki, offline_hard_fail=False)
    assert [c.field for c in checked] == ["Dept1", "Dept2", "Dept3"]
    for c in checked:
        assert c.status.bottom_line, c.field
        assert c.status.docmdp_ok, c.field
    assert checked[0].status.modification_level == ModificationLevel.FORM_FILLING
    path = tmp_path / "approved.pdf"
    path.write_bytes(pdf)
    assert pdfsig(path, "-nocert").count("Signature is Valid.") == 3


def test_a_reserved_field_carries_its_department_as_a_seed_value(pki: TestPKI) -> None:
    pdf = certified_for_two_departments(pki, identity(pki))
    reader = PdfFileReader(io.BytesIO(pdf))
    seeds = {
        name: SigSeedValueSpec.from_pdf_object(ref.get_object()["/SV"])  # type: ignore[no-untyped-call]
        for name, _, ref in enumerate_sig_fields(reader, filled_status=False)
        if name != "Dept1"
    }
    for name, code in (("Dept2", CODE_2), ("Dept3", CODE_3)):
        cert = seeds[name].cert
        assert cert is not None
        assert cert.flags & SigCertConstraintFlags.SUBJECT_DN
        assert cert.subject_dn is not None
        assert cert.subject_dn.native == {"organization_identifier": f"NTRCN-{code}"}


def test_sealing_another_departments_field_is_refused(pki: TestPKI) -> None:
    pdf = certified_for_two_departments(pki, identity(pki))
    second = identity(pki, department_name="台州市建设局", department_code=CODE_2)
    with pytest.raises(FieldReservedError, match="'Dept3' is reserved for another department"):
        seal_pdf_bytes(
            pdf,
            identity=second,
            options=SealOptions(level=SealLevel.B_T, field_name="Dept3"),
            context=context(pki, second),
        )


def test_a_field_bound_to_one_seal_refuses_another_seal_of_the_same_department(
    pki: TestPKI,
) -> None:
    first = identity(pki)
    chosen = identity(pki, department_name="台州市建设局", department_code=CODE_2)
    sibling = identity(pki, department_name="台州市建设局", department_code=CODE_2)
    options = SealOptions(
        level=SealLevel.B_B,
        certification=Certification.FORM_FILLING,
        reserve_fields=(
            ReservedField(
                name="Dept2",
                holder=FieldHolder(
                    department_code=CODE_2,
                    seal_id="seal-0123abcd",
                    seal_certificate=chosen.certificate,
                ),
            ),
        ),
    )
    pdf, _ = seal_pdf_bytes(
        make_pdf(), identity=first, options=options, context=context(pki, first)
    )
    fill = SealOptions(level=SealLevel.B_B, field_name="Dept2")
    with pytest.raises(FieldReservedError, match="Dept2"):
        seal_pdf_bytes(pdf, identity=sibling, options=fill, context=context(pki, sibling))
    sealed, _ = seal_pdf_bytes(pdf, identity=chosen, options=fill, context=context(pki, chosen))
    assert all(c.status.bottom_line for c in validate_all(sealed, pki, offline_hard_fail=False))


def test_the_field_check_sees_the_certifying_seals_digest(pki: TestPKI) -> None:
    first = identity(pki)
    certified, result = seal_pdf_bytes(
        make_pdf(),
        identity=first,
        options=SealOptions(
            level=SealLevel.B_B,
            certification=Certification.FORM_FILLING,
            reserve_fields=(ReservedField(name="Dept2"),),
        ),
        context=context(pki, first),
    )
    seen: list[FieldToFill] = []

    def refuse(field: FieldToFill) -> None:
        seen.append(field)
        raise FieldReservedError("Refused by the registry.", field_name=field.name)

    second = identity(pki, department_name="台州市建设局", department_code=CODE_2)
    with pytest.raises(FieldReservedError, match="registry"):
        seal_pdf_bytes(
            certified,
            identity=second,
            options=SealOptions(level=SealLevel.B_B, field_name="Dept2"),
            context=context(pki, second),
            check_field=refuse,
        )
    assert seen == [FieldToFill(name="Dept2", certification_digest=result.signed_digest)]


@pytest.mark.parametrize("algorithm", SEAL_ALGORITHMS, ids=lambda a: a.value)
def test_a_sealed_documents_cms_names_its_seals_suite(
    pki: TestPKI, algorithm: KeyAlgorithm
) -> None:
    seal = identity(pki, algorithm)
    assert seal.suite is suite_for(algorithm)
    pdf, result = seal_pdf_bytes(
        make_pdf(),
        identity=seal,
        options=SealOptions(level=SealLevel.B_LTA),
        context=context(pki, seal),
    )
    signature, document_timestamp = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    info = signature.signer_info
    assert info["digest_algorithm"]["algorithm"].dotted == seal.suite.digest_oid
    assert info["signature_algorithm"]["algorithm"].dotted == seal.suite.signature_oid
    # The registry's signed digest is the suite's digest of the signed bytes.
    assert signature.md_algorithm == seal.suite.digest
    assert result.signed_digest == signature.compute_digest(seal.suite.digest).hex()
    # The document timestamp's imprint uses the same digest.
    assert document_timestamp.external_md_algorithm == seal.suite.digest


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dept2", ReservedField(name="Dept2")),
        (
            "Dept2@1:280,150",
            ReservedField(name="Dept2", placement=Placement(page=1, x=280, y=150)),
        ),
        (
            f"Dept2@1:280,150={CODE_2}",
            ReservedField(
                name="Dept2",
                placement=Placement(page=1, x=280, y=150),
                holder=FieldHolder(department_code=CODE_2),
            ),
        ),
        (
            "Dept2=seal-00ff",
            ReservedField(name="Dept2", holder=FieldHolder(seal_id="seal-00ff")),
        ),
    ],
)
def test_reserve_syntax(text: str, expected: ReservedField) -> None:
    assert ReservedField.parse(text) == expected


@pytest.mark.parametrize("text", ["Dept2=", "Dept2=913301", "Dept2@1:2,3=someone", "=X"])
def test_bad_reserve_holder_is_a_placement_error(text: str) -> None:
    with pytest.raises(PlacementError):
        ReservedField.parse(text)


def test_content_changed_after_sealing_is_a_modification(pki: TestPKI) -> None:
    seal = identity(pki)
    pdf, _ = seal_pdf_bytes(
        make_pdf(),
        identity=seal,
        options=SealOptions(level=SealLevel.B_B, certification=Certification.NO_CHANGES),
        context=context(pki, seal),
    )
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    forged = generic.StreamObject(stream_data=b"BT /F1 30 Tf 100 400 Td (FORGED) Tj ET")
    writer.add_stream_to_page(0, writer.add_object(forged))  # type: ignore[no-untyped-call]
    tampered = io.BytesIO()
    writer.write(tampered)  # type: ignore[no-untyped-call]
    [checked] = validate_all(tampered.getvalue(), pki, offline_hard_fail=False)
    assert checked.status.intact  # the signed bytes are untouched ...
    assert not checked.status.docmdp_ok  # ... but what follows them breaks the certification
    assert not checked.status.bottom_line


# --- bad input ----------------------------------------------------------------------------


def test_not_a_pdf(pki: TestPKI) -> None:
    seal = identity(pki)
    with pytest.raises(NotAPDFError, match="no %PDF- header"):
        seal_pdf_bytes(
            b"PK\x03\x04 a zip file",
            identity=seal,
            options=SealOptions(level=SealLevel.B_B),
            context=context(pki, seal),
        )


def test_encrypted_pdf(pki: TestPKI, tmp_path: Path) -> None:
    plain = tmp_path / "plain.pdf"
    plain.write_bytes(make_pdf())
    encrypted = tmp_path / "encrypted.pdf"
    subprocess.run(
        ["qpdf", "--encrypt", "user", "owner", "256", "--", str(plain), str(encrypted)],
        check=True,
        timeout=60,
    )
    seal = identity(pki)
    with pytest.raises(EncryptedPDFError, match="encrypted"):
        seal_pdf_bytes(
            encrypted.read_bytes(),
            identity=seal,
            options=SealOptions(level=SealLevel.B_B),
            context=context(pki, seal),
        )


def test_broken_cross_reference_table(pki: TestPKI) -> None:
    pdf = make_pdf()
    offset = pdf.rindex(b"startxref")
    broken = pdf[:offset] + b"startxref\n999999\n%%EOF\n"
    seal = identity(pki)
    with pytest.raises(BrokenPDFError, match="damaged"):
        seal_pdf_bytes(
            broken,
            identity=seal,
            options=SealOptions(level=SealLevel.B_B),
            context=context(pki, seal),
        )


def test_expired_seal(pki: TestPKI) -> None:
    start = pki.now - datetime.timedelta(days=1)
    seal = identity(pki, not_before=start, not_after=start + datetime.timedelta(hours=1))
    with pytest.raises(SealUnusableError, match="expired"):
        seal_pdf_bytes(
            make_pdf(),
            identity=seal,
            options=SealOptions(level=SealLevel.B_B),
            context=context(pki, seal),
        )


def test_not_yet_valid_seal(pki: TestPKI) -> None:
    start = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=2)
    seal = identity(pki, not_before=start, not_after=start + datetime.timedelta(days=30))
    with pytest.raises(SealUnusableError, match="not valid before"):
        seal_pdf_bytes(
            make_pdf(),
            identity=seal,
            options=SealOptions(level=SealLevel.B_B),
            context=context(pki, seal),
        )


def test_page_that_does_not_exist(pki: TestPKI) -> None:
    seal = identity(pki)
    with pytest.raises(PlacementError, match="Page 3 does not exist; the document has 1 page"):
        seal_pdf_bytes(
            make_pdf(),
            identity=seal,
            options=SealOptions(level=SealLevel.B_B, placement=Placement(page=3, x=100, y=100)),
            context=context(pki, seal),
        )


def test_position_off_the_page(pki: TestPKI) -> None:
    seal = identity(pki)
    with pytest.raises(PlacementError, match="does not fit on page 1"):
        seal_pdf_bytes(
            make_pdf(),
            identity=seal,
            options=SealOptions(level=SealLevel.B_B, placement=Placement(page=1, x=590, y=100)),
            context=context(pki, seal),
        )


def test_bad_placement_text() -> None:
    with pytest.raises(PlacementError, match="PAGE:X,Y"):
        Placement.parse("first page")


def test_unreachable_tsa_is_an_error_not_a_weaker_level(pki: TestPKI) -> None:
    seal = identity(pki)
    ctx = SealingContext(
        timestamper=HTTPTimeStamper("http://127.0.0.1:9/tsa", timeout=2),
        material=context(pki, seal).material,
    )
    with pytest.raises(TimestampError, match="timestamp authority"):
        seal_pdf_bytes(
            make_pdf(), identity=seal, options=SealOptions(level=SealLevel.B_T), context=ctx
        )


@pytest.fixture
def garbage_tsa() -> Iterator[str]:
    """An HTTP server that answers every POST with bytes that are not a TimeStampResp."""

    class Garbage(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.end_headers()
            self.wfile.write(b"\x30\x03garbage")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Garbage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/tsa"
    server.shutdown()


def test_tsa_answering_garbage_is_an_error(pki: TestPKI, garbage_tsa: str) -> None:
    seal = identity(pki)
    ctx = SealingContext(
        timestamper=HTTPTimeStamper(garbage_tsa, timeout=5), material=context(pki, seal).material
    )
    with pytest.raises(TimestampError):
        seal_pdf_bytes(
            make_pdf(), identity=seal, options=SealOptions(level=SealLevel.B_T), context=ctx
        )


def test_missing_timestamper_is_an_error(pki: TestPKI) -> None:
    seal = identity(pki)
    with pytest.raises(TimestampError, match="needs a timestamp authority"):
        seal_pdf_bytes(
            make_pdf(),
            identity=seal,
            options=SealOptions(level=SealLevel.B_LT),
            context=SealingContext(),
        )
