"""decisions record their rule and the bundle's temperature

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 09:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("rule", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("temperature", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("temperature")
        batch.drop_column("rule")
