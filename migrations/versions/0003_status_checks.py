"""CHECK constraints on every status column

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 09:40:00

The allowed values are written out here, not imported from `bot.domain`: a released revision must keep
meaning what it meant.  A later revision that adds a value to a status enum drops and re-creates the
constraint with the new list (batch mode, as here).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECKS = {  # table: (constraint name, column, allowed values)
    "decisions": ("ck_decisions_status", "status",
                  ("recorded", "proposed", "approved", "rejected", "skipped", "posted", "failed", "withdrawn",
                   "opted_out")),
    "posts": ("ck_posts_status", "status", ("intent", "posted", "failed", "retry", "skipped")),
    "photos": ("ck_photos_status", "status",
               ("pending", "ok", "failed", "budget", "refused", "too_large", "corrupt", "truncated", "not_an_image")),
    "outcomes": ("ck_outcomes_outcome", "outcome", ("confirmed", "refined", "contradicted", "pending", "gone")),
    "cycles": ("ck_cycles_status", "status", ("running", "ok", "failed", "paused")),
}


def upgrade() -> None:
    for table, (name, column, values) in CHECKS.items():
        listed = ", ".join(f"'{v}'" for v in values)
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_check_constraint(name, f"{column} IN ({listed})")


def downgrade() -> None:
    for table, (name, _column, _values) in reversed(list(CHECKS.items())):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(name, type_="check")
