"""The overview's roll-up of today so far

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-03 16:10:00.000000

A day in the list of days rolled up may now be rolled up in part: ``through`` is the instant
up to which its rows count (the worker rolls up today so far, to the last full hour less the
roll-up's grace, and replaces those rows each hour and by the whole day's once it is over);
``NULL`` is a whole day, as every row written before. The figures read the records written
since that instant only, so that none of them depends on how much of today there is.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ROLL_UPS = (
    "overview_rollup_days",
    "overview_issued_days",
    "overview_status_change_lists",
    "overview_use_days",
    "overview_scan_days",
    "overview_envelope_days",
    "overview_open_envelopes",
    "overview_completions",
    "overview_completion_totals",
)


def upgrade() -> None:
    with op.batch_alter_table("overview_rollup_days") as batch:
        batch.add_column(sa.Column("through", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # Without its instant a day rolled up in part would read as whole: the roll-ups are
    # derived data, emptied, and the worker's next round rolls every day up again.
    for table in _ROLL_UPS:
        op.execute(sa.table(table).delete())
    with op.batch_alter_table("overview_rollup_days") as batch:
        batch.drop_column("through")
