"""A migration that fails half-way (a full disk, a kill) leaves the database exactly as it was."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from bot.store import db as store_db
from bot.store.db import StoreError, alembic_config, current_revision, upgrade

BOOM = '''"""Creates a table, then fails, the way a full disk fails a migration half-way."""
from alembic import op
import sqlalchemy as sa

revision = "9999_boom"
down_revision = {head!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
    op.execute("INSERT INTO half_done (id) VALUES (1)")
    raise RuntimeError("disk full (on purpose)")


def downgrade() -> None:
    op.drop_table("half_done")
'''


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


@pytest.fixture
def failing_chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the real migrations with one more revision on top that fails after doing some work."""
    folder = shutil.copytree(store_db.MIGRATIONS_DIR, tmp_path / "migrations",
                             ignore=shutil.ignore_patterns("__pycache__"))
    head = ScriptDirectory.from_config(alembic_config(tmp_path / "probe.sqlite3")).get_current_head()
    (folder / "versions" / "9999_boom.py").write_text(BOOM.format(head=head))
    monkeypatch.setattr(store_db, "MIGRATIONS_DIR", folder)
    return folder


def test_a_failing_first_upgrade_leaves_an_empty_database_that_upgrades_later(tmp_path: Path,
                                                                             failing_chain: Path) -> None:
    path = tmp_path / "fresh.sqlite3"
    with pytest.raises(StoreError, match="disk full"):
        upgrade(path)
    assert tables(path) == set()  # not the core tables without alembic_version, as before
    (failing_chain / "versions" / "9999_boom.py").unlink()  # the disk has room again
    upgrade(path)
    assert "cursors" in tables(path) and "half_done" not in tables(path)


def test_a_failing_later_migration_keeps_the_previous_schema(tmp_path: Path, failing_chain: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "running.sqlite3"
    boom = failing_chain / "versions" / "9999_boom.py"
    text = boom.read_text()
    boom.unlink()
    upgrade(path)
    before, revision = tables(path), current_revision(path)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO state (key, value, updated_at) VALUES ('kept', 'yes', '2026-01-01')")
    boom.write_text(text)
    with pytest.raises(StoreError, match="disk full"):
        upgrade(path)
    assert tables(path) == before and current_revision(path) == revision
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM state WHERE key = 'kept'").fetchone() == ("yes",)
