"""observation context for the review card, and the name of a moderator's taxon

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 09:50:00

When and where an observation was made, its description, and its identifications and comments
(JSON, with the time they were read), so a review card shows them without a request per card; and
the name of the taxon a moderator chose instead of the model's, for the history and the report.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("observed_at", sa.DateTime()),
    ("place_guess", sa.String(length=500)),
    ("latitude", sa.Float()),
    ("longitude", sa.Float()),
    ("positional_accuracy", sa.Integer()),
    ("description", sa.Text()),
    ("context", sa.JSON()),
    ("context_at", sa.DateTime()),
)


def upgrade() -> None:
    # Plain ADD COLUMN (nullable): SQLite does it in place, so the tables' CHECK constraints stay as they are.
    for name, type_ in COLUMNS:
        op.add_column("observations", sa.Column(name, type_, nullable=True))
    op.add_column("review_actions", sa.Column("edited_taxon_name", sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("review_actions") as batch:
        batch.drop_column("edited_taxon_name")
    with op.batch_alter_table("observations") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
