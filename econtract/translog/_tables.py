"""The log's tables: its size, its leaves, its subtree hashes and its signed tree heads.

Mapped on the registry's shared declarative ``Base``, so that Alembic's metadata and
``create_all`` see them with the rest of the registry; only ``econtract.translog`` reads or
writes them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from econtract.models import Base, utcnow

#: On SQLite a 64-bit key is declared INTEGER so that it is the rowid: one B-tree, not two.
LogIndex = BigInteger().with_variant(Integer(), "sqlite")


class LogState(Base):
    """The transparency log's size and right edge: one row (``id`` 1), locked by every append.

    Appends read and raise ``tree_size`` under ``SELECT ... FOR UPDATE`` on PostgreSQL (the
    database write lock on SQLite), so concurrent appends get consecutive leaf indexes.
    """

    __tablename__ = "log_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    tree_size: Mapped[int] = mapped_column(BigInteger, default=0)
    edge_size: Mapped[int | None] = mapped_column(BigInteger)
    """The tree size ``edge`` belongs to; an edge of another size is not used."""
    edge: Mapped[bytes | None] = mapped_column(LargeBinary)
    """The hashes of the perfect subtrees of ``[0, edge_size)``, left to right, 32 bytes each:
    what the next append starts from, written by each append (a copy of stored node hashes, so
    that an append does not look them up while every other writer waits)."""


class LogLeaf(Base):
    """One entry of the transparency log: its canonical bytes and RFC 9162 leaf hash."""

    __tablename__ = "log_leaves"

    leaf_index: Mapped[int] = mapped_column(LogIndex, primary_key=True, autoincrement=False)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    entry: Mapped[bytes] = mapped_column(LargeBinary)
    subject: Mapped[str | None] = mapped_column(String(64), index=True)
    """The certificate, document or seal id the entry is about, to find its proofs."""


class LogNode(Base):
    """The hash of a complete subtree of the log: ``2**level`` leaves from ``index << level``.

    Written once, when its last leaf is appended; level 0 is ``LogLeaf.leaf_hash``.
    """

    __tablename__ = "log_nodes"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    node_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LogTreeHead(Base):
    """A signed tree head the log published; proofs are given only against these sizes."""

    __tablename__ = "log_tree_heads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tree_size: Mapped[int] = mapped_column(BigInteger, index=True)
    timestamp_ms: Mapped[int] = mapped_column(BigInteger)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
