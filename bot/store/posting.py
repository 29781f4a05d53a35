"""Queries behind exactly-once posting and `plantbot status`.

The `posts` table is the ledger: a row is written as an *intent* and committed before the write
request goes out, then completed with the remote id or the error.  Its unique key
(observation, model version, action) is what makes a second post for the same observation and
model version impossible, even from two processes at once.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.domain import PROPOSAL_KINDS, DecisionStatus, PostStatus, WithdrawalStatus, utcnow
from bot.store.models import CycleRow, DecisionRow, KeyValueRow, ObservationRow, PostRow
from bot.store.values import DecisionValue, ObservationValue, PostValue, V, value_of


def _value(cls: type[V], row: object | None) -> V | None:
    return None if row is None else value_of(cls, row)


def get_decision(s: Session, decision_id: int) -> DecisionValue | None:
    return _value(DecisionValue, s.get(DecisionRow, decision_id))


def get_observation(s: Session, observation_id: int) -> ObservationValue | None:
    return _value(ObservationValue, s.get(ObservationRow, observation_id))


def get_post(s: Session, post_id: int) -> PostValue | None:
    return _value(PostValue, s.get(PostRow, post_id))


def find_post(s: Session, observation_id: int, model_version: str, action: str = "post") -> PostValue | None:
    """The ledger row for this observation and model version, whichever decision made it."""
    return _value(PostValue, s.scalar(select(PostRow).where(
        PostRow.observation_id == observation_id, PostRow.model_version == model_version,
        PostRow.action == action)))


def list_posts(s: Session, action: str | None = None) -> list[PostValue]:
    """The ledger in the order it was written (every row, or those of one action: post, withdraw)."""
    stmt = select(PostRow).order_by(PostRow.id)
    if action is not None:
        stmt = stmt.where(PostRow.action == action)
    return [value_of(PostValue, row) for row in s.scalars(stmt)]


INTENT_LEASE = timedelta(minutes=15)  # longer than any one send can take (rate-limit waits, retries, timeouts)


def process_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _sender_may_be_alive(post: PostRow | PostValue, now: datetime) -> bool:
    """True while the process that opened the intent may still be waiting for its answer."""
    if post.claimed_at is not None and now - post.claimed_at > INTENT_LEASE:
        return False
    host, _, pid_text = (post.owner or "").rpartition(":")
    if not pid_text.isdigit() or host != socket.gethostname():
        return post.claimed_at is not None  # another machine: trust the lease alone
    pid = int(pid_text)
    if pid == os.getpid():
        return True  # another thread of this very process is sending it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False  # that process is gone: a crash left the intent open
    except PermissionError:
        return True
    return True


def open_intents(s: Session, now: datetime | None = None) -> list[PostValue]:
    """Intents whose outcome is unknown because their sender died (a crash, a kill -9) or ran out its lease.

    Intents a live process (the review UI, another command) is still sending are left alone, so
    reconciliation never mistakes a slow send for a lost one and sends it a second time.
    """
    at = now or utcnow()
    rows = s.scalars(select(PostRow).where(PostRow.status == PostStatus.INTENT).order_by(PostRow.id))
    return [value_of(PostValue, p) for p in rows if not _sender_may_be_alive(p, at)]


def due_retries(s: Session, mode: str, now: datetime | None = None) -> list[PostValue]:
    """Posts of this mode that failed in a way worth trying again and whose backoff has passed."""
    at = now or utcnow()
    return [value_of(PostValue, p) for p in s.scalars(
        select(PostRow)
        .where(PostRow.status == PostStatus.RETRY, PostRow.mode == mode, PostRow.action == "post",
               (PostRow.next_attempt_at.is_(None)) | (PostRow.next_attempt_at <= at))
        .order_by(PostRow.next_attempt_at, PostRow.id))]


def approved_unposted(s: Session, mode: str = "auto") -> list[int]:
    """Decision ids approved for posting in this mode that have no ledger row yet, oldest first."""
    has_post = select(PostRow.id).where(
        PostRow.observation_id == DecisionRow.observation_id,
        PostRow.model_version == DecisionRow.model_version,
        PostRow.action == "post").exists()
    q = (select(DecisionRow.id)
         .where(DecisionRow.status == DecisionStatus.APPROVED, DecisionRow.mode == mode,
                DecisionRow.kind.in_(PROPOSAL_KINDS), ~has_post)
         .order_by(DecisionRow.id))
    return list(s.scalars(q))


def set_decision_status(s: Session, decision_id: int, status: DecisionStatus, reason: str | None = None) -> None:
    row = s.get(DecisionRow, decision_id)
    if row is None:
        return
    row.status = status
    if reason and reason not in (row.reasons or []):
        row.reasons = [*(row.reasons or []), reason]


def mark_posted(s: Session, post_id: int, remote_id: int) -> None:
    """Completes an intent (or a retry found to exist) and moves its decision to `posted`."""
    post = s.get(PostRow, post_id)
    if post is None:
        return
    post.status, post.remote_id, post.error = PostStatus.POSTED, remote_id, None
    post.next_attempt_at, post.completed_at = None, utcnow()
    set_decision_status(s, post.decision_id, DecisionStatus.POSTED)


def mark_failed(s: Session, post_id: int, error: str) -> None:
    """A refusal that retrying cannot fix (4xx other than 429): recorded, never sent again."""
    post = s.get(PostRow, post_id)
    if post is None:
        return
    post.status, post.error, post.next_attempt_at, post.completed_at = PostStatus.FAILED, error, None, utcnow()
    set_decision_status(s, post.decision_id, DecisionStatus.FAILED)


def mark_retry(s: Session, post_id: int, error: str, next_attempt_at: datetime) -> None:
    """Nothing (known to be) written yet; the posting round tries again after `next_attempt_at`."""
    post = s.get(PostRow, post_id)
    if post is None:
        return
    post.status, post.error, post.next_attempt_at = PostStatus.RETRY, error, next_attempt_at


def mark_skipped(s: Session, post_id: int, reason: str) -> None:
    post = s.get(PostRow, post_id)
    if post is None:
        return
    post.status, post.error, post.next_attempt_at, post.completed_at = PostStatus.SKIPPED, reason, None, utcnow()


class ClaimConflict(LookupError):
    """Another process holds (or just took) the intent for this post; the caller leaves it to them."""


def claim_intent(s: Session, *, decision: DecisionValue, kind: str, taxon_id: int | None, body: str,
                 user_login: str, mode: str, existing: PostValue | None) -> PostValue:
    """Writes (or re-opens) the intent row; the caller commits before sending anything.

    A concurrent insert for the same observation and model version fails on the unique key, so
    two processes can never both hold an intent for one post.
    """
    now = utcnow()
    if existing is None:
        post = PostRow(decision_id=decision.id, observation_id=decision.observation_id,
                       model_version=decision.model_version, action="post", kind=kind, taxon_id=taxon_id,
                       body=body, user_login=user_login, mode=mode, status=PostStatus.INTENT, attempts=1,
                       created_at=now, owner=process_owner(), claimed_at=now)
        s.add(post)
        try:
            s.flush()
        except IntegrityError:  # the unique key: another process claimed it first
            raise ClaimConflict(f"observation {decision.observation_id} is being posted elsewhere") from None
        return value_of(PostValue, post)
    # Re-open only from a state that allows it; a conditional UPDATE so a racing process loses.
    result = s.execute(
        update(PostRow)
        .where(PostRow.id == existing.id, PostRow.status.in_((PostStatus.RETRY,)))
        .values(status=PostStatus.INTENT, kind=kind, taxon_id=taxon_id, body=body, user_login=user_login, mode=mode,
                decision_id=decision.id, attempts=PostRow.attempts + 1, next_attempt_at=None,
                owner=process_owner(), claimed_at=now)
        .execution_options(synchronize_session=False))
    if getattr(result, "rowcount", 0) != 1:
        raise ClaimConflict(f"post {existing.id} is being handled elsewhere")
    reopened = s.get(PostRow, existing.id)
    if reopened is None:
        raise ClaimConflict(f"post {existing.id} is being handled elsewhere")
    s.refresh(reopened)
    return value_of(PostValue, reopened)


def backoff(attempts: int, base_seconds: float = 60.0, cap_seconds: float = 6 * 3600.0) -> timedelta:
    """Exponential backoff: 1, 2, 4 ... minutes, capped at six hours."""
    return timedelta(seconds=min(cap_seconds, base_seconds * 2 ** max(0, attempts - 1)))


def get_value(s: Session, key: str) -> str | None:
    row = s.get(KeyValueRow, key)
    return row.value if row else None


def get_values(s: Session, prefix: str) -> dict[str, str]:
    """Every stored value whose key starts with `prefix`, by key."""
    rows = s.scalars(select(KeyValueRow).where(KeyValueRow.key.startswith(prefix, autoescape=True)))
    return {r.key: r.value for r in rows}


def set_value(s: Session, key: str, value: str) -> None:
    row = s.get(KeyValueRow, key)
    if row is None:
        s.add(KeyValueRow(key=key, value=value, updated_at=utcnow()))
    else:
        row.value, row.updated_at = value, utcnow()


@dataclass
class StatusReport:
    """What `plantbot status` shows."""

    last_cycle: dict[str, object] | None
    queue: dict[str, int]
    posts: dict[str, int]
    errors_24h: list[str] = field(default_factory=list)
    retry_due: int = 0


def post_state_counts(s: Session) -> dict[str, int]:
    """Posts by current state, each counted once: a post whose withdrawal went out is `withdrawn`
    (the withdrawal is a second ledger row, not a second post); any other post counts by its status."""
    withdrawn = select(PostRow.observation_id, PostRow.model_version).where(
        PostRow.action == "withdraw", PostRow.status == PostStatus.POSTED)
    gone = {(o, v) for o, v in s.execute(withdrawn).all()}
    counts: dict[str, int] = {}
    for oid, version, status in s.execute(select(PostRow.observation_id, PostRow.model_version, PostRow.status)
                                          .where(PostRow.action == "post")).all():
        withdrawn_now = status == PostStatus.POSTED and (oid, version) in gone
        state = str(WithdrawalStatus.WITHDRAWN if withdrawn_now else status)
        counts[state] = counts.get(state, 0) + 1
    return counts


def status_report(s: Session, now: datetime | None = None) -> StatusReport:
    at = now or utcnow()
    last = s.scalar(select(CycleRow).order_by(CycleRow.started_at.desc(), CycleRow.id.desc()).limit(1))
    last_cycle: dict[str, object] | None = None
    if last is not None:
        last_cycle = {"id": last.id, "started_at": last.started_at.isoformat(sep=" ", timespec="seconds"),
                      "finished_at": (last.finished_at.isoformat(sep=" ", timespec="seconds")
                                      if last.finished_at else None),
                      "status": last.status, "seen": last.seen, "decided": last.decided,
                      "photos_failed": last.photos_failed, "counts": dict(last.counts or {}),
                      "dtype": last.dtype}
    queue = {k: n for k, n in s.execute(
        select(DecisionRow.kind, func.count()).where(DecisionRow.status == DecisionStatus.PROPOSED)
        .group_by(DecisionRow.kind)).all()}
    posts = post_state_counts(s)
    since = at - timedelta(hours=24)
    errors: list[str] = []
    for c in s.scalars(select(CycleRow).where(CycleRow.started_at >= since).order_by(CycleRow.id)):
        errors += [f"cycle {c.id}: {e}" for e in (c.errors or [])]
    for p in s.scalars(select(PostRow).where(PostRow.status.in_((PostStatus.FAILED, PostStatus.RETRY)),
                                             PostRow.created_at >= since).order_by(PostRow.id)):
        errors.append(f"post {p.id} ({p.status}) on observation {p.observation_id}: {p.error}")
    retry_due = len(due_retries(s, "auto", at))
    return StatusReport(last_cycle=last_cycle, queue=queue, posts=posts, errors_24h=errors, retry_due=retry_due)
