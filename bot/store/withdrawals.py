"""What a retracted model version left standing, and each moderator's own posted identifications.

In review mode identifications are posted under each moderator's own account, so only that
moderator can withdraw them: `plantbot retract` marks the version retracted and lists who still has
what; the review UI's Withdraw page reads the same rows here.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.domain import DecisionStatus, PostStatus, utcnow
from bot.store.audit import current_posted_identifications, standing_identifications
from bot.store.models import DecisionRow, KeyValueRow, PostRow, ReviewActionRow
from bot.store.values import PostValue, value_of

RETRACTED_PREFIX = "retracted-model-version:"


@dataclass(frozen=True)
class StandingPost:
    """A posted identification that is still current as far as our ledger knows."""

    post_id: int
    decision_id: int
    observation_id: int
    remote_id: int
    taxon_id: int | None
    taxon_name: str | None
    model_version: str
    user_login: str
    retracted: bool  # its model version was retracted: its author should withdraw it


def mark_retracted(s: Session, version: str) -> None:
    """Remembers that `version` was retracted (the Withdraw page lists what it left standing)."""
    key = RETRACTED_PREFIX + version
    now = utcnow()
    row = s.get(KeyValueRow, key)
    if row is None:
        s.add(KeyValueRow(key=key, value=now.isoformat(timespec="seconds"), updated_at=now))


def retracted_versions(s: Session) -> list[str]:
    keys = s.scalars(select(KeyValueRow.key).where(KeyValueRow.key.startswith(RETRACTED_PREFIX)))
    return sorted(k[len(RETRACTED_PREFIX):] for k in keys)


def _standing(s: Session, posts: list[PostValue], retracted: set[str]) -> list[StandingPost]:
    names = dict(s.execute(select(DecisionRow.id, DecisionRow.taxon_name)
                           .where(DecisionRow.id.in_([p.decision_id for p in posts]))).all())
    return [StandingPost(p.id, p.decision_id, p.observation_id, p.remote_id or 0, p.taxon_id,
                         names.get(p.decision_id), p.model_version, p.user_login, p.model_version in retracted)
            for p in posts]


def left_standing(s: Session) -> dict[str, list[StandingPost]]:
    """Per moderator login, the identifications of retracted versions that are still current."""
    versions = retracted_versions(s)
    out: dict[str, list[StandingPost]] = {}
    for post in _standing(s, [p for v in versions for p in current_posted_identifications(s, v)], set(versions)):
        out.setdefault(post.user_login, []).append(post)
    return dict(sorted(out.items()))


def own_posted_identifications(s: Session, login: str, limit: int = 200) -> list[StandingPost]:
    """The moderator's own posted, not withdrawn identifications, retracted versions first, newest first."""
    stmt = standing_identifications().where(PostRow.user_login == login).order_by(PostRow.id.desc()).limit(limit)
    posts = [value_of(PostValue, row) for row in s.scalars(stmt)]
    standing = _standing(s, posts, set(retracted_versions(s)))
    return sorted(standing, key=lambda p: not p.retracted)


def get_standing_post(s: Session, post_id: int) -> StandingPost | None:
    """One posted identification by ledger id (None when it is not a posted, unwithdrawn one)."""
    post = s.get(PostRow, post_id)
    if post is None or post.action != "post" or post.kind != "identification" or post.status != PostStatus.POSTED:
        return None
    found = _standing(s, [value_of(PostValue, post)], set(retracted_versions(s)))
    return found[0]


# --- the withdraw ledger (bot.report.retract sends; these rows make it exactly-once) -----------------


def open_withdraw_intent(s: Session, post_id: int, user_login: str) -> tuple[int, bool] | None:
    """Writes (or re-opens) the withdraw intent of a posted identification, before any request.

    Returns its ledger id and whether an intent was already open (a crash mid-send: reconcile it by
    reading the identification back); None when `post_id` is not in the ledger.
    """
    post = s.get(PostRow, post_id)
    if post is None:
        return None
    row = s.scalars(select(PostRow).where(PostRow.observation_id == post.observation_id,
                                          PostRow.model_version == post.model_version,
                                          PostRow.action == "withdraw")).first()
    if row is not None:
        reconcile = row.status == PostStatus.INTENT
        row.status, row.attempts = PostStatus.INTENT, row.attempts + 1
        return row.id, reconcile
    row = PostRow(decision_id=post.decision_id, observation_id=post.observation_id,
                  model_version=post.model_version, action="withdraw", kind=post.kind,
                  taxon_id=post.taxon_id, body="", user_login=user_login, mode=post.mode,
                  status=PostStatus.INTENT, remote_id=post.remote_id, attempts=1, created_at=utcnow())
    s.add(row)
    s.flush()
    return row.id, False


def complete_withdrawal(s: Session, row_id: int, error: str | None, user_login: str) -> bool:
    """Closes a withdraw intent: failed with `error`, or done (the decision withdrawn and the act logged
    as the author's review action).  False when the intent is not in the ledger."""
    row = s.get(PostRow, row_id)
    if row is None:
        return False
    row.completed_at = utcnow()
    if error is not None:
        row.status, row.error = PostStatus.FAILED, error
        return True
    row.status, row.error = PostStatus.POSTED, None
    decision = s.get(DecisionRow, row.decision_id)
    if decision is not None:
        decision.status = DecisionStatus.WITHDRAWN
    s.add(ReviewActionRow(decision_id=row.decision_id, action="withdraw", moderator=user_login,
                          reason=f"retract model version {row.model_version}", at=utcnow()))
    return True
