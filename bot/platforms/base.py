"""The one small interface every platform adapter implements.

The cycle, the poster and the audit only see this protocol, so iNaturalist v1 and the legacy Rails
API of independent forks are interchangeable.  Reads are `get_*`, writes are `post_*`/`update_*`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Protocol

from bot.domain import Comment, Identification, Observation, Taxon, User


@dataclass(frozen=True)
class Rejected:
    """An observation the parser could not use, with the reason; the cycle records and skips it."""

    observation_id: int | None  # None when the record has no id the store can hold
    reason: str
    raw_id: str = ""  # the id as served (repr), so a record without a usable id is still identifiable


@dataclass(frozen=True)
class ObservationPage:
    observations: list[Observation]
    rejected: list[Rejected] = field(default_factory=list)
    last_id: int = 0  # the highest observation id on this page (parsed or not): the next cursor


def created_within(created: datetime | None, since: datetime | None, until: datetime | None) -> bool:
    """[since, until) on creation time; an observation without a readable time is kept (ids bound it)."""
    if created is None:
        return True
    at = created if created.tzinfo else created.replace(tzinfo=UTC)
    return (since is None or at >= since) and (until is None or at < until)


class Platform(Protocol):
    name: str  # a key for cursors, e.g. "inat-v1:https://api.inaturalist.org/v1"
    dry_run: bool  # when True, no write request is ever sent

    def get_new_observations(self, cursor: int) -> Iterator[ObservationPage]:
        """Plant observations with photos whose id is above `cursor`, oldest first, page by page."""
        ...

    def get_older_observations(self, after_id: int, before_id: int, since: datetime | None,
                               until: datetime | None) -> Iterator[ObservationPage]:
        """Ids strictly between the two, created in [since, until) (aware UTC), oldest first: a backfill."""
        ...

    def get_newest_id(self) -> int | None:
        """The newest matching observation's id (None on an empty platform)."""
        ...

    def get_first_id_since(self, since: date) -> int | None:
        """The lowest id of a matching observation created on or after `since` (None: none yet)."""
        ...

    def get_observations(self, ids: Sequence[int]) -> list[Observation]:
        """Observations by id (at most 30 a request upstream; the adapter batches)."""
        ...

    def get_taxon(self, taxon_id: int) -> Taxon | None: ...

    def search_taxa(self, name: str, rank: str | None = None) -> list[Taxon]: ...

    def autocomplete_taxa(self, text: str, limit: int = 10) -> list[Taxon]:
        """Taxa whose name starts with or contains `text`, best first (the review UI's taxon search)."""
        ...

    def get_current_user(self, token: str) -> User: ...

    def get_token(self) -> str:
        """The bot account's own token (renewed when near its end)."""
        ...

    def exchange_code(self, code: str, verifier: str, *, client_id: str, client_secret: str | None,
                      redirect_uri: str) -> str:
        """A moderator's API token for an OAuth authorization code (PKCE); AuthError when refused."""
        ...

    def post_identification(self, token: str, observation_id: int, taxon_id: int, body: str) -> int:
        """Creates an identification (never with vision=true) and returns its remote id."""
        ...

    def post_comment(self, token: str, observation_id: int, body: str) -> int:
        """Creates a comment on an observation and returns its remote id."""
        ...

    def update_identification(self, token: str, identification_id: int, current: bool) -> None:
        """Withdraws (current=False) or restores an identification."""
        ...

    def get_identifications(self, observation_id: int) -> list[Identification]:
        """All identifications on an observation, current or not (reconciliation reads these)."""
        ...

    def get_comments(self, observation_id: int) -> list[Comment]: ...
