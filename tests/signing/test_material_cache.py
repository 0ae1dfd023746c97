"""The validation material of B-LT seals: prepared once, rebuilt when revocation data changes."""

from __future__ import annotations

import io

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from pyhanko.pdf_utils.decode_limits import DecodePurpose
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation.dss import DocumentSecurityStore

from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.models import Department, Seal, SealKind
from econtract.sealing import seal_identity, sealing_context
from econtract.seals import SealRequest, create_seal, list_seals, revoke_seal
from econtract.services import Services
from signing.options import SealLevel, SealOptions
from signing.sealer import seal_pdf_bytes
from tests.factories import OPERATOR
from tests.signing.sealing import make_pdf


def _demo_seal(services: Services, seal_id: str | None = None) -> tuple[Seal, Department]:
    """A seal of the demo department: the one named, or its first."""
    with services.sessions() as session:
        seals = list_seals(session, department_code=DEMO_DEPARTMENT_CODE)
        seal = next(s for s in seals if seal_id in (None, s.id))
        department = session.get(Department, seal.department_id)
        assert department is not None
        session.expunge_all()
    return seal, department


def _seal_long_term(services: Services, seal_id: str | None = None) -> bytes:
    """Seal a small PDF at B-LT with a demo seal, as the service does."""
    seal, department = _demo_seal(services, seal_id)
    identity = seal_identity(services, seal, department)
    context = sealing_context(services, identity.certificate, long_term=True)
    sealed, _ = seal_pdf_bytes(
        make_pdf(), identity=identity, options=SealOptions(level=SealLevel.B_LT), context=context
    )
    return sealed


def _revoked_serials_in_dss(pdf: bytes) -> set[int]:
    """Every serial number a CRL in the document's DSS lists as revoked."""
    dss = DocumentSecurityStore.read_dss(PdfFileReader(io.BytesIO(pdf)))
    serials: set[int] = set()
    for ref in dss.crls:
        crl = asn1_crl.CertificateList.load(ref.get_object().read_data(DecodePurpose.CRL))
        revoked = crl["tbs_cert_list"]["revoked_certificates"]
        serials.update(entry["user_certificate"].native for entry in revoked)
    return serials


def _ocsp_statuses_in_dss(pdf: bytes) -> list[str]:
    dss = DocumentSecurityStore.read_dss(PdfFileReader(io.BytesIO(pdf)))
    statuses = []
    for ref in dss.ocsps:
        der = ref.get_object().read_data(DecodePurpose.OCSP_RESPONSE)
        response = asn1_ocsp.OCSPResponse.load(der)
        for single in response.basic_ocsp_response["tbs_response_data"]["responses"]:
            statuses.append(single["cert_status"].name)
    return statuses


def test_material_is_prepared_once_while_nothing_changes(initialised: Services) -> None:
    seal, _ = _demo_seal(initialised)
    certificate = x509.load_der_x509_certificate(seal.certificate_der)
    first = initialised.pki.validation_material(certificate)
    assert initialised.pki.validation_material(certificate) is first


def test_revocation_shows_in_the_next_seals_dss(initialised: Services) -> None:
    sealing, _ = _demo_seal(initialised)
    with db.transaction(initialised.sessions) as session:
        other = create_seal(
            session,
            request=SealRequest(department_code=DEMO_DEPARTMENT_CODE, kind=SealKind.CONTRACT),
            key_store=initialised.key_store,
            pki=initialised.pki,
            actor=OPERATOR,
        )
    other_serial = int(other.serial_number)
    before = _seal_long_term(initialised, sealing.id)
    assert other_serial not in _revoked_serials_in_dss(before)

    with db.transaction(initialised.sessions) as session:
        revoke_seal(session, seal_id=other.id, reason="keyCompromise", actor=OPERATOR)

    after = _seal_long_term(initialised, sealing.id)
    assert other_serial in _revoked_serials_in_dss(after)
    # The sealing seal itself is still good, and its OCSP response says so.
    assert _ocsp_statuses_in_dss(after) == ["good"]


def test_validation_update_leaves_the_metadata_of_the_signed_revision(
    initialised: Services,
) -> None:
    sealed = _seal_long_term(initialised)
    reader = PdfFileReader(io.BytesIO(sealed))
    signed_revision = reader.embedded_signatures[0].signed_revision
    assert reader.xrefs.total_revisions == signed_revision + 2
    # The last revision holds the DSS and the catalog that points at it, nothing else.
    changed = set(reader.xrefs.explicit_refs_in_revision(signed_revision + 1))
    dss_ref = reader.root.raw_get("/DSS")
    assert dss_ref.idnum in {ref.idnum for ref in changed}
    info = reader.trailer_view.raw_get("/Info")
    assert info.idnum not in {ref.idnum for ref in changed}
