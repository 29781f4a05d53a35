"""Queries for outcome tracking, the audit report and withdrawal.

Everything the report shows is a SQL aggregate (GROUP BY) so that 100,000 decisions take seconds;
Python only folds the handful of grouped rows that come back.  Row listings (posts.csv) stream.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    case,
    cast,
    func,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased

from bot.domain import PROPOSAL_KINDS, DecisionStatus, Outcome, PostStatus
from bot.store.models import DecisionRow, ObservationRow, OutcomeRow, PhotoRow, PostRow, PredictionRow, ReviewActionRow
from bot.store.values import NewOutcome, OutcomeValue, PostValue, value_of

OUTCOMES = tuple(Outcome)
CUTOFFS = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05 .. 0.95
N_PROB_BINS = 10
MAX_PHOTO_BUCKET = 5  # 1, 2, 3, 4, 5+


@dataclass(frozen=True)
class Filters:
    """What `plantbot report --since/--model-version` narrows the decisions to."""

    since: datetime | None = None
    model_version: str | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if self.since is not None:
            out.append(DecisionRow.created_at >= self.since)
        if self.model_version is not None:
            out.append(DecisionRow.model_version == self.model_version)
        return out


# --- outcome tracking -------------------------------------------------------------------------


@dataclass(frozen=True)
class Trackable:
    """A posted (or would-be) suggestion whose observation the audit re-reads."""

    decision_id: int
    observation_id: int
    taxon_id: int  # what was posted (the edited taxon when a moderator changed it)
    kind: str  # species, genus, family
    dry_run: bool
    post_kind: str | None  # identification, comment; None for dry-run decisions
    remote_id: int | None


def _posted_subquery() -> Any:
    return (
        select(PostRow.decision_id, PostRow.kind, PostRow.remote_id, PostRow.taxon_id)
        .where(PostRow.action == "post", PostRow.status == PostStatus.POSTED)
        .subquery("posted")
    )


def _latest_outcome() -> Any:
    return aliased(OutcomeRow, name="latest_outcome")


def _joins_latest(alias: Any) -> ColumnElement[bool]:
    """Join condition for a decision's latest check, looked up by decision id.

    `latest` is wrapped in coalesce so SQLite cannot pick the (barely selective) `latest` index
    for this lookup; with it, every decision scanned all latest outcomes (quadratic time).
    """
    return and_(alias.decision_id == DecisionRow.id, func.coalesce(alias.latest, False).is_(True))


def select_trackable(session: Session, limit: int | None = None) -> list[Trackable]:
    """Posted and dry-run suggestions, never-checked first, then the longest unchecked.

    Observations already found deleted are not re-read: they do not come back, and each re-read
    costs a request from the day's budget.
    """
    posted = _posted_subquery()
    latest = _latest_outcome()
    taxon = func.coalesce(posted.c.taxon_id, DecisionRow.taxon_id)
    stmt = (
        select(DecisionRow.id, DecisionRow.observation_id, taxon, DecisionRow.kind, DecisionRow.dry_run,
               posted.c.kind, posted.c.remote_id)
        .outerjoin(posted, posted.c.decision_id == DecisionRow.id)
        .outerjoin(latest, _joins_latest(latest))
        .where(
            or_(posted.c.decision_id.is_not(None),
                and_(DecisionRow.dry_run.is_(True), DecisionRow.kind.in_(PROPOSAL_KINDS))),
            taxon.is_not(None),
            or_(latest.id.is_(None), latest.post_state != "deleted"),
        )
        .order_by(latest.checked_at.asc().nulls_first(), DecisionRow.created_at, DecisionRow.id)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return [Trackable(*row) for row in session.execute(stmt)]


def record_outcomes(session: Session, outcomes: Sequence[NewOutcome]) -> None:
    """Adds one check per decision and makes it the latest; older checks stay for trends."""
    if not outcomes:
        return
    ids = [o.decision_id for o in outcomes]
    session.execute(
        update(OutcomeRow).where(OutcomeRow.decision_id.in_(ids),
                                 func.coalesce(OutcomeRow.latest, False).is_(True))  # by decision id
        .values(latest=False)
    )
    session.add_all(OutcomeRow(decision_id=o.decision_id, checked_at=o.checked_at,
                               community_taxon_id=o.community_taxon_id,
                               observation_taxon_id=o.observation_taxon_id, post_state=o.post_state,
                               outcome=o.outcome, latest=True) for o in outcomes)


# --- report aggregates ------------------------------------------------------------------------


def _source() -> ColumnElement[str]:
    return case((DecisionRow.dry_run.is_(True), "would-post"), else_="posted")


def count_decisions(session: Session, f: Filters) -> int:
    return session.scalar(select(func.count(DecisionRow.id)).where(*f.clauses())) or 0


def totals(session: Session, f: Filters) -> list[dict[str, Any]]:
    """Decisions by kind, mode and model version."""
    stmt = (
        select(DecisionRow.kind, DecisionRow.mode, DecisionRow.model_version, func.count())
        .where(*f.clauses())
        .group_by(DecisionRow.kind, DecisionRow.mode, DecisionRow.model_version)
        .order_by(DecisionRow.model_version, DecisionRow.mode, DecisionRow.kind)
    )
    return [{"kind": k, "mode": m, "model_version": v, "n": n} for k, m, v, n in session.execute(stmt)]


def queue_fate(session: Session, f: Filters) -> dict[str, int]:
    """What became of the review queue's proposals: approved, edited, rejected, skipped, pending."""
    edited = select(ReviewActionRow.decision_id).where(ReviewActionRow.action == "edit")
    fate = case(
        (DecisionRow.status == DecisionStatus.PROPOSED, "pending"),
        (DecisionRow.status == DecisionStatus.REJECTED, "rejected"),
        (DecisionRow.status == DecisionStatus.SKIPPED, "skipped"),
        (DecisionRow.id.in_(edited), "edited"),
        (DecisionRow.status.in_((DecisionStatus.APPROVED, DecisionStatus.POSTED, DecisionStatus.FAILED,
                                 DecisionStatus.WITHDRAWN)), "approved"),
        else_=DecisionRow.status,
    )
    stmt = (
        select(fate, func.count())
        .where(DecisionRow.mode == "review", DecisionRow.dry_run.is_(False),
               DecisionRow.kind.in_(PROPOSAL_KINDS), *f.clauses())
        .group_by(fate)
    )
    return {str(k): int(n) for k, n in session.execute(stmt)}


