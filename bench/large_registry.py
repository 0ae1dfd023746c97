"""Load a large registry with SQL, not by issuing: filler certificates and usage records.

Issuing a million licences would take hours of rendering and sealing that a lookup never
reads; what a lookup reads is rows and indexes, so the filler is rows only, written by
``INSERT … SELECT generate_series`` on PostgreSQL in chunks. Filler rows point at a real
department and seal (the foreign keys hold), carry holder codes of a shape no real holder
has (``F`` and 17 digits, so that they never answer a real holder's lookup) and identifiers
that no licence of the service has (``bench.`` prefix); their PDFs do not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

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


def analyse(engine: Engine, *, vacuum: bool = False) -> None:
    """Refresh the planner's statistics after a bulk load, as an operator would; with
    ``vacuum``, also mark the loaded pages all-visible (``VACUUM ANALYZE``), as autovacuum
    does soon after a load, so that the planner can read an index without the table."""
    statement = "VACUUM ANALYZE" if vacuum else "ANALYZE"
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(text(statement))


def _in_chunks(engine: Engine, statement: TextClause, count: int, values: dict[str, object]) -> int:
    if engine.dialect.name != "postgresql":
        raise SystemExit("The large registry is loaded on PostgreSQL only.")
    inserted = 0
    for start in range(1, count + 1, CHUNK):
        stop = min(start + CHUNK - 1, count)
        with engine.begin() as connection:
            result = connection.execute(statement, {**values, "start": start, "stop": stop})
            inserted += result.rowcount
    return inserted


# --- a year of events (the supervision overview) ------------------------------------------------
#
# A year's registry is filled in the order the service would have written it: licences issued
# at an even pace over the year (``first`` + a fraction of ``span`` seconds), the other records
# spread over the same year and pointing at licences issued before them. Each licence ``k``
# belongs to issuing line ``k % n`` (a department and a type, repeated by weight). The filler
# licences' ids are those of ``fill_certificates``: a registry is filled by one or the other.

#: Of a year's licences: every 20th is revoked, every 67th of the others suspended.
REVOKE_EVERY = 20
SUSPEND_EVERY = 67
#: Rows per licence of the other records: uses of licences, envelopes, scan counters.
USES_PER_LICENCE = 0.5
ENVELOPES_PER_LICENCE = 1 / 15
SCAN_ROWS_PER_LICENCE = 1.2

_YEAR_CERTIFICATES = text(
    """
    INSERT INTO certificates (
        id, department_id, type_code, number, holder_name, holder_code, fields,
        valid_from, valid_until, status, seal_id, pdf_sha256, signed_digest, blob_key,
        issued_at, identifier, version, national_holder_code, national_holder_type
    )
    SELECT
        'bench_' || g, (CAST(:departments AS int[]))[g % :lines + 1],
        (CAST(:types AS text[]))[g % :lines + 1], 'F' || lpad(g::text, 12, '0'),
        '填充企业' || g, 'F' || lpad(g::text, 17, '0'), '{}'::json,
        CAST(at AS date), DATE '2046-01-01',
        CASE WHEN g % :revoke = 0 THEN 'revoked' WHEN g % :suspend = 0 THEN 'suspended'
            ELSE 'valid' END,
        :seal_id, md5(g::text) || md5('p' || g::text), md5(g::text) || md5('s' || g::text),
        'bench/' || g, at, 'bench.' || g, 1, 'F' || lpad(g::text, 17, '0'), '001'
    FROM generate_series(CAST(:start AS bigint), CAST(:stop AS bigint)) AS g,
        LATERAL (SELECT CAST(:first AS timestamptz)
            + (g - 0.5) * CAST(:span AS double precision) / :count * INTERVAL '1 second' AS at
        ) AS issued
    """
)

# The status change comes one to sixty days after the issuance; one that would come after
# the year's end has not happened yet (put on the year's last instant, the last sixty days'
# changes made one day, today, that the overview reads live, hold a hundred times its share).
_YEAR_STATUS_EVENTS = text(
    """
    INSERT INTO status_events (certificate_id, from_status, to_status, reason, actor, created_at)
    SELECT
        'bench_' || g, 'valid',
        CASE WHEN g % :revoke = 0 THEN 'revoked' ELSE 'suspended' END,
        CASE WHEN g % :revoke = 0
            THEN (CAST(:revoke_reasons AS text[]))[g / :revoke % :revoke_kinds + 1]
            ELSE (CAST(:suspend_reasons AS text[]))[g / :suspend % :suspend_kinds + 1] END,
        'bench', at + (g % 60 + 1) * INTERVAL '1 day'
    FROM generate_series(CAST(:start AS bigint), CAST(:stop AS bigint)) AS g,
        LATERAL (SELECT CAST(:first AS timestamptz)
            + (g - 0.5) * CAST(:span AS double precision) / :count * INTERVAL '1 second' AS at
        ) AS issued
    WHERE (g % :revoke = 0 OR g % :suspend = 0)
        AND at + (g % 60 + 1) * INTERVAL '1 day' <= CAST(:last AS timestamptz)
    """
)

# Use ``g`` of ``uses`` falls at the fraction g/uses of the year, of a licence issued before.
_YEAR_USES = text(
    """
    INSERT INTO usage_records (
        usage_id, department_id, client_id, action, holder_code, holder_type,
        certificate_id, identifier, use_cause, matter, case_number, consent_id, result,
        remote_addr, request_id, salt, created_at
    )
    SELECT
        'use_bench_' || g, (CAST(:users AS int[]))[g % :user_count + 1], 'bench', 'lookup',
        'F' || lpad(k::text, 17, '0'), '001', 'bench_' || k, 'bench.' || k,
        '核验营业执照', (CAST(:matters AS text[]))[g % :user_count + 1], NULL, NULL,
        CASE WHEN g % 10 = 0 THEN 'consent-required' WHEN g % 37 = 0 THEN 'not-found'
            ELSE 'granted' END,
        '127.0.0.1', NULL, md5(g::text),
        CAST(:first AS timestamptz)
            + (g - 0.5) * CAST(:span AS double precision) / :uses * INTERVAL '1 second'
    FROM generate_series(CAST(:start AS bigint), CAST(:stop AS bigint)) AS g,
        LATERAL (
            SELECT (g * 7919) % GREATEST(1, (g - 1) * CAST(:count AS bigint) / :uses) + 1 AS k
        )
            AS used
    """
)

# One in twelve declined, one in twelve expired, the rest completed half an hour to five days
# after they started, or still open when that is after the year's end.
_YEAR_ENVELOPES = text(
    """
    INSERT INTO envelopes (
        id, title, initiator_id, status, step, steps, version, document_id,
        certified_document_id, reason, idempotency_key, created_at, updated_at, completed_at
    )
    SELECT
        'env_bench_' || g, '填充案件' || g, (CAST(:initiators AS int[]))[g % :initiator_count + 1],
        fate, CASE WHEN fate = 'completed' THEN 2 ELSE 1 END, 2, 1, :document_id, :document_id,
        CASE WHEN fate = 'declined' THEN '材料不全' END, NULL, at,
        CASE WHEN fate = 'completed' THEN done ELSE at END,
        CASE WHEN fate = 'completed' THEN done END
    FROM generate_series(CAST(:start AS bigint), CAST(:stop AS bigint)) AS g,
        LATERAL (SELECT CAST(:first AS timestamptz)
            + (g - 0.5) * CAST(:span AS double precision) / :envelopes * INTERVAL '1 second' AS at
        ) AS started,
        LATERAL (SELECT at + (1800 + (g * 7919) % 432000) * INTERVAL '1 second' AS done)
            AS finished,
        LATERAL (SELECT CASE WHEN g % 12 = 0 THEN 'declined' WHEN g % 12 = 1 THEN 'expired'
            WHEN done > CAST(:last AS timestamptz) THEN 'open' ELSE 'completed' END AS fate)
            AS became
    """
)

# Scan counter rows (one per day, subject and answer): mostly VALID, one in eight UNKNOWN (a
# code naming no licence here, of no department), one in sixteen FORGED.
_YEAR_SCANS = text(
    """
    INSERT INTO scan_counts (day, channel, subject, verdict, department_id, count)
    SELECT
        CAST(:first_day AS date)
            + CAST(floor((g - 1) * CAST(:days AS double precision) / :scans) AS int), 'qr',
        CASE WHEN g % 8 = 0 THEN 'bench.unknown.' || g ELSE 'bench_' || k END,
        CASE WHEN g % 8 = 0 THEN 'UNKNOWN' WHEN g % 16 = 1 THEN 'FORGED' ELSE 'VALID' END,
        CASE WHEN g % 8 = 0 THEN NULL ELSE (CAST(:departments AS int[]))[k % :lines + 1] END,
        1 + g % 3
    FROM generate_series(CAST(:start AS bigint), CAST(:stop AS bigint)) AS g,
        LATERAL (
            SELECT (g * 7919) % GREATEST(1, (g - 1) * CAST(:count AS bigint) / :scans) + 1 AS k
        )
            AS scanned
    ON CONFLICT DO NOTHING
    """
)

_FILLER_DOCUMENT = text(
    """
    INSERT INTO sealed_documents (
        id, department_id, seal_id, file_name, level, pdf_sha256, signed_digest, blob_key,
        created_at
    )
    VALUES (:document_id, :department_id, :seal_id, 'bench.pdf', 'B-B', md5('d') || md5('e'),
        md5('d') || md5('s'), 'bench/document', CAST(:first AS timestamptz))
    """
)


@dataclass(frozen=True, kw_only=True)
class Year:
    """What a year's filler is made of: the registry's departments and seal, and the year."""

    lines: Sequence[tuple[int, str]]
    """Issuing lines (department id, type code), repeated by weight."""
    users: Sequence[tuple[int, str]]
    """Departments that use licences, each with the matter it uses them for."""
    initiators: Sequence[int]
    """Departments that start envelopes."""
    seal_id: str
    """The seal the filler licences name (any seal of the registry)."""
    seal_department_id: int
    """The seal's department (the filler envelopes' document is sealed with it)."""
    first_day: date
    """The year's first China day; it ends 365 days later."""
    revoke_reasons: Sequence[str]
    suspend_reasons: Sequence[str]
    end: datetime | None = None
    """The instant its records stop, on its last day (now: the service dates a record when
    it writes it, so none is dated later); ``None``: the end of its last day."""

    @property
    def first(self) -> datetime:
        """The first instant of the year (China midnight)."""
        return datetime.combine(self.first_day, time(), tzinfo=_CHINA)


