"""Typed records that flow between the stages.

They are plain frozen dataclasses so that every stage (platform parsers, the decision rule, the
store, the review UI) can share them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

PLANTAE = "Plantae"


def utcnow() -> datetime:
    """Naive UTC: how the store keeps every time (one definition for the store, posting and the report)."""
    return datetime.now(UTC).replace(tzinfo=None)


RANKS = ("species", "genus", "family")


@dataclass(frozen=True)
class Taxon:
    id: int
    name: str
    rank: str
    ancestor_ids: tuple[int, ...] = ()  # root first; includes the taxon's own id last when known
    rank_level: float | None = None
    iconic_taxon_name: str | None = None
    preferred_common_name: str | None = None

    def is_within(self, other_id: int) -> bool:
        """True when this taxon is `other_id` or lies below it."""
        return self.id == other_id or other_id in self.ancestor_ids


@dataclass(frozen=True)
class User:
    id: int
    login: str


@dataclass(frozen=True)
class Photo:
    id: int
    url: str  # as the platform gave it (any size word); photos.py rewrites the size
    position: int = 0
    license_code: str | None = None


@dataclass(frozen=True)
class Identification:
    id: int
    user: User
    taxon: Taxon | None
    current: bool = True
    body: str | None = None
    category: str | None = None
    vision: bool = False
    created_at: datetime | None = None
    hidden: bool = False  # hidden by a site curator (the audit counts the post as gone)


@dataclass(frozen=True)
class Comment:
    id: int
    user: User
    body: str
    created_at: datetime | None = None
    hidden: bool = False


@dataclass(frozen=True)
class Annotation:
    """A controlled term on an observation (iNaturalist's `annotations`): attribute and value ids, and the
    community's vote on it (a negative score: the community disagrees, so it does not count)."""

    attribute_id: int
    value_id: int
    vote_score: int = 0


@dataclass(frozen=True)
class Observation:
    id: int
    user: User
    photos: tuple[Photo, ...]  # in observation_photos position order
    taxon: Taxon | None = None
    community_taxon_id: int | None = None
    iconic_taxon_name: str | None = None
    captive: bool = False
    quality_grade: str | None = None
    identifications: tuple[Identification, ...] = ()
    comments: tuple[Comment, ...] = ()
    tags: tuple[str, ...] = ()
    field_values: dict[str, str] = field(default_factory=dict)  # observation field name -> value
    annotations: tuple[Annotation, ...] = ()  # v1 only: the Rails forks' observations.json has none
    uri: str | None = None
    created_at: datetime | None = None
    uuid: str | None = None
    # What a moderator needs to judge a proposal (the review card); all optional on the platforms.
    observed_at: datetime | None = None
    place_guess: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    positional_accuracy: int | None = None  # metres
    description: str | None = None

    @property
    def is_plant(self) -> bool:
        return self.iconic_taxon_name == PLANTAE


@dataclass(frozen=True)
class Label:
    """One output of a model bundle (a row of labels.csv)."""

    index: int
    taxon_id: int | None
    name: str
    rank: str = "species"
    genus_taxon_id: int | None = None
    genus: str = ""
    family_taxon_id: int | None = None
    family: str = ""


@dataclass(frozen=True)
class ObservationPrediction:
    """Softmax probabilities averaged over the photos of one observation that loaded."""

    observation_id: int
    probs: tuple[float, ...]
    n_photos: int


class DecisionKind(StrEnum):
    SPECIES = "species"  # a species identification
    GENUS = "genus"  # a genus-level comment
    FAMILY = "family"  # a family-level comment
    ABSTAIN = "abstain"  # classified, nothing cleared the cutoff
    SKIP = "skip"  # not classified or not worth proposing (see reasons)

    @property
    def proposes(self) -> bool:
        return self in (DecisionKind.SPECIES, DecisionKind.GENUS, DecisionKind.FAMILY)


# The kinds a moderator can approve and PlantBot can post: the one list every query and check uses.
PROPOSAL_KINDS: tuple[DecisionKind, ...] = tuple(k for k in DecisionKind if k.proposes)


class DecisionStatus(StrEnum):
    """Where a decision stands in the review flow (`decisions.status`, CHECK-constrained)."""

    RECORDED = "recorded"  # dry-run, abstain or skip: kept for the record, never posted
    PROPOSED = "proposed"  # waits for a moderator
    APPROVED = "approved"  # approved (or auto mode): the posting round sends it
    REJECTED = "rejected"
    SKIPPED = "skipped"  # a moderator put it aside; it can still be acted on
    POSTED = "posted"
    FAILED = "failed"  # the platform refused the post for good
    WITHDRAWN = "withdrawn"  # posted, then retracted
    OPTED_OUT = "opted_out"  # the observer opted out (user, tag or field): never posted


class PostStatus(StrEnum):
    """The exactly-once ledger row's state (`posts.status`, CHECK-constrained)."""

    INTENT = "intent"  # committed before the request goes out; reconciliation settles a lost one
    POSTED = "posted"
    FAILED = "failed"
    RETRY = "retry"
    SKIPPED = "skipped"  # not sent (opted out after the intent was written)


class PostResult(StrEnum):
    """What one posting attempt came to (`PostOutcome.status`; not stored)."""

    POSTED = "posted"
    ALREADY_POSTED = "already_posted"  # the ledger (or the platform, on reconciliation) already had it
    FAILED = "failed"  # refused for good
    RETRY = "retry"  # may work later; the ledger row waits for its backoff
    SKIPPED = "skipped"  # nothing sent (dry-run, opted out, not postable)


class WithdrawalStatus(StrEnum):
    """What retracting did to one posted identification (`plantbot retract`, the Withdraw page).

    `WITHDRAWN` is also the state `plantbot status` counts a post under once its withdrawal went out.
    """

    WOULD_WITHDRAW = "would-withdraw"  # dry-run: listed, nothing sent
    WITHDRAWN = "withdrawn"
    FAILED = "failed"  # the platform refused; the next run retries
    OTHER_AUTHOR = "other-author"  # posted under another login: only its author can withdraw it


class PhotoStatus(StrEnum):
    """What happened to one photo (`photos.status`, CHECK-constrained)."""

    PENDING = "pending"
    OK = "ok"
    FAILED = "failed"  # network or HTTP error: may work next cycle
    BUDGET = "budget"  # the media budget was spent: left for later, not the photo's fault
    REFUSED = "refused"  # a URL, host or address we do not fetch
    TOO_LARGE = "too_large"
    CORRUPT = "corrupt"
    TRUNCATED = "truncated"
    NOT_AN_IMAGE = "not_an_image"


class Outcome(StrEnum):
    """What the community made of a suggestion (`outcomes.outcome`, CHECK-constrained)."""

    CONFIRMED = "confirmed"
    REFINED = "refined"
    CONTRADICTED = "contradicted"
    PENDING = "pending"
    GONE = "gone"


class CycleStatus(StrEnum):
    """How a poll cycle ended (`cycles.status`, CHECK-constrained)."""

    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    PAUSED = "paused"  # a budget ran out; the next cycle resumes
    ABANDONED = "abandoned"  # its process died mid-cycle; marked when the next cycle starts


@dataclass(frozen=True)
class Ranked:
    name: str
    taxon_id: int | None
    prob: float
    rank: str = "species"


@dataclass(frozen=True)
class Decision:
    observation_id: int
    kind: DecisionKind
    taxon_id: int | None = None
    taxon_name: str | None = None
    rank: str | None = None
    score: float = 0.0
    reasons: tuple[str, ...] = ()
    top_species: tuple[Ranked, ...] = ()
    best_genus: Ranked | None = None
    best_family: Ranked | None = None
    n_photos: int = 0
    flora: str | None = None  # the local flora applied before the rule (its source), None: none
    flora_name: str | None = None  # the place it stands for ("not recorded in <flora_name>")
    flora_removed: tuple[Ranked, ...] = ()  # species of the unweighted top-k outside that flora
    cutoff: float | None = None  # the cutoff the proposal (or, abstaining, the species) was held to
    rule: str = ""  # the rule's name and version, e.g. "summed/2"


class RunMode(StrEnum):
    """What a run may write: computed once from `[posting] mode` and `--dry-run`, then passed down."""

    DRY_RUN = "dry-run"  # records decisions; sends no write request at all
    REVIEW = "review"  # proposals wait for a moderator, who posts under their own account
    AUTO = "auto"  # explicit opt-in: approved at once and posted under the bot's account

    @classmethod
    def of(cls, configured: str, dry_run: bool = False) -> RunMode:
        """`--dry-run` wins over the config; otherwise the configured mode (already validated)."""
        return cls.DRY_RUN if dry_run else cls(configured)

    @property
    def dry_run(self) -> bool:
        return self is RunMode.DRY_RUN

    @property
    def for_moderator(self) -> RunMode:
        """A moderator's approval posts as a reviewed post, whatever the daemon does, unless nothing may be sent."""
        return self if self is RunMode.DRY_RUN else RunMode.REVIEW
