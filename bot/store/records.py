"""Queries for the poll cycle: observations seen, photos, decisions, the cursor and cycles.

Writes are idempotent (upserts, and a decision is only added when none exists for that
observation and model version), so a cycle re-run after a crash never doubles anything.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.domain import CycleStatus, Decision, DecisionStatus, Observation, PhotoStatus, utcnow
from bot.store.models import (
    CursorRow,
    CycleRow,
    DecisionRow,
    ObservationRow,
    PhotoRow,
    PredictionRow,
    RejectedRow,
)
from bot.store.values import DecisionValue, PhotoRecordValue, value_of


def get_cursor(s: Session, key: str) -> int:
    row = s.get(CursorRow, key)
    return row.last_id if row else 0


def find_cursor(s: Session, key: str) -> int | None:
    """The cursor, or None when this query has never been polled (so its start is still to be chosen)."""
    row = s.get(CursorRow, key)
    return row.last_id if row else None


def set_cursor(s: Session, key: str, last_id: int) -> None:
    """Moves the cursor forward only: a stale page can never rewind it."""
    row = s.get(CursorRow, key)
    if row is None:
        s.add(CursorRow(key=key, last_id=last_id, updated_at=utcnow()))
    elif last_id > row.last_id:
        row.last_id = last_id
        row.updated_at = utcnow()


def upsert_observations(s: Session, observations: Iterable[Observation], platform: str) -> None:
    now = utcnow()
    for obs in observations:
        row = s.get(ObservationRow, obs.id)
        if row is None:
            row = ObservationRow(id=obs.id, platform=platform, first_seen_at=now, attempts=0)
            s.add(row)
        row.user_id, row.user_login = obs.user.id, obs.user.login
        row.taxon_id = obs.taxon.id if obs.taxon else None
        row.taxon_name = obs.taxon.name if obs.taxon else None
        row.community_taxon_id = obs.community_taxon_id
        row.iconic_taxon_name = obs.iconic_taxon_name
        row.quality_grade = obs.quality_grade
        row.captive = obs.captive
        row.uri = obs.uri
        row.n_photos = len(obs.photos)
        row.last_seen_at = now
        store_context(row, obs, now)
        known = {p.photo_id: p for p in s.scalars(select(PhotoRow).where(PhotoRow.observation_id == obs.id))}
        for photo in obs.photos:
            prow = known.get(photo.id)
            if prow is None:
                s.add(PhotoRow(observation_id=obs.id, photo_id=photo.id, position=photo.position, url=photo.url))
            else:
                prow.position, prow.url = photo.position, photo.url
    s.flush()


def store_context(row: ObservationRow, obs: Observation, now: datetime) -> None:
    """What the review card shows besides photos and predictions, as read just now."""
    row.observed_at = _naive(obs.observed_at)
    row.place_guess = obs.place_guess[:500] if obs.place_guess else None
    row.latitude, row.longitude = obs.latitude, obs.longitude
    row.positional_accuracy = obs.positional_accuracy
    row.description = obs.description
    row.context = observation_context(obs)
    row.context_at = now


def observation_context(obs: Observation) -> dict[str, Any]:
    """Identifications and comments as JSON-able records (hidden ones left out, as the site shows them)."""
    idents = [{"id": i.id, "user": i.user.login, "taxon_id": i.taxon.id if i.taxon else None,
               "taxon_name": i.taxon.name if i.taxon else None, "rank": i.taxon.rank if i.taxon else None,
               "ancestor_ids": list(i.taxon.ancestor_ids) if i.taxon else [],
               "current": i.current, "created_at": _iso(i.created_at), "category": i.category}
              for i in obs.identifications if not i.hidden]
    comments = [{"id": c.id, "user": c.user.login, "body": c.body, "created_at": _iso(c.created_at)}
                for c in obs.comments if not c.hidden]
    return {"identifications": idents, "comments": comments,
            "taxon_ancestors": list(obs.taxon.ancestor_ids) if obs.taxon else []}


def _naive(when: datetime | None) -> datetime | None:
    """Naive UTC, as every time in the store."""
    if when is None or when.tzinfo is None:
        return when
    return when.astimezone(UTC).replace(tzinfo=None)


def _iso(when: datetime | None) -> str | None:
    value = _naive(when)
    return value.isoformat(timespec="seconds") if value else None


def record_rejected(s: Session, observation_id: int, platform: str, reason: str) -> None:
    """An observation the parser refused still gets a row, so it is counted and never silently lost."""
    now = utcnow()
    row = s.get(ObservationRow, observation_id)
    if row is None:
        s.add(ObservationRow(id=observation_id, platform=platform, first_seen_at=now, last_seen_at=now,
                             attempts=0, last_error=reason))
    else:
        row.last_error, row.last_seen_at = reason, now
    s.flush()


@dataclass(frozen=True)
class RejectedRecord:
    raw_id: str
    reason: str
    platform: str
    times: int
    last_seen_at: datetime


def record_rejected_entry(s: Session, platform: str, raw_id: str, reason: str, cycle_id: int | None) -> None:
    """Keeps a refused record with its reason; one served again (every poll) only counts up."""
    now = utcnow()
    row = s.scalar(select(RejectedRow).where(RejectedRow.platform == platform, RejectedRow.raw_id == raw_id[:100],
                                             RejectedRow.reason == reason))
    if row is None:
        s.add(RejectedRow(platform=platform, raw_id=raw_id[:100], reason=reason, cycle_id=cycle_id,
                          first_seen_at=now, last_seen_at=now, times=1))
    else:
        row.times += 1
        row.last_seen_at, row.cycle_id = now, cycle_id
    s.flush()


def list_rejected(s: Session, limit: int = 1000) -> list[RejectedRecord]:
    """Refused records, most recently seen first."""
    rows = s.scalars(select(RejectedRow).order_by(RejectedRow.last_seen_at.desc(), RejectedRow.id.desc())
                     .limit(limit))
    return [RejectedRecord(r.raw_id, r.reason, r.platform, r.times, r.last_seen_at) for r in rows]


def record_photo_result(s: Session, observation_id: int, photo_id: int, status: PhotoStatus,
                        error: str | None, nbytes: int | None, url: str | None = None) -> None:
    row = s.scalar(select(PhotoRow).where(PhotoRow.observation_id == observation_id, PhotoRow.photo_id == photo_id))
    if row is None:
        return
    row.status, row.error, row.bytes, row.updated_at = status, error, nbytes, utcnow()
    if url:
        row.url = url


def note_attempt(s: Session, observation_id: int, error: str) -> int:
    """Counts a cycle that could not decide an observation; returns the attempts so far."""
    row = s.get(ObservationRow, observation_id)
    if row is None:
        return 0
    row.attempts += 1
    row.last_error = error
    return row.attempts


def decided_ids(s: Session, ids: Sequence[int], model_name: str, model_version: str) -> set[int]:
    if not ids:
        return set()
    q = select(DecisionRow.observation_id).where(
        DecisionRow.observation_id.in_(ids), DecisionRow.model_name == model_name,
        DecisionRow.model_version == model_version,
    )
    return set(s.scalars(q))


def undecided_ids(s: Session, platform: str, max_attempts: int, limit: int = 1000) -> list[int]:
    """Observations seen before but never decided: left over by a failure or a crash.

    Any model's decision counts: a new model version decides new observations, it does not silently
    re-decide (and in auto mode re-post on) the whole history.
    """
    decided = select(DecisionRow.observation_id)
    q = (select(ObservationRow.id)
         .where(ObservationRow.platform == platform, ObservationRow.attempts < max_attempts,
                ObservationRow.id.not_in(decided))
         .order_by(ObservationRow.id).limit(limit))
    return list(s.scalars(q))


def record_decision(s: Session, decision: Decision, *, model_name: str, model_version: str, cutoff: float,
                    mode: str, dry_run: bool, status: DecisionStatus, cycle_id: int | None,
                    temperature: float | None = None) -> int | None:
    """Adds the decision and its top-k unless this observation already has one for this model version."""
    existing = s.scalar(select(DecisionRow.id).where(
        DecisionRow.observation_id == decision.observation_id, DecisionRow.model_name == model_name,
        DecisionRow.model_version == model_version))
    if existing is not None:
        return None
    row = DecisionRow(
        observation_id=decision.observation_id, cycle_id=cycle_id, kind=decision.kind.value,
        taxon_id=decision.taxon_id, taxon_name=decision.taxon_name, rank=decision.rank, score=decision.score,
        reasons=list(decision.reasons), n_photos=decision.n_photos, model_name=model_name,
        model_version=model_version, cutoff=cutoff, dry_run=dry_run, mode=mode, status=status,
        created_at=utcnow(), rule=decision.rule or None, temperature=temperature,
        flora=decision.flora, flora_name=decision.flora_name,
        flora_removed=[{"taxon_id": r.taxon_id, "name": r.name, "prob": r.prob} for r in decision.flora_removed]
        if decision.flora else None,
    )
    s.add(row)
    s.flush()
    ranked = [("species", i, r) for i, r in enumerate(decision.top_species)]
    ranked += [(rank, 0, r) for rank, r in (("genus", decision.best_genus), ("family", decision.best_family)) if r]
    for rank, position, r in ranked:
        s.add(PredictionRow(decision_id=row.id, rank=rank, position=position, taxon_id=r.taxon_id,
                            name=r.name, prob=r.prob))
    return row.id


def process_owner() -> str:
    """"host:pid" of this process, recorded on what it runs so another process can tell whether it died."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_alive(owner: str | None) -> bool:
    """True unless `owner` is a process of this host that no longer exists (or nobody is recorded)."""
    host, _, pid = (owner or "").rpartition(":")
    if not host or not pid.isdigit():
        return False
    if host != socket.gethostname():
        return True  # another machine's cycle: it may well be running
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def abandon_dead_cycles(s: Session) -> int:
    """Cycles left `running` by a process that died (kill -9, power loss) become `abandoned`."""
    n = 0
    for row in s.scalars(select(CycleRow).where(CycleRow.status == CycleStatus.RUNNING)):
        if not _owner_alive(row.owner):
            row.status, row.finished_at = CycleStatus.ABANDONED, utcnow()
            row.errors = [*list(row.errors or []), "abandoned: its process ended before the cycle finished"]
            n += 1
    return n


