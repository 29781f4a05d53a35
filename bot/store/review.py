"""Queries behind the moderators' review queue: listing proposals and recording what a moderator did.

Each state change is a conditional UPDATE (`WHERE status IN (...)`), so two moderators acting on the
same proposal at once cannot both win: the second one is told it was already handled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import Session, selectinload

from bot.domain import PROPOSAL_KINDS, DecisionStatus, utcnow
from bot.photos import rewrite_size
from bot.store.models import DecisionRow, KeyValueRow, ObservationRow, PostRow, PredictionRow, ReviewActionRow
from bot.store.values import DecisionValue, ObservationValue, PostValue, PredictionValue, ReviewActionValue, value_of

# Statuses a moderator can still act on: new proposals, and ones a moderator skipped earlier.
ACTIONABLE = (DecisionStatus.PROPOSED, DecisionStatus.SKIPPED)
# What each action moves the decision to; "edit" is edit-then-approve.
ACTION_STATUS = {"approve": DecisionStatus.APPROVED, "edit": DecisionStatus.APPROVED,
                 "reject": DecisionStatus.REJECTED, "skip": DecisionStatus.SKIPPED}



SORTS = ("oldest", "newest", "prob_desc", "prob_asc")


@dataclass
class QueueFilter:
    """What the queue page shows: one status, and the moderator's filters and sort order.

    `taxon` matches the proposed taxon or a genus/family of the roll-up by name; `observer` the
    observer's login; `place` the place guess (both by substring, case-insensitive).
    """

    status: str = DecisionStatus.PROPOSED
    kind: str | None = None
    min_score: float | None = None  # a probability in [0, 1]; the UI shows and takes percentages
    taxon: str | None = None
    observer: str | None = None
    observed_from: date | None = None
    observed_to: date | None = None
    place: str | None = None
    sort: str = "oldest"
    exclude: tuple[int, ...] = ()  # proposals the page already shows (when it fetches more)
    page: int = 1
    page_size: int = 20


@dataclass
class Card:
    """One proposal with everything the review card needs, loaded in one session."""

    decision: DecisionValue
    observation: ObservationValue
    photo_urls: list[str]
    top_species: list[PredictionValue] = field(default_factory=list)
    genus: list[PredictionValue] = field(default_factory=list)
    family: list[PredictionValue] = field(default_factory=list)
    outside_flora: set[int] = field(default_factory=set)  # taxon ids the flora weighted down
    flora_hidden: list[dict[str, object]] = field(default_factory=list)  # such species no longer in the top

    @property
    def flora_name(self) -> str:
        return self.decision.flora_name or self.decision.flora or ""


@dataclass
class QueuePage:
    cards: list[Card]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


@dataclass
class HistoryEntry:
    action: ReviewActionValue
    decision: DecisionValue
    observation_uri: str | None
    post: PostValue | None


class ActionConflict(Exception):
    """The proposal is gone or another moderator already acted on it."""


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def _filtered(flt: QueueFilter):  # type: ignore[no-untyped-def]
    stmt = (select(DecisionRow).join(ObservationRow, ObservationRow.id == DecisionRow.observation_id)
            .where(DecisionRow.status == flt.status, DecisionRow.kind.in_(PROPOSAL_KINDS)))
    if flt.kind:
        stmt = stmt.where(DecisionRow.kind == flt.kind)
    if flt.exclude:
        stmt = stmt.where(DecisionRow.id.not_in(flt.exclude))
    if flt.min_score is not None:
        stmt = stmt.where(DecisionRow.score >= flt.min_score)
    if flt.taxon:
        pattern = _like(flt.taxon)
        in_rollup = exists().where(PredictionRow.decision_id == DecisionRow.id,
                                   PredictionRow.rank.in_(("genus", "family")),
                                   func.lower(PredictionRow.name).like(pattern, escape="\\"))
        stmt = stmt.where(or_(func.lower(DecisionRow.taxon_name).like(pattern, escape="\\"), in_rollup))
    if flt.observer:
        stmt = stmt.where(func.lower(ObservationRow.user_login).like(_like(flt.observer), escape="\\"))
    if flt.place:
        stmt = stmt.where(func.lower(ObservationRow.place_guess).like(_like(flt.place), escape="\\"))
    if flt.observed_from:
        stmt = stmt.where(ObservationRow.observed_at >= datetime.combine(flt.observed_from, datetime.min.time()))
    if flt.observed_to:
        end = datetime.combine(flt.observed_to, datetime.min.time()) + timedelta(days=1)
        stmt = stmt.where(ObservationRow.observed_at < end)
    return stmt


ORDERS = {
    "oldest": (DecisionRow.created_at.asc(), DecisionRow.id.asc()),
    "newest": (DecisionRow.created_at.desc(), DecisionRow.id.desc()),
    "prob_desc": (DecisionRow.score.desc(), DecisionRow.id.asc()),
    "prob_asc": (DecisionRow.score.asc(), DecisionRow.id.asc()),
}


def list_queue(s: Session, flt: QueueFilter, photo_size: str = "medium") -> QueuePage:
    """One page of proposals (oldest first unless sorted otherwise), with observation, photos and
    predictions loaded."""
    total = s.scalar(select(func.count()).select_from(_filtered(flt).subquery())) or 0
    page = max(1, flt.page)
    stmt = (
        _filtered(flt)
        .options(selectinload(DecisionRow.predictions))
        .order_by(*ORDERS.get(flt.sort, ORDERS["oldest"]))
        .limit(flt.page_size)
        .offset((page - 1) * flt.page_size)
    )
    decisions = list(s.scalars(stmt))
    obs_ids = {d.observation_id for d in decisions}
    observations = {
        o.id: o
        for o in s.scalars(
            select(ObservationRow).where(ObservationRow.id.in_(obs_ids)).options(selectinload(ObservationRow.photos))
        )
    }
    cards = [_card(d, observations[d.observation_id], photo_size) for d in decisions]
    return QueuePage(cards=cards, total=total, page=page, page_size=flt.page_size)


def _card(d: DecisionRow, obs: ObservationRow, photo_size: str) -> Card:
    by_rank: dict[str, list[PredictionValue]] = {"species": [], "genus": [], "family": []}
    for p in sorted(d.predictions, key=lambda p: p.position):
        by_rank.setdefault(p.rank, []).append(value_of(PredictionValue, p))
    top = by_rank["species"][:5]
    removed = [dict(r) for r in (d.flora_removed or []) if isinstance(r, dict)]
    outside = {int(str(r["taxon_id"])) for r in removed if r.get("taxon_id") is not None}
    shown = {p.taxon_id for p in top}
    return Card(
        decision=value_of(DecisionValue, d),
        observation=value_of(ObservationValue, obs),
        photo_urls=[sized_photo_url(p.url, photo_size) for p in obs.photos],
        top_species=top,
        genus=by_rank["genus"][:3],
        family=by_rank["family"][:3],
        outside_flora=outside,
        flora_hidden=[r for r in removed if r.get("taxon_id") not in shown],
    )


def sized_photo_url(url: str, size: str = "medium") -> str:
    """The card shows a photo at `size`, by the downloader's own rewrite; a URL that does not parse stays as is."""
    try:
        return rewrite_size(url, size)
    except ValueError:
        return url


