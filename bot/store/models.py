"""SQLAlchemy 2 models: the whole record of what PlantBot saw, decided and posted.

The schema lives here and in `migrations/`; a test checks that autogenerate finds no difference.
Times are naive UTC.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bot.domain import CycleStatus, DecisionStatus, Outcome, PhotoStatus, PostStatus


class Base(DeclarativeBase):
    pass


def one_of(column: str, values: type[StrEnum], name: str) -> CheckConstraint:
    """A CHECK that `column` holds one of the enum's values: the database refuses a misspelt status."""
    listed = ", ".join(f"'{v.value}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=name)


class ObservationRow(Base):
    """An observation as last seen on the platform."""

    __tablename__ = "observations"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    platform: Mapped[str] = mapped_column(String(200), default="")
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    user_login: Mapped[str | None] = mapped_column(String(200))
    taxon_id: Mapped[int | None] = mapped_column(BigInteger)
    taxon_name: Mapped[str | None] = mapped_column(String(300))
    community_taxon_id: Mapped[int | None] = mapped_column(BigInteger)
    iconic_taxon_name: Mapped[str | None] = mapped_column(String(100))
    quality_grade: Mapped[str | None] = mapped_column(String(30))
    captive: Mapped[bool] = mapped_column(Boolean, default=False)
    uri: Mapped[str | None] = mapped_column(String(500))
    n_photos: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # cycles that tried it without deciding
    last_error: Mapped[str | None] = mapped_column(Text)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime)
    # The review card's context, stored when the observation is read and refreshed when a card is
    # opened after `[review] context_max_age_minutes` (context_at says when it was last read).
    observed_at: Mapped[datetime | None] = mapped_column(DateTime)
    place_guess: Mapped[str | None] = mapped_column(String(500))
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    positional_accuracy: Mapped[int | None] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(Text)
    # {"identifications": [{id, user, taxon_id, taxon_name, rank, current, created_at}], "comments": [...]}
    context: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    context_at: Mapped[datetime | None] = mapped_column(DateTime)
    photos: Mapped[list[PhotoRow]] = relationship(back_populates="observation", order_by="PhotoRow.position")


class PhotoRow(Base):
    __tablename__ = "photos"
    __table_args__ = (UniqueConstraint("observation_id", "photo_id", name="uq_photos_observation_photo"),
                      one_of("status", PhotoStatus, "ck_photos_status"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    observation_id: Mapped[int] = mapped_column(ForeignKey("observations.id"), index=True)
    photo_id: Mapped[int] = mapped_column(BigInteger)
    position: Mapped[int] = mapped_column(Integer, default=0)
    url: Mapped[str] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(20), default=PhotoStatus.PENDING)
    error: Mapped[str | None] = mapped_column(Text)
    bytes: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime)
    observation: Mapped[ObservationRow] = relationship(back_populates="photos")


class DecisionRow(Base):
    """One decision per observation and model version; `status` carries it through review."""

    __tablename__ = "decisions"
    __table_args__ = (
        UniqueConstraint("observation_id", "model_name", "model_version", name="uq_decisions_obs_model"),
        Index("ix_decisions_kind_status", "kind", "status"),
        one_of("status", DecisionStatus, "ck_decisions_status"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    observation_id: Mapped[int] = mapped_column(ForeignKey("observations.id"), index=True)
    cycle_id: Mapped[int | None] = mapped_column(ForeignKey("cycles.id"))
    kind: Mapped[str] = mapped_column(String(20))  # a DecisionKind
    taxon_id: Mapped[int | None] = mapped_column(BigInteger)
    taxon_name: Mapped[str | None] = mapped_column(String(300))
    rank: Mapped[str | None] = mapped_column(String(30))
    score: Mapped[float] = mapped_column(Float, default=0.0)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    n_photos: Mapped[int] = mapped_column(Integer, default=0)
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(100))
    cutoff: Mapped[float] = mapped_column(Float, default=0.3)  # the cutoff the decision was held to
    rule: Mapped[str | None] = mapped_column(String(40))  # the rule and its version, e.g. "summed/2"
    temperature: Mapped[float | None] = mapped_column(Float)  # the bundle's calibration, None: uncalibrated
    dry_run: Mapped[bool] = mapped_column(Boolean, default=True)
    mode: Mapped[str] = mapped_column(String(20), default="dry-run")
    status: Mapped[str] = mapped_column(String(20), default=DecisionStatus.RECORDED, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    # The local flora applied before the rule ("place:6", "file:…"; null: none) and the species of the
    # unweighted top-k it pushed down: [{"taxon_id", "name", "prob"}] (the review card marks them).
    flora: Mapped[str | None] = mapped_column(String(500))
    flora_name: Mapped[str | None] = mapped_column(String(300))
    flora_removed: Mapped[list[dict[str, object]] | None] = mapped_column(JSON)
    predictions: Mapped[list[PredictionRow]] = relationship(order_by="PredictionRow.position")


class PredictionRow(Base):
    """Top-k labels per rank for a decision, kept for the review card and the report."""

    __tablename__ = "predictions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id"), index=True)
    rank: Mapped[str] = mapped_column(String(20))  # species, genus, family
    position: Mapped[int] = mapped_column(Integer)
    taxon_id: Mapped[int | None] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(300))
    prob: Mapped[float] = mapped_column(Float)