def moderator_actions(session: Session, f: Filters) -> list[dict[str, Any]]:
    """Review actions per moderator and action."""
    stmt = (
        select(ReviewActionRow.moderator, ReviewActionRow.action, func.count())
        .join(DecisionRow, DecisionRow.id == ReviewActionRow.decision_id)
        .where(*f.clauses())
        .group_by(ReviewActionRow.moderator, ReviewActionRow.action)
        .order_by(ReviewActionRow.moderator)
    )
    return [{"moderator": m, "action": a, "n": n} for m, a, n in session.execute(stmt)]


def ledger_status(session: Session, f: Filters) -> list[dict[str, Any]]:
    """The posting ledger by action and status (intents left open show up here)."""
    stmt = (
        select(PostRow.action, PostRow.kind, PostRow.status, func.count())
        .join(DecisionRow, DecisionRow.id == PostRow.decision_id)
        .where(*f.clauses())
        .group_by(PostRow.action, PostRow.kind, PostRow.status)
    )
    return [{"action": a, "kind": k, "status": s, "n": n} for a, k, s, n in session.execute(stmt)]


def _prob_bin() -> ColumnElement[int]:
    return case((DecisionRow.score >= 1.0, N_PROB_BINS - 1),
                else_=cast(DecisionRow.score * N_PROB_BINS, Integer))


def _photo_bucket() -> ColumnElement[int]:
    return case((DecisionRow.n_photos >= MAX_PHOTO_BUCKET, MAX_PHOTO_BUCKET), else_=DecisionRow.n_photos)


PRECISION_KEYS: dict[str, Any] = {
    "rank": lambda: func.coalesce(DecisionRow.rank, DecisionRow.kind),
    "model_version": lambda: DecisionRow.model_version,
    "prob_bin": _prob_bin,
    "n_photos": _photo_bucket,
}


def outcome_counts(session: Session, f: Filters, key: str) -> list[tuple[str, Any, str, int, float]]:
    """(source, group, outcome, count, sum of scores) from the latest check of each suggestion."""
    group = PRECISION_KEYS[key]()
    stmt = (
        select(_source(), group, OutcomeRow.outcome, func.count(), func.sum(DecisionRow.score))
        .join(OutcomeRow, and_(OutcomeRow.decision_id == DecisionRow.id, OutcomeRow.latest.is_(True)))
        .where(*f.clauses())
        .group_by(_source(), group, OutcomeRow.outcome)
    )
    return [(s, g, o, int(n), float(t or 0.0)) for s, g, o, n, t in session.execute(stmt)]


