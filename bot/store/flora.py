"""Queries for the cached local flora and the state of its last refresh.

The list is replaced whole, in one transaction, only by a refresh that read every page; a failed or
cut-short refresh records its error beside the list and leaves the list itself alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from bot.store.models import FloraTaxonRow, KeyValueRow
from bot.store.records import utcnow


@dataclass(frozen=True)
class FloraRefreshState:
    """What `status` says about the flora: the last attempt, and the list in use."""

    source: str
    attempted_at: str | None
    ok: bool
    requests: int
    error: str | None
    taxa: int  # taxa in the cached list
    fetched_at: datetime | None  # when the cached list was read


def _state_key(source: str) -> str:
    return f"flora_refresh:{source}"


def get_flora_taxa(s: Session, source: str) -> dict[int, int]:
    """Taxon id -> observation count of the cached list (empty when never refreshed)."""
    rows = s.execute(select(FloraTaxonRow.taxon_id, FloraTaxonRow.count).where(FloraTaxonRow.source == source))
    return {int(tid): int(n) for tid, n in rows.all()}


def replace_flora(s: Session, source: str, taxa: Mapping[int, tuple[str, int]]) -> None:
    """The new list (taxon id -> (name, count)) in place of the old one, in the caller's transaction."""
    s.execute(delete(FloraTaxonRow).where(FloraTaxonRow.source == source))
    now = utcnow()
    for taxon_id, (name, count) in taxa.items():
        s.add(FloraTaxonRow(source=source, taxon_id=taxon_id, name=name, count=count, fetched_at=now))
    s.flush()


def record_refresh(s: Session, source: str, *, ok: bool, requests: int, error: str | None) -> None:
    doc: dict[str, Any] = {"at": utcnow().isoformat(timespec="seconds"), "ok": ok, "requests": requests,
                           "error": error}
    row = s.get(KeyValueRow, _state_key(source))
    if row is None:
        s.add(KeyValueRow(key=_state_key(source), value=json.dumps(doc), updated_at=utcnow()))
    else:
        row.value, row.updated_at = json.dumps(doc), utcnow()


def get_refresh_state(s: Session, source: str) -> FloraRefreshState:
    row = s.get(KeyValueRow, _state_key(source))
    doc: dict[str, Any] = json.loads(row.value) if row else {}
    taxa, fetched = s.execute(select(func.count(), func.max(FloraTaxonRow.fetched_at))
                              .where(FloraTaxonRow.source == source)).one()
    return FloraRefreshState(source=source, attempted_at=doc.get("at"), ok=bool(doc.get("ok", False)),
                             requests=int(doc.get("requests", 0)), error=doc.get("error"), taxa=int(taxa),
                             fetched_at=fetched)
