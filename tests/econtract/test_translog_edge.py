"""The log's right edge kept in its state row: appends start from it, and from the stored
hashes whenever it does not belong to the current size."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from econtract import db
from econtract.services import Services
from econtract.translog import append_entries, append_entry, root_of
from econtract.translog._merkle import perfect_subtrees
from econtract.translog._store import root_hash
from econtract.translog._tables import LogLeaf, LogState
from tests.econtract.test_query_plans import recorded
from tests.econtract.test_translog import status_entry as entry
from tests.factories import initialise_with_an_empty_log


@pytest.fixture
def log_services(services: Services) -> Services:
    return initialise_with_an_empty_log(services)


def append_one_by_one(services: Services, indexes: range) -> None:
    for i in indexes:
        with db.transaction(services.sessions) as session:
            assert append_entry(session, entry(i)) == i


def stored_leaves(services: Services) -> list[bytes]:
    with services.sessions() as session:
        return list(session.scalars(select(LogLeaf.leaf_hash).order_by(LogLeaf.leaf_index)))


def test_each_append_keeps_the_edge_of_the_new_size(log_services: Services) -> None:
    for size in range(1, 20):
        append_one_by_one(log_services, range(size - 1, size))
        leaves = stored_leaves(log_services)
        with log_services.sessions() as session:
            state = session.get(LogState, 1)
            assert state is not None
            assert (state.tree_size, state.edge_size) == (size, size)
            expected = b"".join(
                root_of(leaves[index << level : (index + 1) << level])
                for level, index in perfect_subtrees(0, size)
            )
            assert state.edge == expected
            assert root_hash(session, size) == root_of(leaves)


def test_an_append_from_the_edge_reads_no_stored_hash(log_services: Services) -> None:
    append_one_by_one(log_services, range(11))
    with recorded() as found, db.transaction(log_services.sessions) as session:
        assert append_entries(session, [entry(11), entry(12)]) == range(11, 13)
    seen = [statement for statement, _ in found]
    reads = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    assert reads, seen
    assert not [s for s in reads if "log_nodes" in s or "log_leaves" in s], reads
    with log_services.sessions() as session:
        assert root_hash(session, 13) == root_of(stored_leaves(log_services))


@pytest.mark.parametrize(
    "damage",
    [
        # The state of a registry from before the edge was kept.
        {"edge_size": None, "edge": None},
        # A writer that moved the size alone (the tests' own log resets do).
        {"edge_size": 6},
        # An edge of the wrong length for its size.
        {"edge": b"\x00" * 31},
        {"edge": b"\x00" * 64},
    ],
    ids=["none", "another-size", "cut", "too-many-hashes"],
)
def test_an_edge_that_does_not_fit_is_not_used(
    log_services: Services, damage: dict[str, object]
) -> None:
    append_one_by_one(log_services, range(7))
    with db.transaction(log_services.sessions) as session:
        session.execute(update(LogState).values(**damage))
    with recorded() as found:
        append_one_by_one(log_services, range(7, 9))
    # The first append looked the edge up in the stored hashes; the second used the kept one.
    seen = [statement for statement, _ in found]
    assert sum("log_leaves" in s and s.lstrip().upper().startswith("SELECT") for s in seen) == 1
    with log_services.sessions() as session:
        state = session.get(LogState, 1)
        assert state is not None
        assert (state.tree_size, state.edge_size) == (9, 9)
        assert root_hash(session, 9) == root_of(stored_leaves(log_services))


def test_a_reset_log_does_not_start_from_the_old_edge(log_services: Services) -> None:
    append_one_by_one(log_services, range(5))
    initialise_with_an_empty_log(log_services)
    for i in range(5):
        with db.transaction(log_services.sessions) as session:
            assert append_entry(session, entry(100 + i)) == i
    with log_services.sessions() as session:
        assert root_hash(session, 5) == root_of(stored_leaves(log_services))


def test_a_rolled_back_append_leaves_the_edge_it_found(log_services: Services) -> None:
    append_one_by_one(log_services, range(3))
    with log_services.sessions() as session:
        before = session.scalar(select(LogState.edge))

    def failing_use_case() -> None:
        with db.transaction(log_services.sessions) as session:
            append_entries(session, [entry(i) for i in range(3, 9)])
            raise RuntimeError("the use case failed after appending")

    with pytest.raises(RuntimeError, match="failed after appending"):
        failing_use_case()
    with log_services.sessions() as session:
        assert session.scalar(select(LogState.edge)) == before
    append_one_by_one(log_services, range(3, 4))
    with log_services.sessions() as session:
        assert root_hash(session, 4) == root_of(stored_leaves(log_services))
