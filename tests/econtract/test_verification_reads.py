"""What verification reads from the registry for every upload is remembered between uploads,
and forgotten as soon as the registry changes, whichever process changed it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from cryptography import x509

from econtract import db
from econtract.certificates import change_status
from econtract.models import Seal
from econtract.seals import revoke_seal
from econtract.services import Services
from econtract.translog import publish_sth
from econtract.verification import DatabaseRegistryView, log_proofs, service_policy
from tests.factories import OPERATOR
from tests.licences import issue_example


@pytest.fixture
def other_process(initialised: Services) -> Iterator[Services]:
    """The same registry opened again, with its own engine and connections, as another
    server process has it."""
    other = Services(settings=initialised.settings)
    yield other
    other.dispose()


def _revoked_serials(crl_der: bytes) -> set[int]:
    return {entry.serial_number for entry in x509.load_der_x509_crl(crl_der)}


def test_a_seal_revoked_by_another_process_is_in_the_next_crl(
    initialised: Services, other_process: Services
) -> None:
    certificate = issue_example(initialised)
    before = service_policy(initialised).crls[1]
    with db.transaction(other_process.sessions) as session:
        seal = revoke_seal(
            session, seal_id=certificate.seal_id, reason="keyCompromise", actor=OPERATOR
        )
        serial = int(seal.serial_number)
    assert serial not in _revoked_serials(before)
    assert serial in _revoked_serials(service_policy(initialised).crls[1])


def test_the_crl_is_reused_while_nothing_is_revoked(initialised: Services) -> None:
    assert service_policy(initialised).crls == service_policy(initialised).crls


def test_a_status_changed_by_another_process_shows_in_the_next_match(
    initialised: Services, other_process: Services
) -> None:
    certificate = issue_example(initialised)
    pdf = (initialised.settings.blob_dir / certificate.blob_key).read_bytes()
    view = DatabaseRegistryView(initialised)
    digest = hashlib.sha256(pdf).hexdigest()
    before = view.lookup(digest, [])
    change_status(
        other_process,
        certificate_id=certificate.id,
        action="revoke",
        reason="吊销",
        actor=OPERATOR,
    )
    after = view.lookup(digest, [])
    assert before is not None
    assert after is not None
    assert (before.record_id, before.kind, before.matched_by) == (
        certificate.id,
        "certificate",
        "file",
    )
    assert before.status == "valid"
    assert after.status == "revoked"
    assert after.status_changed_at is not None
    assert after.status_changed_at != before.status_changed_at


def test_a_match_by_signed_bytes_names_the_recorded_seal(initialised: Services) -> None:
    certificate = issue_example(initialised)
    match = DatabaseRegistryView(initialised).lookup(
        "0" * 64, ["f" * 64, certificate.signed_digest]
    )
    with initialised.sessions() as session:
        seal = session.get(Seal, certificate.seal_id)
        assert seal is not None
        fingerprint = hashlib.sha256(seal.certificate_der).hexdigest()
    assert match is not None
    assert (match.record_id, match.matched_by, match.number, match.holder) == (
        certificate.id,
        "signed-bytes",
        certificate.number,
        certificate.holder_name,
    )
    assert match.seal_fingerprint == fingerprint


def test_an_unknown_file_matches_nothing(initialised: Services) -> None:
    issue_example(initialised)
    assert DatabaseRegistryView(initialised).lookup("0" * 64, ["f" * 64]) is None


def test_a_tree_head_published_by_another_process_shows_in_the_next_proofs(
    initialised: Services, other_process: Services
) -> None:
    certificate = issue_example(initialised)
    before = log_proofs(initialised, certificate.id)
    with db.transaction(other_process.sessions) as session:
        sth = publish_sth(session, other_process.pki.log_key, force=True)
    after = log_proofs(initialised, certificate.id)
    assert before["checked"]
    assert after["checked"]
    assert before["entries"] == []
    assert len(before["pending"]) == 1
    assert after["sth"]["tree_size"] == sth.tree_size
    assert [item["leaf_index"] for item in after["entries"]] == [
        item["leaf_index"] for item in before["pending"]
    ]
    assert after["pending"] == []


def test_a_change_to_the_proofs_returned_is_not_remembered(initialised: Services) -> None:
    certificate = issue_example(initialised)
    log_proofs(initialised, certificate.id)["pending"].clear()
    assert len(log_proofs(initialised, certificate.id)["pending"]) == 1