def start_cycle(s: Session, dry_run: bool, dtype: str | None = None) -> int:
    """A running cycle; `dtype` is the classifier's precision, kept so a change of figures can be traced.

    Cycles a dead process left `running` are marked `abandoned` first.
    """
    abandon_dead_cycles(s)
    row = CycleRow(started_at=utcnow(), status=CycleStatus.RUNNING, dry_run=dry_run, counts={}, timings={}, errors=[],
                   dtype=dtype, owner=process_owner())
    s.add(row)
    s.flush()
    return row.id


def finish_cycle(s: Session, cycle_id: int, *, status: CycleStatus, seen: int, decided: int, photos_failed: int,
                 counts: dict[str, int], timings: dict[str, float], errors: list[str]) -> None:
    row = s.get(CycleRow, cycle_id)
    if row is None:
        return
    row.finished_at = utcnow()
    row.status, row.seen, row.decided, row.photos_failed = status, seen, decided, photos_failed
    row.counts, row.timings, row.errors = dict(counts), dict(timings), list(errors)


def decision_counts(s: Session, model_version: str | None = None) -> dict[str, int]:
    q: Any = select(DecisionRow.kind, func.count()).group_by(DecisionRow.kind)
    if model_version is not None:
        q = q.where(DecisionRow.model_version == model_version)
    return {kind: n for kind, n in s.execute(q).all()}


