"""Where polling starts: the first cursor of a query, chosen once from `[platform] start`.

A bot for *new* observations must not walk the platform's whole history on its first day, so a
database with no cursor for the configured query starts at the newest matching observation
("now"), at the first one created on or after a date, or after a given id.  The choice is made
once, stored with the cursor, logged, and shown by `plantbot status`; older observations are only
ever decided on purpose, by `plantbot backfill`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bot.config import Config, start_point
from bot.store import records
from bot.store.posting import get_values, set_value

if TYPE_CHECKING:
    from bot.platforms.base import Platform
    from bot.store.db import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StartRecord:
    """How a query's cursor was first set, as `status` shows it."""

    key: str
    setting: str  # the [platform] start value it was chosen from
    cursor: int  # polling began after this id
    chosen_at: str


def start_state_key(cursor_key: str) -> str:
    return f"start|{cursor_key}"


def resolve_start_id(cfg: Config, platform: Platform) -> int:
    """The id polling starts after, from `[platform] start` (at most one request; 0 on an empty platform)."""
    point = start_point(cfg.platform.start)
    if point.kind == "id" and point.after_id is not None:
        return point.after_id
    if point.kind == "date" and point.on is not None:
        first = platform.get_first_id_since(point.on)
        if first is not None:
            return first - 1
    return platform.get_newest_id() or 0  # "now", or a date after which nothing was created yet


def ensure_cursor(cfg: Config, store: Store, platform: Platform, key: str) -> int:
    """The query's cursor; on its first poll, the start is chosen, stored and logged first."""
    with store.session() as db:
        cursor = records.find_cursor(db, key)
    if cursor is not None:
        return cursor
    cursor = resolve_start_id(cfg, platform)
    record = StartRecord(key, str(cfg.platform.start), cursor, datetime.now(UTC).isoformat(timespec="seconds"))
    with store.session() as db:
        if records.find_cursor(db, key) is None:  # another process may have chosen meanwhile: keep its choice
            records.set_cursor(db, key, cursor)
            set_value(db, start_state_key(key), json.dumps(record.__dict__))
        cursor = records.get_cursor(db, key)
    log.info("polling %s starts after observation id %s ([platform] start = %s: %s)", key, cursor,
             cfg.platform.start, start_point(cfg.platform.start))
    return cursor


def get_start_records(store: Store) -> list[StartRecord]:
    """Every query's chosen start, for `plantbot status`."""
    with store.session() as db:
        values = get_values(db, "start|")
    return [StartRecord(**json.loads(v)) for _, v in sorted(values.items())]
