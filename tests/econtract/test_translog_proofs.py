"""Inclusion proofs for several entries at once (the QR page and the verification report show
every entry of a record with its proof): the same proofs as one at a time, checked the same."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, update

from econtract import db
from econtract.services import Services
from econtract.translog import LogIntegrityError, append_entries, inclusion_proof, publish_sth

# The log's own tests reach its private modules; the rest of the project uses __all__ only.
from econtract.translog._heads import latest_sth
from econtract.translog._store import entries, inclusion_proofs
from econtract.translog._tables import LogLeaf, LogNode
from tests.econtract.test_translog import status_entry
from tests.factories import initialise_with_an_empty_log


@pytest.fixture
def log_of_eleven(services: Services) -> Services:
    """Eleven entries under one signed tree head."""
    initialise_with_an_empty_log(services)
    with db.transaction(services.sessions) as session:
        append_entries(session, [status_entry(i) for i in range(11)])
        publish_sth(session, services.pki.log_key)
    return services


def test_proofs_in_one_batch_are_the_proofs_one_at_a_time(log_of_eleven: Services) -> None:
    with log_of_eleven.sessions() as session:
        sth = latest_sth(session)
        assert sth is not None
        leaves = entries(session, 0, 11)
        batch = inclusion_proofs(session, leaves, sth.tree_size, sth.root_hash)
        assert batch == [inclusion_proof(session, index, 11) for index, _ in leaves]
        assert inclusion_proofs(session, [], sth.tree_size, sth.root_hash) == []


def test_a_batch_is_checked_against_the_signed_root(log_of_eleven: Services) -> None:
    with log_of_eleven.sessions() as session:
        sth = latest_sth(session)
        assert sth is not None
        leaves = entries(session, 0, 11)
        other_root = bytes(32)
        with pytest.raises(LogIntegrityError, match="disagrees with its signed tree head"):
            inclusion_proofs(session, leaves[:1], sth.tree_size, other_root)


def test_a_damaged_log_refuses_a_batch(log_of_eleven: Services) -> None:
    with log_of_eleven.sessions() as session:
        sth = latest_sth(session)
        assert sth is not None
        leaves = entries(session, 0, 11)
    with db.transaction(log_of_eleven.sessions) as session:
        session.execute(update(LogLeaf).where(LogLeaf.leaf_index == 7).values(leaf_hash=b"x" * 32))
        session.execute(delete(LogNode).where(LogNode.level == 1, LogNode.node_index == 1))
    with log_of_eleven.sessions() as session:
        # Leaf 6's proof begins with leaf 7's hash, as stored.
        with pytest.raises(LogIntegrityError, match="disagrees with its signed tree head"):
            inclusion_proofs(session, [leaves[6]], sth.tree_size, sth.root_hash)
        with pytest.raises(LogIntegrityError, match="missing the subtree of level 1 at 1"):
            inclusion_proofs(session, [leaves[0], leaves[9]], sth.tree_size, sth.root_hash)
        assert inclusion_proofs(session, [leaves[10]], sth.tree_size, sth.root_hash)