def get_card(s: Session, decision_id: int, photo_size: str = "medium") -> Card | None:
    d = s.get(DecisionRow, decision_id)
    if d is None:
        return None
    obs = s.get(ObservationRow, d.observation_id)
    return None if obs is None else _card(d, obs, photo_size)


def record_action(
    s: Session,
    decision_id: int,
    action: str,
    moderator: str,
    *,
    reason: str | None = None,
    edited_taxon_id: int | None = None,
    edited_taxon_name: str | None = None,
    edited_text: str | None = None,
    allowed_from: Sequence[str] = ACTIONABLE,
    at: datetime | None = None,
) -> ReviewActionValue:
    """Moves the decision on (atomically, only from an actionable status) and logs who did it.

    Raises ActionConflict when the decision does not exist or is no longer actionable, so the
    caller never posts a proposal someone else already approved or rejected.
    """
    new_status = ACTION_STATUS[action]
    result = s.execute(
        update(DecisionRow)
        .where(DecisionRow.id == decision_id, DecisionRow.status.in_(tuple(allowed_from)),
               DecisionRow.kind.in_(PROPOSAL_KINDS))
        .values(status=new_status)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        current = s.scalar(select(DecisionRow.status).where(DecisionRow.id == decision_id))
        if current is None:
            raise ActionConflict(f"proposal {decision_id} does not exist")
        raise ActionConflict(f"proposal {decision_id} is already {current}")
    row = ReviewActionRow(
        decision_id=decision_id,
        action=action,
        moderator=moderator,
        reason=reason or None,
        edited_taxon_id=edited_taxon_id,
        edited_taxon_name=edited_taxon_name,
        edited_text=edited_text,
        at=at or utcnow(),
    )
    s.add(row)
    s.flush()
    return value_of(ReviewActionValue, row)


def open_proposals(s: Session) -> list[DecisionValue]:
    """Every proposal a moderator can still act on, oldest first (the scripted reviewer's queue)."""
    stmt = (select(DecisionRow).where(DecisionRow.status.in_(ACTIONABLE), DecisionRow.kind.in_(PROPOSAL_KINDS))
            .order_by(DecisionRow.id))
    return [value_of(DecisionValue, d) for d in s.scalars(stmt)]


def list_review_actions(s: Session, action: str | None = None) -> list[ReviewActionValue]:
    """Every review action in the order it was taken (or those of one kind: approve, reject, withdraw...)."""
    stmt = select(ReviewActionRow).order_by(ReviewActionRow.id)
    if action is not None:
        stmt = stmt.where(ReviewActionRow.action == action)
    return [value_of(ReviewActionValue, row) for row in s.scalars(stmt)]


def recent_actions(s: Session, limit: int = 100) -> list[HistoryEntry]:
    """The latest review actions, newest first, with the decision and its post (if any)."""
    rows = list(s.scalars(select(ReviewActionRow).order_by(ReviewActionRow.at.desc(), ReviewActionRow.id.desc())
                          .limit(limit)))
    decision_ids = {r.decision_id for r in rows}
    decisions = {d.id: d for d in s.scalars(select(DecisionRow).where(DecisionRow.id.in_(decision_ids)))}
    obs_ids = {d.observation_id for d in decisions.values()}
    uris: dict[int, str | None] = {
        oid: uri for oid, uri in s.execute(select(ObservationRow.id, ObservationRow.uri)
                                           .where(ObservationRow.id.in_(obs_ids)))
    }
    posts: dict[int, PostValue] = {}
    for p in s.scalars(select(PostRow).where(PostRow.decision_id.in_(decision_ids), PostRow.action == "post")):
        posts[p.decision_id] = value_of(PostValue, p)
    return [
        HistoryEntry(action=value_of(ReviewActionValue, r), decision=value_of(DecisionValue, decisions[r.decision_id]),
                     observation_uri=uris.get(decisions[r.decision_id].observation_id),
                     post=posts.get(r.decision_id))
        for r in rows
    ]


def queue_counts(s: Session) -> dict[str, int]:
    """Open proposals per kind, for the queue header."""
    stmt = (select(DecisionRow.kind, func.count()).where(DecisionRow.status == DecisionStatus.PROPOSED)
            .group_by(DecisionRow.kind))
    return {kind: n for kind, n in s.execute(stmt)}


def requeue(s: Session, decision_id: int) -> bool:
    """Puts an approved proposal whose post did not go through (yet) back in the queue.

    In review mode only a signed-in moderator holds a token, so nothing retries in the background:
    the proposal returns to the queue and the next approval re-checks the platform and re-sends.
    """
    result = s.execute(
        update(DecisionRow).where(DecisionRow.id == decision_id, DecisionRow.status == DecisionStatus.APPROVED)
        .values(status=DecisionStatus.PROPOSED).execution_options(synchronize_session=False))
    return getattr(result, "rowcount", 0) == 1


MODERATOR_ID_KEY = "moderator_user_id:"


def bind_moderator(s: Session, login: str, user_id: int) -> int:
    """The platform user id recorded for this moderator login: the one seen at the first sign-in.

    A login can be renamed and taken over by another account; the recorded id is what stays the same.
    """
    key = MODERATOR_ID_KEY + login
    row = s.get(KeyValueRow, key)
    if row is None:
        s.add(KeyValueRow(key=key, value=str(user_id), updated_at=utcnow()))
        return user_id
    return int(row.value)
