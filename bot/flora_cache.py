"""The community's flora: read from a file, or from the place's records on the platform and cached.

`[decision] flora = "place"` reads `GET /v1/observations/species_counts?place_id=…&iconic_taxa=Plantae&
verifiable=true` page by page (500 taxa a page) within `flora_max_requests`, and replaces the cached
list only when every page was read; a failed refresh keeps the last good list and records why, which
`plantbot status` shows.  The cache lives in the database, so it survives restarts; the daemon
refreshes it on a schedule (weekly by default) and at start-up when it is older than that.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from bot.config import Config
from bot.domain import Taxon
from bot.errors import PlantBotError, PlatformError
from bot.flora import Flora, read_flora_file
from bot.store import Store
from bot.store import flora as q
from bot.store.records import utcnow

log = logging.getLogger(__name__)

PER_PAGE = 500  # the API's maximum for species_counts


class SpeciesCountsSource(Protocol):
    def get_species_counts(self, place_id: int, page: int, per_page: int = PER_PAGE
                           ) -> tuple[list[tuple[Taxon, int]], int]: ...


@dataclass(frozen=True)
class RefreshOutcome:
    source: str
    ok: bool
    requests: int  # requests this refresh sent
    taxa: int  # species in the list now in use
    error: str | None = None


def flora_source(cfg: Config) -> str | None:
    """The key of the configured flora ("place:6", "file:/abs/flora.csv"), None when off."""
    d = cfg.decision
    if d.flora == "place" and cfg.flora_place_id is not None:
        return f"place:{cfg.flora_place_id}"
    if d.flora == "file":
        return f"file:{cfg.resolve_path(d.flora_file)}"
    return None


def _place_name(cfg: Config) -> str:
    d = cfg.decision
    if d.flora_place_name:
        return d.flora_place_name
    return f"place {cfg.flora_place_id}" if d.flora == "place" else cfg.resolve_path(d.flora_file).stem


def load_flora(cfg: Config, store: Store) -> Flora | None:
    """The flora a cycle applies: the file, or the cached place list (None, with a warning, when the
    place was never read: deciding without the flora beats deciding against an empty one)."""
    source = flora_source(cfg)
    if source is None:
        return None
    if cfg.decision.flora == "file":
        taxa = set(read_flora_file(cfg.resolve_path(cfg.decision.flora_file)))
    else:
        with store.session() as s:
            taxa = set(q.get_flora_taxa(s, source))
        if not taxa:
            log.warning("flora %s has not been read yet; deciding without it", source)
            return None
    return Flora(source=source, place_name=_place_name(cfg), taxon_ids=frozenset(taxa))


def _read_place(platform: SpeciesCountsSource, place_id: int, max_requests: int
                ) -> tuple[dict[int, tuple[str, int]], int, str | None]:
    """(species id -> (name, count), requests sent, error or None).  The first page's total says how
    many pages are needed, so a place too large for the budget costs one request, not max_requests."""
    taxa: dict[int, tuple[str, int]] = {}
    requests, page, pages = 0, 1, 1
    while page <= pages:
        if requests >= max_requests:
            return taxa, requests, (f"the place has more taxa than {max_requests} requests of {PER_PAGE} can "
                                    f"read; raise [decision] flora_max_requests")
        try:
            results, total = platform.get_species_counts(place_id, page, PER_PAGE)
        except PlatformError as exc:
            return taxa, requests + 1, str(exc)
        requests += 1
        pages = math.ceil(total / PER_PAGE) if total else 0
        if pages > max_requests:
            return taxa, requests, (f"the place has {total} taxa: {pages} requests, more than "
                                    f"[decision] flora_max_requests = {max_requests}")
        for taxon, count in results:
            if taxon.rank == "species":
                taxa[taxon.id] = (taxon.name, count)
        if not results:
            break
        page += 1
    return taxa, requests, None


def refresh_flora(cfg: Config, store: Store, platform: object) -> RefreshOutcome | None:
    """Re-reads the place's flora; None when the flora is not "place".  Never raises for a platform
    failure: the outcome says what went wrong and the last good list stays in use."""
    source = flora_source(cfg)
    place_id = cfg.flora_place_id
    if cfg.decision.flora != "place" or source is None or place_id is None:
        return None
    if not hasattr(platform, "get_species_counts"):
        raise PlantBotError(f"platform {getattr(platform, 'name', '?')} cannot list a place's taxa; "
                            "use [decision] flora = \"file\"")
    taxa, requests, error = _read_place(platform, place_id, cfg.decision.flora_max_requests)  # type: ignore[arg-type]
    if error is None and not taxa:
        error = "the place has no verifiable plant records at species rank"
    with store.session() as s:
        if error is None:
            q.replace_flora(s, source, taxa)
        q.record_refresh(s, source, ok=error is None, requests=requests, error=error)
        kept = len(q.get_flora_taxa(s, source))
    if error is None:
        log.info("flora %s refreshed: %d species in %d request(s)", source, kept, requests)
    else:
        log.warning("flora %s refresh failed after %d request(s), keeping the last list (%d species): %s",
                    source, requests, kept, error)
    return RefreshOutcome(source, error is None, requests, kept, error)


def refresh_if_stale(cfg: Config, store: Store, platform: object) -> RefreshOutcome | None:
    """Refreshes when the cached list is missing or older than `[schedule] flora_refresh_seconds`."""
    source = flora_source(cfg)
    if cfg.decision.flora != "place" or source is None:
        return None
    with store.session() as s:
        state = q.get_refresh_state(s, source)
    max_age = timedelta(seconds=cfg.schedule.flora_refresh_seconds)
    if state.fetched_at is not None and utcnow() - state.fetched_at < max_age:
        return None
    return refresh_flora(cfg, store, platform)
