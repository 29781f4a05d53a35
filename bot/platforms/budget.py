"""Persisted budgets: media bytes per hour in the store, so the caps survive restarts.

The API request budget needs no table: pyinaturalist's file-locked SQLite bucket (at
`[platform] ratelimit_path`) already holds every request of the last 24 h, shared by all processes;
`AdapterBase.budget_status()` reads it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.dialects.sqlite import insert

from bot.store.models import MediaUsageRow

if TYPE_CHECKING:
    from bot.config import Config
    from bot.photos import MediaBudget
    from bot.store.db import Store


class StoreMediaLedger:
    """MediaLedger on the store's `media_usage` table (one row per hour bucket, naive UTC)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def usage_since(self, since: datetime) -> int:
        with self.store.session() as s:
            total = s.scalar(select(func.coalesce(func.sum(MediaUsageRow.bytes), 0)).where(MediaUsageRow.hour >= since))
        return int(total or 0)

    def add(self, hour: datetime, nbytes: int) -> None:
        stmt = insert(MediaUsageRow).values(hour=hour, bytes=nbytes).on_conflict_do_update(
            index_elements=[MediaUsageRow.hour], set_={"bytes": MediaUsageRow.bytes + nbytes})
        with self.store.session() as s:  # an upsert: safe when two processes add to the same hour
            s.execute(stmt)


def media_budget(cfg: Config, store: Store | None = None) -> MediaBudget:
    """The media budget for a run: persisted in `store` when given, else in memory."""
    from bot.photos import MediaBudget

    return MediaBudget.from_config(cfg, StoreMediaLedger(store) if store is not None else None)
