"""flora: the cached local flora, and what the flora did to each decision

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 09:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "flora_taxa",
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("taxon_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "taxon_id"),
    )
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("flora", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("flora_name", sa.String(length=300), nullable=True))
        batch.add_column(sa.Column("flora_removed", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("flora_removed")
        batch.drop_column("flora_name")
        batch.drop_column("flora")
    op.drop_table("flora_taxa")
