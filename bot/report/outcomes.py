"""Outcome tracking: did the community agree with what PlantBot posted (or would have posted)?

`refresh_outcomes` re-reads the observations behind posted identifications/comments and dry-run
"would have posted" decisions, at most 30 ids a request (one upstream page), never-checked first,
and records one OutcomeRow per suggestion, keeping older checks so trends over time show.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from bot.config import Config
from bot.domain import Observation, Outcome, Taxon, utcnow
from bot.errors import PlatformError
from bot.platforms.base import Platform
from bot.store.audit import Trackable, record_outcomes, select_trackable
from bot.store.db import Store
from bot.store.values import NewOutcome

log = logging.getLogger(__name__)

BATCH = 30  # the API's most ids per request
GONE_STATES = ("withdrawn", "hidden", "deleted")



class TaxonLookup:
    """Ancestries known from the observations themselves, else one cached `get_taxon` per id."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.cache: dict[int, Taxon | None] = {}

    def learn(self, obs: Observation) -> None:
        taxa = [obs.taxon] + [i.taxon for i in obs.identifications]
        for t in taxa:
            if t is not None and t.ancestor_ids and t.id not in self.cache:
                self.cache[t.id] = t

    def get(self, taxon_id: int) -> Taxon | None:
        if taxon_id not in self.cache:
            self.cache[taxon_id] = self.platform.get_taxon(taxon_id)
        return self.cache[taxon_id]


def classify(proposed: int, community: int | None, lookup: TaxonLookup) -> Outcome:
    """confirmed / refined / contradicted / pending for a suggestion still standing.

    A community taxon *above* the proposal (the community has only reached its genus so far,
    the usual state right after a species ID on a genus-level observation) is pending, not
    contradicted: nobody has disagreed at the proposed rank yet.
    """
    if community is None:
        return Outcome.PENDING
    if community == proposed:
        return Outcome.CONFIRMED
    ct = lookup.get(community)
    if ct is not None and ct.is_within(proposed):
        return Outcome.REFINED
    pt = lookup.get(proposed)
    if pt is not None and pt.is_within(community):
        return Outcome.PENDING
    if ct is None or pt is None:
        log.warning("taxon %s or %s unknown to the platform; outcome left pending", community, proposed)
        return Outcome.PENDING
    return Outcome.CONTRADICTED


def post_state(item: Trackable, obs: Observation) -> str:
    """current / withdrawn / hidden / deleted for a post; none for a dry-run decision."""
    if item.post_kind is None or item.remote_id is None:
        return "none"
    if item.post_kind == "identification":
        ident = next((i for i in obs.identifications if i.id == item.remote_id), None)
        if ident is None:
            return "deleted"
        if getattr(ident, "hidden", False):
            return "hidden"
        return "current" if ident.current else "withdrawn"
    comment = next((c for c in obs.comments if c.id == item.remote_id), None)
    if comment is None:
        return "deleted"
    return "hidden" if comment.hidden else "current"


def judge(item: Trackable, obs: Observation | None, lookup: TaxonLookup, now: datetime) -> NewOutcome:
    """One check of one suggestion."""
    if obs is None:
        return NewOutcome(item.decision_id, now, None, None, "deleted", Outcome.GONE)
    lookup.learn(obs)
    state = post_state(item, obs)
    obs_taxon = obs.taxon.id if obs.taxon else None
    gone = state in GONE_STATES
    outcome = Outcome.GONE if gone else classify(item.taxon_id, obs.community_taxon_id, lookup)
    return NewOutcome(item.decision_id, now, obs.community_taxon_id, obs_taxon, state, outcome)


def _batches(items: Sequence[Trackable]) -> list[list[Trackable]]:
    """Groups of suggestions whose distinct observation ids fit one request."""
    out: list[list[Trackable]] = []
    ids: set[int] = set()
    for item in items:
        if not out or (item.observation_id not in ids and len(ids) >= BATCH):
            out.append([])
            ids = set()
        out[-1].append(item)
        ids.add(item.observation_id)
    return out


def refresh_outcomes(store: Store, platform: Platform, cfg: Config, *, now: datetime | None = None,
                     limit: int | None = None,
                     progress: Callable[[int, int], None] | None = None) -> dict[str, int | str]:
    """Re-reads and classifies up to `limit` suggestions; returns counts per outcome.

    Each batch is committed on its own, so a budget stop or an API failure loses nothing already
    read; the next run resumes with the suggestions checked longest ago.  `progress(done, total)`
    is called after each batch (the CLI draws a bar with it).
    """
    del cfg  # the platform adapter already carries the request budget and batching settings
    checked_at = now or utcnow()
    with store.session() as s:
        items = select_trackable(s, limit)
    counts: dict[str, int | str] = {k: 0 for k in ("checked", "confirmed", "refined", "contradicted",
                                                     "pending", "gone", "requests")}
    lookup = TaxonLookup(platform)
    sent_before = getattr(platform, "requests_sent", None)
    done = 0
    for batch in _batches(items):
        ids = list(dict.fromkeys(i.observation_id for i in batch))
        try:
            found = {o.id: o for o in platform.get_observations(ids)}
            if sent_before is None:  # a platform that does not count its requests: one read a batch
                counts["requests"] = int(counts["requests"]) + 1
            results = [judge(item, found.get(item.observation_id), lookup, checked_at) for item in batch]
        except PlatformError as exc:  # BudgetExhausted included: stop, keep what is recorded
            log.warning("audit refresh stopped after %d checks: %s", counts["checked"], exc)
            counts["stopped"] = str(exc)
            break
        with store.session() as s:
            record_outcomes(s, results)
        for r in results:
            counts[r.outcome] = int(counts[r.outcome]) + 1
        counts["checked"] = int(counts["checked"]) + len(results)
        done += len(batch)
        if progress is not None:
            progress(done, len(items))
    if sent_before is not None:  # observation reads and taxon look-ups alike, retries included
        counts["requests"] = int(getattr(platform, "requests_sent", 0)) - int(sent_before)
    log.info("audit refresh: %s", counts)
    return counts