def outcomes_over_time(session: Session, f: Filters) -> list[dict[str, Any]]:
    """Every check (not only the latest) by day and outcome, so trends show."""
    day = func.date(OutcomeRow.checked_at)
    stmt = (
        select(day, _source(), OutcomeRow.outcome, func.count())
        .join(DecisionRow, DecisionRow.id == OutcomeRow.decision_id)
        .where(*f.clauses())
        .group_by(day, _source(), OutcomeRow.outcome)
        .order_by(day)
    )
    return [{"day": str(d), "source": s, "outcome": o, "n": n} for d, s, o, n in session.execute(stmt)]


def abstention(session: Session, f: Filters) -> dict[str, Any]:
    """Share of classified observations abstained on at each cutoff (the paper's Fig. 2b).

    Uses the recorded top species probability and the best genus/family probability per decision;
    decisions recorded without predictions fall back to their score for both.
    """
    per = (
        select(PredictionRow.decision_id,
               func.max(case((PredictionRow.rank == "species", PredictionRow.prob))).label("sp"),
               func.max(case((PredictionRow.rank != "species", PredictionRow.prob))).label("fb"))
        .group_by(PredictionRow.decision_id)
        .subquery("per")
    )
    sp = func.coalesce(per.c.sp, DecisionRow.score)
    best = func.max(sp, func.coalesce(per.c.fb, DecisionRow.score))  # SQLite's two-argument max
    cols: list[Any] = [func.count()]
    for c in CUTOFFS:
        cols.append(func.sum(case((sp < c, 1), else_=0)))
        cols.append(func.sum(case((best < c, 1), else_=0)))
    stmt = (
        select(*cols).select_from(DecisionRow)
        .outerjoin(per, per.c.decision_id == DecisionRow.id)
        .where(DecisionRow.kind != "skip", *f.clauses())
    )
    row = session.execute(stmt).one()
    n = int(row[0] or 0)
    no_species = [int(row[1 + 2 * i] or 0) for i in range(len(CUTOFFS))]
    nothing = [int(row[2 + 2 * i] or 0) for i in range(len(CUTOFFS))]
    return {
        "n_classified": n,
        "cutoffs": list(CUTOFFS),
        "no_species_share": [x / n if n else None for x in no_species],
        "abstain_share": [x / n if n else None for x in nothing],
    }


# --- suggestion rows (posts.csv and the HTML table) -------------------------------------------


