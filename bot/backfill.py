"""`plantbot backfill`: decide older observations on purpose, without touching the live cursor.

The live poll starts at "now" (see `bot.start`); a community that also wants help with its recent
past asks for it here, for a date range.  A backfill runs the same stages as a cycle (same photo
and request budgets, same decision rule, one decision per observation and model version) over the
ids below the live cursor, oldest first.  Its own cursor, one per range, makes it resumable: run it
again and it goes on where it stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING

from bot.cycle import CycleRunner, CycleSummary, cursor_key
from bot.domain import RunMode
from bot.start import ensure_cursor
from bot.store import records

if TYPE_CHECKING:
    from bot.classifier import Classifier
    from bot.config import Config
    from bot.platforms.base import Platform
    from bot.store.db import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackfillRange:
    since: date
    until: date | None = None  # exclusive; None: up to the live cursor
    limit: int | None = None  # at most this many observations this run (the rest: next run)

    def key(self, live_key: str) -> str:
        return f"backfill|{self.since}|{self.until or ''}|{live_key}"


def _midnight(day: date | None) -> datetime | None:
    return datetime.combine(day, time(), UTC) if day is not None else None


class BackfillRunner(CycleRunner):
    """A cycle whose poll walks a date range below the live cursor instead of the newest observations."""

    def __init__(self, cfg: Config, store: Store, platform: Platform, classifier: Classifier, mode: RunMode,
                 window: BackfillRange, progress: Callable[[int], None] | None = None) -> None:
        super().__init__(cfg, store, platform, classifier, mode)
        self.window = window
        self.progress = progress or (lambda n: None)

    def _retry_left_over(self) -> None:
        """Left-overs belong to the live cycle; a backfill only reads its own range."""

    def _poll_new(self) -> None:
        live_key = cursor_key(self.cfg, self.platform)
        live = ensure_cursor(self.cfg, self.store, self.platform, live_key)  # the live start never moves back
        key = self.window.key(live_key)
        with self.store.session() as db:
            cursor = records.get_cursor(db, key)
        pages = self.platform.get_older_observations(cursor, live + 1, _midnight(self.window.since),
                                                     _midnight(self.window.until))
        limit = self.window.limit
        for page in pages:
            observations, last_id = page.observations, page.last_id
            if limit is not None and self.summary.seen + len(observations) > limit:
                observations = observations[:max(0, limit - self.summary.seen)]
                last_id = observations[-1].id if observations else cursor
            self.summary.seen += len(observations)
            with self.store.session() as db:
                records.upsert_observations(db, observations, self.platform.name)
                self._record_rejected(db, page.rejected)
            self._process(observations)
            with self.store.session() as db:
                records.set_cursor(db, key, last_id)
            self.progress(len(observations))
            if limit is not None and self.summary.seen >= limit:
                return


def run_backfill(cfg: Config, store: Store, platform: Platform, classifier: Classifier, window: BackfillRange,
                 *, mode: RunMode, progress: Callable[[int], None] | None = None) -> CycleSummary:
    """Decides the range's observations in `mode`, as a cycle would; the live cursor stays where it is."""
    return BackfillRunner(cfg, store, platform, classifier, mode, window, progress).run()
