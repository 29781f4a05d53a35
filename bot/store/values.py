"""What store functions hand out: frozen copies of rows, so no ORM object escapes its session.

A value carries the row's columns under the same names (templates and texts read them unchanged);
JSON list columns become tuples.  `value_of` copies a row into its value class inside the session.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVar

V = TypeVar("V")


def value_of(cls: type[V], row: Any) -> V:
    """The frozen copy of `row` as `cls` (every field read from the column of the same name)."""
    data = {}
    for f in fields(cls):  # type: ignore[arg-type]
        value = getattr(row, f.name)
        data[f.name] = tuple(value) if isinstance(value, list) else value
    return cls(**data)


@dataclass(frozen=True)
class ObservationValue:
    id: int
    platform: str
    user_id: int | None
    user_login: str | None
    taxon_id: int | None
    taxon_name: str | None
    community_taxon_id: int | None
    iconic_taxon_name: str | None
    quality_grade: str | None
    captive: bool
    uri: str | None
    n_photos: int
    attempts: int
    last_error: str | None
    first_seen_at: datetime
    last_seen_at: datetime
    # The review card's context (issue 13): when and where it was seen, and its identifications and
    # comments as last read (context_at).
    observed_at: datetime | None = None
    place_guess: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    positional_accuracy: int | None = None
    description: str | None = None
    context: dict[str, Any] | None = None
    context_at: datetime | None = None


@dataclass(frozen=True)
class DecisionValue:
    id: int
    observation_id: int
    cycle_id: int | None
    kind: str
    taxon_id: int | None
    taxon_name: str | None
    rank: str | None
    score: float
    reasons: tuple[str, ...]
    n_photos: int
    model_name: str
    model_version: str
    cutoff: float
    dry_run: bool
    mode: str
    status: str
    created_at: datetime | None
    flora: str | None = None  # the local flora applied before the rule, if any
    flora_name: str | None = None
    rule: str | None = None  # the decision rule and its version, e.g. "summed/2"
    temperature: float | None = None  # the bundle's calibration when decided


@dataclass(frozen=True)
class PredictionValue:
    id: int
    decision_id: int
    rank: str
    position: int
    taxon_id: int | None
    name: str
    prob: float


@dataclass(frozen=True)
class ReviewActionValue:
    id: int
    decision_id: int
    action: str
    moderator: str
    reason: str | None
    edited_taxon_id: int | None
    edited_text: str | None
    at: datetime
    edited_taxon_name: str | None = None  # the moderator's taxon, by name (issue 13)


@dataclass(frozen=True)
class PostValue:
    id: int
    decision_id: int
    observation_id: int
    model_version: str
    action: str
    kind: str
    taxon_id: int | None
    body: str
    user_login: str
    mode: str
    status: str
    remote_id: int | None
    error: str | None
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    completed_at: datetime | None
    owner: str | None
    claimed_at: datetime | None


@dataclass(frozen=True)
class NewOutcome:
    """One audit check of a suggestion, before it is recorded."""

    decision_id: int
    checked_at: datetime
    community_taxon_id: int | None
    observation_taxon_id: int | None
    post_state: str
    outcome: str


@dataclass(frozen=True)
class OutcomeValue(NewOutcome):
    """A recorded check: its row id and whether it is the decision's latest."""

    id: int = 0
    latest: bool = True


@dataclass(frozen=True)
class PhotoRecordValue:
    """A photo as the cycle recorded it: how its download and decoding went."""

    id: int
    observation_id: int
    photo_id: int
    position: int
    url: str
    status: str
    error: str | None
    bytes: int | None
    updated_at: datetime | None
