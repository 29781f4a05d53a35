"""hostile inputs: rejected records kept with their reason; the process that runs a cycle; `abandoned` cycles

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 09:50:00

The cycle status CHECK is re-created with "abandoned" added (values written out, as in 0003).
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CYCLE_STATUSES = ("running", "ok", "failed", "paused")  # as 0003 left them
CYCLE_STATUSES_NOW = (*CYCLE_STATUSES, "abandoned")


def _cycle_check(batch_op: Any, values: tuple[str, ...]) -> None:
    listed = ", ".join(f"'{v}'" for v in values)
    batch_op.drop_constraint("ck_cycles_status", type_="check")
    batch_op.create_check_constraint("ck_cycles_status", f"status IN ({listed})")


def upgrade() -> None:
    op.create_table(
        "rejected_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=200), nullable=False),
        sa.Column("raw_id", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("cycle_id", sa.Integer(), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("times", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["cycle_id"], ["cycles.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "raw_id", "reason", name="uq_rejected_records"),
    )
    with op.batch_alter_table("cycles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=200), nullable=True))
        _cycle_check(batch_op, CYCLE_STATUSES_NOW)


def downgrade() -> None:
    op.execute("UPDATE cycles SET status = 'failed' WHERE status = 'abandoned'")
    with op.batch_alter_table("cycles", schema=None) as batch_op:
        _cycle_check(batch_op, CYCLE_STATUSES)
        batch_op.drop_column("owner")
    op.drop_table("rejected_records")