def _suggestions_stmt(f: Filters, source: str) -> Select[Any]:
    latest = _latest_outcome()
    photo = (select(PhotoRow.url).where(PhotoRow.observation_id == DecisionRow.observation_id)
             .order_by(PhotoRow.position).limit(1).scalar_subquery())
    approver = (select(ReviewActionRow.moderator)
                .where(ReviewActionRow.decision_id == DecisionRow.id,
                       ReviewActionRow.action.in_(("approve", "edit")))
                .order_by(ReviewActionRow.at.desc()).limit(1).scalar_subquery())
    last_edit = aliased(ReviewActionRow, name="last_edit")

    def edit_field(column: Any) -> Any:
        """A column of the decision's latest edit-then-approve action (NULL without one)."""
        return (select(column).where(last_edit.decision_id == DecisionRow.id, last_edit.action == "edit")
                .order_by(last_edit.at.desc()).limit(1).scalar_subquery())

    edited_name = edit_field(last_edit.edited_taxon_name)
    edited_taxon = edit_field(last_edit.edited_taxon_id)
    edited_text = edit_field(last_edit.edited_text)
    # What a moderator changed: "taxon", "text", "taxon+text" or "" (the model's proposal as is).
    edited = func.trim(case((edited_taxon.is_not(None), "taxon"), else_="")
                       + case((and_(edited_taxon.is_not(None), edited_text.is_not(None)), "+"), else_="")
                       + case((edited_text.is_not(None), "text"), else_=""))
    if source == "posted":
        time_col: Any = PostRow.completed_at
        taxon_col: Any = func.coalesce(PostRow.taxon_id, DecisionRow.taxon_id)
        extra = [PostRow.kind.label("post_kind"), PostRow.remote_id, PostRow.user_login.label("posted_as"),
                 PostRow.body.label("body")]
    else:
        time_col, taxon_col = DecisionRow.created_at, DecisionRow.taxon_id
        extra = [null().label("post_kind"), null().label("remote_id"), null().label("posted_as"),
                 null().label("body")]
    extra += [func.coalesce(edited_name, DecisionRow.taxon_name).label("final_taxon_name"),
              edited.label("edited")]
    stmt = select(
        DecisionRow.id.label("decision_id"), DecisionRow.observation_id, ObservationRow.uri,
        photo.label("photo_url"), DecisionRow.kind, taxon_col.label("taxon_id"),
        DecisionRow.taxon_id.label("model_taxon_id"), DecisionRow.taxon_name,
        DecisionRow.rank, DecisionRow.score, DecisionRow.n_photos, DecisionRow.model_name,
        DecisionRow.model_version, DecisionRow.mode, DecisionRow.status, approver.label("approver"),
        time_col.label("time"), latest.outcome, latest.post_state, latest.community_taxon_id,
        latest.checked_at, *extra,
    ).select_from(DecisionRow)
    if source == "posted":
        stmt = stmt.join(PostRow, and_(PostRow.decision_id == DecisionRow.id, PostRow.action == "post",
                                       PostRow.status == PostStatus.POSTED))
    else:
        stmt = stmt.where(DecisionRow.dry_run.is_(True), DecisionRow.kind.in_(PROPOSAL_KINDS))
    return (stmt.outerjoin(ObservationRow, ObservationRow.id == DecisionRow.observation_id)
            .outerjoin(latest, _joins_latest(latest))
            .where(*f.clauses()).order_by(time_col.desc(), DecisionRow.id.desc()))


def iter_suggestions(session: Session, f: Filters, source: str,
                     limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Posted ('posted') or dry-run ('would-post') suggestions, newest first, streamed."""
    stmt = _suggestions_stmt(f, source)
    if limit is not None:
        stmt = stmt.limit(limit)
    for row in session.execute(stmt.execution_options(yield_per=2000)).mappings():
        yield {"source": source, **row}


# --- withdrawal -------------------------------------------------------------------------------


def standing_identifications() -> Select[PostRow]:
    """Posted identifications (with their remote id) that no posted withdrawal has taken back: what
    retract and the Withdraw page may act on.  Callers narrow it (a model version, an author)."""
    withdrawn = select(PostRow.decision_id).where(PostRow.action == "withdraw", PostRow.status == PostStatus.POSTED)
    return select(PostRow).where(PostRow.action == "post", PostRow.kind == "identification",
                                 PostRow.status == PostStatus.POSTED, PostRow.remote_id.is_not(None),
                                 PostRow.decision_id.not_in(withdrawn))


def current_posted_identifications(session: Session, model_version: str) -> list[PostValue]:
    """Identifications of a model version that were posted and not yet withdrawn by us."""
    stmt = standing_identifications().where(PostRow.model_version == model_version).order_by(PostRow.id)
    return [value_of(PostValue, row) for row in session.scalars(stmt)]


def latest_outcomes(session: Session) -> dict[int, OutcomeValue]:
    """The latest outcome check of each tracked decision, by decision id."""
    rows = session.scalars(select(OutcomeRow).where(OutcomeRow.latest.is_(True)))
    return {r.decision_id: value_of(OutcomeValue, r) for r in rows}


# --- live calibration -------------------------------------------------------------------------


def live_outcomes(session: Session, f: Filters) -> list[tuple[str, str, float, str, float]]:
    """(model version, rank, score, latest outcome, cutoff) of every proposal the audit has checked,
    posted or would-be; the live recalibration folds these (one small row per suggestion)."""
    stmt = (
        select(DecisionRow.model_version, func.coalesce(DecisionRow.rank, DecisionRow.kind), DecisionRow.score,
               OutcomeRow.outcome, DecisionRow.cutoff)
        .join(OutcomeRow, and_(OutcomeRow.decision_id == DecisionRow.id, OutcomeRow.latest.is_(True)))
        .where(DecisionRow.kind.in_(PROPOSAL_KINDS), *f.clauses())
    )
    return [(str(v), str(r), float(s), str(o), float(c)) for v, r, s, o, c in session.execute(stmt)]