_CHINA = timezone(timedelta(hours=8))
_YEAR_DAYS = 365


def fill_year(engine: Engine, year: Year, *, certificates: int) -> dict[str, int]:
    """Insert a year of ``certificates`` filler licences and the records that go with them
    (status changes, uses, envelopes, scan counters), in chunks (PostgreSQL only); return
    the rows inserted per table."""
    first = year.first
    span = _YEAR_DAYS * 86400 if year.end is None else (year.end - first).total_seconds()
    last = first + timedelta(seconds=span - 1)
    common: dict[str, object] = {
        "departments": [d for d, _ in year.lines],
        "types": [t for _, t in year.lines],
        "lines": len(year.lines),
        "first": first,
        "span": span,
        "count": certificates,
        "revoke": REVOKE_EVERY,
        "suspend": SUSPEND_EVERY,
        "seal_id": year.seal_id,
    }
    counts: dict[str, int] = {}
    counts["certificates"] = _in_chunks(engine, _YEAR_CERTIFICATES, certificates, common)
    counts["status_events"] = _in_chunks(
        engine,
        _YEAR_STATUS_EVENTS,
        certificates,
        {
            **common,
            "last": last,
            "revoke_reasons": list(year.revoke_reasons),
            "revoke_kinds": len(year.revoke_reasons),
            "suspend_reasons": list(year.suspend_reasons),
            "suspend_kinds": len(year.suspend_reasons),
        },
    )
    uses = max(1, round(certificates * USES_PER_LICENCE))
    counts["usage_records"] = _in_chunks(
        engine,
        _YEAR_USES,
        uses,
        {
            **common,
            "uses": uses,
            "users": [d for d, _ in year.users],
            "matters": [m for _, m in year.users],
            "user_count": len(year.users),
        },
    )
    document_id = "doc_bench_year"
    with engine.begin() as connection:
        connection.execute(
            _FILLER_DOCUMENT,
            {
                "document_id": document_id,
                "department_id": year.seal_department_id,
                "seal_id": year.seal_id,
                "first": first,
            },
        )
    envelopes = max(1, round(certificates * ENVELOPES_PER_LICENCE))
    counts["envelopes"] = _in_chunks(
        engine,
        _YEAR_ENVELOPES,
        envelopes,
        {
            **common,
            "last": last,
            "envelopes": envelopes,
            "document_id": document_id,
            "initiators": list(year.initiators),
            "initiator_count": len(year.initiators),
        },
    )
    scans = max(1, round(certificates * SCAN_ROWS_PER_LICENCE))
    counts["scan_counts"] = _in_chunks(
        engine,
        _YEAR_SCANS,
        scans,
        # Today's counters in proportion to its part of the day so far.
        {**common, "scans": scans, "first_day": year.first_day, "days": span / 86400},
    )
    return counts
