"""The Merkle log: batched appends per second, and proof times at 1K and at 1M entries.

    .venv/bin/python -m bench.bench_log [--entries N] [--batch B] [--proofs P] [--repeats R]

On SQLite in one process (a fresh database in a temporary directory, migrated with the
project's migrations). Entries are appended with ``append_entries`` in transactions of
``--batch`` entries; the rate is the median over the batches of each repetition-sized slice.
Proof times are the median over ``--proofs`` random leaves (inclusion) or random pairs of
published sizes (consistency), each timed alone, including the database reads. The 1K figures
are taken on the same database when it holds 1,000 entries, so both sides share every setting.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from econtract import db
from econtract.translog import (
    LogEntry,
    LogEntryKind,
    append_entries,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    publish_sth,
    verify_consistency,
    verify_inclusion,
)
from econtract.translog._tables import LogTreeHead
from keys.handles import KeyAlgorithm
from keys.store import KeyStoreConfig, open_key_store

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def entry(i: int) -> LogEntry:
    """A realistic issuance entry (about 400 bytes)."""
    return LogEntry(
        kind=LogEntryKind.CERTIFICATE_ISSUE,
        time=T0 + timedelta(milliseconds=i),
        department="91330100MA2XXXXX0X",
        certificate_id=f"crt_{i:022d}",
        certificate_number=f"YYZZ3301002026{i:08d}",
        certificate_type="business_licence",
        seal_id="seal_0123456789abcdef0123",
        pdf_sha256=f"{i:064x}",
        signed_digest=f"{i * 7:064x}",
        status="valid",
    )


def percentiles(samples: list[float]) -> str:
    """Median with min and max, in microseconds."""
    us = [s * 1e6 for s in samples]
    return f"median {statistics.median(us):8.1f} µs  (min {min(us):.1f}, max {max(us):.1f})"


def time_each(operation: Callable[[int], object], count: int) -> list[float]:
    """Time ``operation(i)`` for ``i`` in ``range(count)``, each call alone."""
    samples = []
    for i in range(count):
        started = time.perf_counter()
        operation(i)
        samples.append(time.perf_counter() - started)
    return samples


def proof_times(
    sessions: sessionmaker[Session], size: int, sizes: list[int], proofs: int, seed: int
) -> tuple[list[float], list[float]]:
    """Inclusion and consistency proof times against the published head of ``size``."""
    rng = random.Random(seed)
    with sessions() as session:
        roots = dict(
            session.execute(
                select(LogTreeHead.tree_size, LogTreeHead.root_hash).where(
                    LogTreeHead.tree_size <= size
                )
            ).all()
        )
        leaves = [rng.randrange(size) for _ in range(proofs)]
        heads = sorted({s for s in sizes if 0 < s <= size})
        pairs = []
        for _ in range(proofs):
            first, second = sorted(rng.sample(heads, 2))
            pairs.append((first, second))

        def inclusion(i: int) -> None:
            inclusion_proof(session, leaves[i], size)

        def consistency(i: int) -> None:
            consistency_proof(session, *pairs[i])

        # Warm the page cache once, then check one of each for correctness.
        for i in range(min(50, proofs)):
            inclusion(i)
            consistency(i)
        leaf = leaf_hash(entry(leaves[0]).to_bytes())
        verify_inclusion(
            leaf, leaves[0], size, inclusion_proof(session, leaves[0], size), roots[size]
        )
        first, second = pairs[0]
        verify_consistency(
            first, second, roots[first], roots[second], consistency_proof(session, first, second)
        )
        return time_each(inclusion, proofs), time_each(consistency, proofs)


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--proofs", type=int, default=1000)
    parser.add_argument("--small", type=int, default=1000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-log-") as tmp:
        engine = db.make_engine(f"sqlite:///{Path(tmp) / 'log.db'}")
        db.upgrade(engine)
        sessions = db.session_factory(engine)
        store = open_key_store(KeyStoreConfig(directory=Path(tmp) / "keys", passphrase="bench"))
        key = store.generate("log", KeyAlgorithm.EC_P256)
        published: list[int] = []

        def append_upto(target: int, start: int, batch_size: int) -> list[float]:
            rates = []
            at = start
            while at < target:
                count = min(batch_size, target - at)
                batch = [entry(i) for i in range(at, at + count)]
                started = time.perf_counter()
                with db.transaction(sessions) as session:
                    append_entries(session, batch)
                    # A head per batch, as the service's publisher would sign while busy.
                    published.append(publish_sth(session, key).tree_size)
                rates.append(count / (time.perf_counter() - started))
                at += count
            return rates

        print(f"The Merkle log on SQLite, one process; batches of {args.batch} entries.")
        # Small batches first, so that the 1K tree has heads at 20 sizes to prove between.
        append_upto(args.small, 0, max(1, args.small // 20))
        small_inc, small_con = proof_times(sessions, args.small, published, args.proofs, 1)

        started = time.perf_counter()
        rates = append_upto(args.entries, args.small, args.batch)
        elapsed = time.perf_counter() - started
        appended = args.entries - args.small
        big_inc, big_con = proof_times(sessions, args.entries, published, args.proofs, 2)

        print(
            f"appended {appended} entries in {elapsed:.1f} s: {appended / elapsed:,.0f}/s "
            f"overall  (per batch: median {statistics.median(rates):,.0f}/s, "
            f"min {min(rates):,.0f}, max {max(rates):,.0f})   target >= 5,000/s"
        )
        db_size = (Path(tmp) / "log.db").stat().st_size
        print(f"database size: {db_size / 1e6:.0f} MB ({db_size / args.entries:.0f} B/entry)")
        for name, small, big in (
            ("inclusion", small_inc, big_inc),
            ("consistency", small_con, big_con),
        ):
            print(f"{name:<12} at {args.small:>9,}: {percentiles(small)}")
            print(f"{name:<12} at {args.entries:>9,}: {percentiles(big)}")
            ratio = statistics.median(big) / statistics.median(small)
            print(
                f"{name:<12} ratio {args.entries:,} / {args.small:,}: {ratio:.2f}x   target <= 3x"
            )
        engine.dispose()


if __name__ == "__main__":
    main()
