"""Engine, sessions and Alembic upgrades for the SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import PlantBotError

BUSY_TIMEOUT_MS = 30_000
PACKAGED_MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"  # in a wheel (setup.py maps it there)
SOURCE_MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"  # a source checkout's top-level folder
MIGRATIONS_DIR = PACKAGED_MIGRATIONS if (PACKAGED_MIGRATIONS / "env.py").exists() else SOURCE_MIGRATIONS


class StoreError(PlantBotError):
    """The database cannot be opened or migrated."""


def make_engine(database: str | Path) -> Engine:
    """An engine in WAL mode with a busy timeout, so the daemon, the web UI and the CLI share one file."""
    url = database if isinstance(database, str) and "://" in database else f"sqlite:///{Path(database)}"
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    return engine


def make_migration_engine(database: str | Path) -> Engine:
    """An engine whose transactions also cover DDL, so a migration that fails half-way leaves nothing behind.

    Python's sqlite3 module does not BEGIN before CREATE/ALTER/DROP (it commits them as it goes), so a
    first migration interrupted by a full disk used to leave tables without `alembic_version`. Here the
    driver's own transaction handling is off and SQLAlchemy emits BEGIN itself (SQLAlchemy's documented
    recipe for pysqlite); Alembic then runs the whole upgrade in that one transaction.
    """
    engine = make_engine(database)

    @event.listens_for(engine, "connect")
    def _driver_autocommit(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine


def alembic_config(database: str | Path) -> Any:
    from alembic.config import Config as AlembicConfig

    if not (MIGRATIONS_DIR / "env.py").exists():
        raise StoreError(f"migrations folder not found at {PACKAGED_MIGRATIONS} nor {SOURCE_MIGRATIONS}: "
                         "this PlantBot installation is incomplete; reinstall it")
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    url = database if isinstance(database, str) and "://" in database else f"sqlite:///{Path(database)}"
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def upgrade(database: str | Path, revision: str = "head") -> None:
    from alembic import command

    if isinstance(database, Path) or "://" not in str(database):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    try:
        command.upgrade(alembic_config(database), revision)
    except StoreError:
        raise
    except Exception as exc:  # alembic and sqlite errors: one line for the CLI
        raise StoreError(f"cannot upgrade {database}: {exc}") from exc


def downgrade(database: str | Path, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(database), revision)


def current_revision(database: str | Path) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(database)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


class Store:
    """The database: an engine plus a session factory.  Queries live in the sibling modules."""

    def __init__(self, database: str | Path, migrate: bool = True) -> None:
        self.database = database
        if migrate:
            upgrade(database)
        self.engine = make_engine(database)
        self._sessions = sessionmaker(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed on success, rolled back on any error (no half-written rows)."""
        with self._sessions() as s, s.begin():
            yield s

    def close(self) -> None:
        self.engine.dispose()
