"""The media-usage ledger: bytes downloaded per hour bucket, so media budgets survive restarts.

The API request budget needs no table: pyinaturalist's file-locked SQLite bucket (at
`[platform] ratelimit_path`) already holds every request of the last 24 h, shared by all processes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.sqlite import insert

from bot.store.db import Store
from bot.store.models import MediaUsageRow


class StoreMediaLedger:
    """`photos.MediaLedger` on the `media_usage` table (one row per hour bucket, naive UTC)."""

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
