"""A seal signs in the algorithm suite its registry row names."""

from __future__ import annotations

import io

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from sqlalchemy import select

from econtract.models import Department, Seal, SealKind
from econtract.sealing import seal_identity
from econtract.services import Services
from keys.errors import KeyStoreError
from keys.suites import suite_for
from tests.licences import seal_outside_the_registry


def _licence_seal(services: Services) -> tuple[Seal, Department]:
    with services.sessions() as session:
        seal = session.scalars(select(Seal).where(Seal.kind == SealKind.LICENCE.value)).one()
        department = session.get(Department, seal.department_id)
        assert department is not None
        session.expunge_all()
    return seal, department


def test_a_seal_identity_carries_the_suite_of_its_row(initialised: Services) -> None:
    seal, department = _licence_seal(initialised)
    assert seal_identity(initialised, seal, department).suite is suite_for(seal.algorithm)


def test_a_sealed_documents_cms_digest_is_its_seal_rows_suites(initialised: Services) -> None:
    seal, _ = _licence_seal(initialised)
    suite = suite_for(seal.algorithm)
    signature = PdfFileReader(
        io.BytesIO(seal_outside_the_registry(initialised))
    ).embedded_signatures[0]
    assert signature.signer_info["digest_algorithm"]["algorithm"].dotted == suite.digest_oid
    assert signature.signer_info["signature_algorithm"]["algorithm"].dotted == suite.signature_oid


def test_a_seal_row_naming_another_algorithm_than_its_key_cannot_seal(
    initialised: Services,
) -> None:
    seal, department = _licence_seal(initialised)
    seal.algorithm = "rsa-3072" if seal.algorithm != "rsa-3072" else "ecdsa-p256"
    with pytest.raises(KeyStoreError, match="suite cannot sign with a"):
        seal_identity(initialised, seal, department)
