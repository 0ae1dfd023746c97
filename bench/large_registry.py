"""Load a large registry with SQL, not by issuing: filler certificates and usage records.

Issuing a million licences would take hours of rendering and sealing that a lookup never
reads; what a lookup reads is rows and indexes, so the filler is rows only, written by
``INSERT … SELECT generate_series`` on PostgreSQL in chunks. Filler rows point at a real
department and seal (the foreign keys hold), carry holder codes of a shape no real holder
has (``F`` and 17 digits, so that they never answer a real holder's lookup) and identifiers
that no licence of the service has (``bench.`` prefix); their PDFs do not exist.
"""

from __future__ import annotations

from sqlalchemy import Engine, TextClause, text

#: Rows per INSERT statement: large enough to be fast, small enough for one transaction.
CHUNK = 100_000

_CERTIFICATES = text(
    """
    INSERT INTO certificates (
        id, department_id, type_code, number, holder_name, holder_code, fields,
        valid_from, valid_until, status, seal_id, pdf_sha256, signed_digest, blob_key,
        issued_at, identifier, version, national_holder_code, national_holder_type
    )
    SELECT
        'bench_' || g, :department_id, :type_code, 'F' || lpad(g::text, 12, '0'),
        '填充企业' || g, 'F' || lpad(g::text, 17, '0'), '{}'::json,
        DATE '2026-01-01', DATE '2046-01-01', 'valid', :seal_id,
        md5(g::text) || md5('p' || g::text), md5(g::text) || md5('s' || g::text),
        'bench/' || g, TIMESTAMPTZ '2026-01-01 00:00:00+00' + g * INTERVAL '1 second',
        'bench.' || g, 1, 'F' || lpad(g::text, 17, '0'), '001'
    FROM generate_series(CAST(:start AS bigint), CAST(:stop AS bigint)) AS g
    """
)

_USAGE = text(
    """
    INSERT INTO usage_records (
        usage_id, department_id, client_id, action, holder_code, holder_type,
        certificate_id, identifier, use_cause, matter, case_number, consent_id, result,
        remote_addr, request_id, salt, created_at
    )
    SELECT
        'use_bench_' || g, :department_id, 'bench', 'lookup',
        'F' || lpad(k::text, 17, '0'), '001', 'bench_' || k, 'bench.' || k,
        '办理施工许可', :matter, NULL, NULL, 'granted', '127.0.0.1', NULL,
        md5(g::text), TIMESTAMPTZ '2026-06-01 00:00:00+00' + g * INTERVAL '1 second'
    FROM generate_series(CAST(:start AS bigint), CAST(:stop AS bigint)) AS g,
        LATERAL (SELECT g % CAST(:certificates AS bigint) + 1 AS k) AS used
    """
)


def fill_certificates(
    engine: Engine, *, department_id: int, seal_id: str, type_code: str, count: int
) -> None:
    """Insert ``count`` filler certificates of ``type_code`` (PostgreSQL only)."""
    _in_chunks(
        engine,
        _CERTIFICATES,
        count,
        {"department_id": department_id, "seal_id": seal_id, "type_code": type_code},
    )


def fill_usage(
    engine: Engine, *, department_id: int, matter: str, certificates: int, count: int
) -> None:
    """Insert ``count`` usage records of the filler certificates (PostgreSQL only)."""
    _in_chunks(
        engine,
        _USAGE,
        count,
        {"department_id": department_id, "matter": matter, "certificates": certificates},
    )


def analyse(engine: Engine) -> None:
    """Refresh the planner's statistics after a bulk load, as an operator would."""
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))


def _in_chunks(
    engine: Engine, statement: TextClause, count: int, values: dict[str, object]
) -> None:
    if engine.dialect.name != "postgresql":
        raise SystemExit("The large registry is loaded on PostgreSQL only.")
    for start in range(1, count + 1, CHUNK):
        stop = min(start + CHUNK - 1, count)
        with engine.begin() as connection:
            connection.execute(statement, {**values, "start": start, "stop": stop})
