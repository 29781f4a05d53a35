"""Fixtures every test module shares: a fresh store, and retries that wait tenths of seconds.

Helpers live in one place each: `tests/support/simconfig.py` writes the one simulator config,
`tests/post_fakes.py` the in-memory platform, `tests/platforms/conftest.py` the small simulator world.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from bot.store import Store


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database migrated to head per test process; each `store` starts as a copy of it (running
    every Alembic revision again costs about 0.4 s a test)."""
    path = tmp_path_factory.mktemp("template") / "plantbot.sqlite3"
    Store(path).close()
    return path


def copy_migrated(template: Path, target: Path) -> Path:
    """A consistent copy through SQLite's backup API (WAL content included, unlike a file copy)."""
    with closing(sqlite3.connect(template)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
    return target


@pytest.fixture
def store(tmp_path: Path, migrated_template: Path) -> Iterator[Store]:
    """A freshly migrated store at `tmp_path/plantbot.sqlite3` (where `post_fakes.make_config` points)."""
    s = Store(copy_migrated(migrated_template, tmp_path / "plantbot.sqlite3"), migrate=False)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test that meets a retry waits tenths of seconds, not the real seconds of backoff."""
    monkeypatch.setattr("bot.platforms.adapter.BACKOFF_FACTOR", 0.05)
