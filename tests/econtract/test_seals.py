"""Seals: created under the issuing CA for a department, revoked, rotated."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE, DEMO_DEPARTMENT_NAME
from econtract.errors import ConflictError, InvalidInputError, NotFoundError
from econtract.models import SealKind, SealStatus
from econtract.seals import SealRequest, create_seal, list_seals, revoke_seal, rotate_seal
from econtract.services import Services
from keys.ca import department_code_of, seal_kind_of
from keys.handles import KeyAlgorithm
from tests.factories import OPERATOR


@pytest.mark.parametrize(
    "algorithm", [KeyAlgorithm.RSA_2048, KeyAlgorithm.RSA_3072, KeyAlgorithm.EC_P256]
)
def test_seal_certificate_names_department_and_kind(
    initialised: Services, algorithm: KeyAlgorithm
) -> None:
    with db.transaction(initialised.sessions) as session:
        seal = create_seal(
            session,
            request=SealRequest(
                department_code=DEMO_DEPARTMENT_CODE, kind=SealKind.CONTRACT, algorithm=algorithm
            ),
            key_store=initialised.key_store,
            pki=initialised.pki,
            actor=OPERATOR,
        )
    cert = x509.load_der_x509_certificate(seal.certificate_der)
    assert (
        cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
        == DEMO_DEPARTMENT_NAME
    )
    assert department_code_of(cert) == DEMO_DEPARTMENT_CODE
    assert seal_kind_of(cert) == "contract"
    assert KeyAlgorithm.of_public_key(cert.public_key()) == algorithm
    assert cert.issuer == initialised.pki.issuing.certificate.subject
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert usage.content_commitment
    assert not usage.key_cert_sign


def test_seal_key_stays_in_the_key_store(initialised: Services) -> None:
    with initialised.sessions() as session:
        seal = list_seals(session, department_code=DEMO_DEPARTMENT_CODE)[0]
    handle = initialised.key_store.load(seal.key_label)
    cert = x509.load_der_x509_certificate(seal.certificate_der)
    assert handle.public_key() == cert.public_key()
    stored = [p.read_bytes() for p in (initialised.settings.data_dir / "keys").iterdir()]
    assert stored
    assert all(b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in b for b in stored)
    assert not any(b"-----BEGIN PRIVATE KEY-----" in b for b in stored)


def test_unsupported_seal_algorithm_is_refused() -> None:
    with pytest.raises(
        InvalidInputError, match="rsa-2048, rsa-3072, ecdsa-p256, sm2, not ecdsa-p384"
    ):
        SealRequest(
            department_code=DEMO_DEPARTMENT_CODE,
            kind=SealKind.OFFICIAL,
            algorithm=KeyAlgorithm.EC_P384,
        )


def test_seal_for_unknown_department_is_refused(initialised: Services) -> None:
    with (
        pytest.raises(NotFoundError, match="No department"),
        db.transaction(initialised.sessions) as session,
    ):
        create_seal(
            session,
            request=SealRequest(department_code="9133100015J1YG617W", kind=SealKind.OFFICIAL),
            key_store=initialised.key_store,
            pki=initialised.pki,
            actor=OPERATOR,
        )


def test_revoke_twice_is_a_conflict(initialised: Services) -> None:
    with initialised.sessions() as session:
        seal_id = list_seals(session)[0].id
    with db.transaction(initialised.sessions) as session:
        seal = revoke_seal(session, seal_id=seal_id, reason="keyCompromise", actor=OPERATOR)
        assert seal.status == SealStatus.REVOKED
    with (
        pytest.raises(ConflictError, match="already revoked"),
        db.transaction(initialised.sessions) as session,
    ):
        revoke_seal(session, seal_id=seal_id, reason="keyCompromise", actor=OPERATOR)


def test_unknown_revocation_reason_is_refused(initialised: Services) -> None:
    with initialised.sessions() as session:
        seal_id = list_seals(session)[0].id
    with (
        pytest.raises(InvalidInputError, match="revocation reason"),
        db.transaction(initialised.sessions) as session,
    ):
        revoke_seal(session, seal_id=seal_id, reason="because", actor=OPERATOR)


def test_rotate_retires_the_old_seal_and_links_the_new(initialised: Services) -> None:
    with initialised.sessions() as session:
        old = next(s for s in list_seals(session) if s.kind == "licence")
    with db.transaction(initialised.sessions) as session:
        new = rotate_seal(
            session,
            seal_id=old.id,
            key_store=initialised.key_store,
            pki=initialised.pki,
            actor=OPERATOR,
        )
    with initialised.sessions() as session:
        by_id = {s.id: s for s in list_seals(session)}
    assert by_id[old.id].status == SealStatus.RETIRED
    assert by_id[new.id].replaces_id == old.id
    assert by_id[new.id].algorithm == old.algorithm
    assert by_id[new.id].kind == "licence"
    assert by_id[new.id].serial_number != old.serial_number
