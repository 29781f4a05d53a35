"""Fixtures every test module shares: a fresh store, and retries that wait tenths of seconds.

Helpers live in one place each: `tests/support/simconfig.py` writes the one simulator config,
`tests/post_fakes.py` the in-memory platform, `tests/platforms/conftest.py` the small simulator world.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A freshly migrated store at `tmp_path/plantbot.sqlite3` (where `post_fakes.make_config` points)."""
    s = Store(tmp_path / "plantbot.sqlite3")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test that meets a retry waits tenths of seconds, not the real seconds of backoff."""
    monkeypatch.setattr("bot.platforms.adapter.BACKOFF_FACTOR", 0.05)