def used_cutoffs(s: Session, kinds: Sequence[str] = ("species", "genus", "family")) -> list[tuple[str, float, str]]:
    """(rank, cutoff, rule) as recorded with the proposals: what the daemon actually held them to."""
    q = (select(func.coalesce(DecisionRow.rank, DecisionRow.kind), DecisionRow.cutoff,
                func.coalesce(DecisionRow.rule, "")).where(DecisionRow.kind.in_(tuple(kinds))).distinct())
    return sorted((str(r), float(c), str(u)) for r, c, u in s.execute(q).all())


def first_decisions(s: Session, kinds: Sequence[str]) -> dict[str, DecisionValue]:
    """The earliest decision of each of `kinds` that has one (the demo shows one example per kind)."""
    first = (select(func.min(DecisionRow.id)).where(DecisionRow.kind.in_(tuple(kinds)))
             .group_by(DecisionRow.kind).scalar_subquery())
    rows = s.scalars(select(DecisionRow).where(DecisionRow.id.in_(first)))
    return {row.kind: value_of(DecisionValue, row) for row in rows}


def list_decisions(s: Session, observation_ids: Sequence[int] | None = None) -> list[DecisionValue]:
    """Every decision (or those on these observations), in the order they were made."""
    stmt = select(DecisionRow).order_by(DecisionRow.id)
    if observation_ids is not None:
        stmt = stmt.where(DecisionRow.observation_id.in_(list(observation_ids)))
    return [value_of(DecisionValue, row) for row in s.scalars(stmt)]


def list_photo_records(s: Session, observation_id: int) -> list[PhotoRecordValue]:
    """What the cycle recorded for each photo of one observation, in position order."""
    stmt = select(PhotoRow).where(PhotoRow.observation_id == observation_id).order_by(PhotoRow.position)
    return [value_of(PhotoRecordValue, row) for row in s.scalars(stmt)]
