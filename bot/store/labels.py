"""Queries for `dataset from-reviews`: what people said each observation is, and its stored photos."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.store.models import DecisionRow, OutcomeRow, PhotoRow, ReviewActionRow

SOURCE_RANK = {"community": 3, "edited": 2, "approved": 1}


@dataclass(frozen=True)
class ReviewLabel:
    observation_id: int
    taxon_id: int
    source: str  # approved, edited, community


@dataclass(frozen=True)
class Negative:
    observation_id: int
    taxon_id: int
    name: str
    moderator: str
    reason: str


def get_review_labels(s: Session) -> tuple[dict[int, ReviewLabel], list[Negative]]:
    """One label per observation (community > edited > approved; the latest action of a kind wins) and
    the rejected pairs."""
    labels: dict[int, ReviewLabel] = {}

    def offer(label: ReviewLabel) -> None:
        held = labels.get(label.observation_id)
        if held is None or SOURCE_RANK[label.source] >= SOURCE_RANK[held.source]:
            labels[label.observation_id] = label

    negatives: list[Negative] = []
    actions = s.execute(select(ReviewActionRow, DecisionRow)
                        .join(DecisionRow, ReviewActionRow.decision_id == DecisionRow.id)
                        .order_by(ReviewActionRow.at, ReviewActionRow.id)).all()
    for action, decision in actions:
        if action.action == "approve" and decision.taxon_id is not None:
            offer(ReviewLabel(decision.observation_id, decision.taxon_id, "approved"))
        elif action.action == "edit" and (action.edited_taxon_id or decision.taxon_id) is not None:
            taxon_id = int(action.edited_taxon_id or decision.taxon_id or 0)
            offer(ReviewLabel(decision.observation_id, taxon_id, "edited"))
        elif action.action == "reject" and decision.taxon_id is not None:
            negatives.append(Negative(decision.observation_id, decision.taxon_id, decision.taxon_name or "",
                                      action.moderator, action.reason or ""))
    outcomes = s.execute(select(OutcomeRow, DecisionRow)
                         .join(DecisionRow, OutcomeRow.decision_id == DecisionRow.id)
                         .where(OutcomeRow.latest.is_(True), OutcomeRow.community_taxon_id.is_not(None))
                         .order_by(OutcomeRow.checked_at, OutcomeRow.id)).all()
    for outcome, decision in outcomes:
        offer(ReviewLabel(decision.observation_id, int(outcome.community_taxon_id or 0), "community"))
    return labels, negatives


def get_photos(s: Session, observation_ids: Sequence[int]) -> dict[int, list[tuple[int, str]]]:
    """(photo id, url) per observation, in position order, as the cycle stored them."""
    out: dict[int, list[tuple[int, str]]] = {}
    rows = s.scalars(select(PhotoRow).where(PhotoRow.observation_id.in_(list(observation_ids)))
                     .order_by(PhotoRow.observation_id, PhotoRow.position, PhotoRow.photo_id))
    for row in rows:
        out.setdefault(row.observation_id, []).append((row.photo_id, row.url))
    return out