class CursorRow(Base):
    """The highest observation id fully recorded, per platform and query."""

    __tablename__ = "cursors"
    key: Mapped[str] = mapped_column(String(500), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class CycleRow(Base):
    __tablename__ = "cycles"
    __table_args__ = (one_of("status", CycleStatus, "ck_cycles_status"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    # abandoned: its process died mid-cycle (marked so when a later cycle starts)
    status: Mapped[str] = mapped_column(String(20), default=CycleStatus.RUNNING)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=True)
    seen: Mapped[int] = mapped_column(Integer, default=0)
    decided: Mapped[int] = mapped_column(Integer, default=0)
    photos_failed: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)  # by kind and skip reason
    timings: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)  # seconds per stage
    errors: Mapped[list[str]] = mapped_column(JSON, default=list)
    dtype: Mapped[str | None] = mapped_column(String(20))  # the classifier's precision (None: before 0002)
    owner: Mapped[str | None] = mapped_column(String(200))  # "host:pid" of the process running it


class RejectedRow(Base):
    """A record the platform served that PlantBot refused, with the reason: bad records are kept, not lost.

    `raw_id` is the id as served (a repr), because the refused ones often have no id the store can hold.
    """

    __tablename__ = "rejected_records"
    __table_args__ = (UniqueConstraint("platform", "raw_id", "reason", name="uq_rejected_records"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(200))
    raw_id: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    cycle_id: Mapped[int | None] = mapped_column(ForeignKey("cycles.id"))
    first_seen_at: Mapped[datetime] = mapped_column(DateTime)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime)
    times: Mapped[int] = mapped_column(Integer, default=1)


class ReviewActionRow(Base):
    """Who did what to a proposal, and when."""

    __tablename__ = "review_actions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id"), index=True)
    action: Mapped[str] = mapped_column(String(20))  # approve, edit, reject, skip, withdraw
    moderator: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    edited_taxon_id: Mapped[int | None] = mapped_column(BigInteger)
    edited_taxon_name: Mapped[str | None] = mapped_column(String(300))  # the moderator's taxon, by name
    edited_text: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime)


class PostRow(Base):
    """An intent to write, completed with the remote id or the error: the exactly-once ledger."""

    __tablename__ = "posts"
    __table_args__ = (
        UniqueConstraint("observation_id", "model_version", "action", name="uq_posts_obs_version_action"),
        one_of("status", PostStatus, "ck_posts_status"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id"), index=True)
    observation_id: Mapped[int] = mapped_column(BigInteger, index=True)
    model_version: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(20), default="post")  # post, withdraw
    kind: Mapped[str] = mapped_column(String(20))  # identification, comment
    taxon_id: Mapped[int | None] = mapped_column(BigInteger)
    body: Mapped[str] = mapped_column(Text, default="")
    user_login: Mapped[str] = mapped_column(String(200))
    mode: Mapped[str] = mapped_column(String(20))  # review, auto
    status: Mapped[str] = mapped_column(String(20), default=PostStatus.INTENT, index=True)
    remote_id: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Who holds an open intent ("host:pid") and since when: reconciliation leaves a live sender alone.
    owner: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime)


class OutcomeRow(Base):
    """What the community made of a posted (or would-be) suggestion, at one check time."""

    __tablename__ = "outcomes"
    __table_args__ = (one_of("outcome", Outcome, "ck_outcomes_outcome"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id"), index=True)
    checked_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    community_taxon_id: Mapped[int | None] = mapped_column(BigInteger)
    observation_taxon_id: Mapped[int | None] = mapped_column(BigInteger)
    post_state: Mapped[str] = mapped_column(String(20))  # current, withdrawn, hidden, deleted, none
    outcome: Mapped[str] = mapped_column(String(20), index=True)
    latest: Mapped[bool] = mapped_column(Boolean, default=True, index=True)


class MediaUsageRow(Base):
    """Bytes downloaded per hour bucket, persisted so media budgets survive restarts."""

    __tablename__ = "media_usage"
    hour: Mapped[datetime] = mapped_column(DateTime, primary_key=True)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)


class FloraTaxonRow(Base):
    """The cached flora: taxa recorded in a place (`source` "place:ID"), replaced whole by a good refresh."""

    __tablename__ = "flora_taxa"
    source: Mapped[str] = mapped_column(String(500), primary_key=True)
    taxon_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(300), default="")
    count: Mapped[int] = mapped_column(Integer, default=0)
    fetched_at: Mapped[datetime] = mapped_column(DateTime)


class KeyValueRow(Base):
    """Small daemon state: budget pauses, last token refresh, and the like."""

    __tablename__ = "state"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
