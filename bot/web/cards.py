"""What a review card shows beyond the stored rows: the observation's context (re-read when stale),
the flags a moderator must not miss, and the exact text that would be posted.

The flags need taxon lineages; they come from what the observation read already carried, else from
the platform once per taxon per process (taxa do not move often, and a page shows few of them).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask_babel import gettext as _
from flask_babel import ngettext

from bot.config import Config
from bot.errors import PlantBotError
from bot.platforms.base import Platform
from bot.platforms.parse_v1 import opt_time
from bot.store.db import Store
from bot.store.records import upsert_observations
from bot.store.review import Card, utcnow
from bot.store.values import PredictionValue
from bot.texts import render_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Flag:
    """A warning on the card; `code` names it for styling and tests (the text is what people read)."""

    code: str  # observer, community, rollup, changed
    message: str


@dataclass(frozen=True)
class IdentView:
    user: str
    taxon_id: int | None
    taxon_name: str | None
    current: bool
    created_at: datetime | None
    new: bool  # added after the proposal was made


@dataclass(frozen=True)
class CommentView:
    user: str
    body: str
    created_at: datetime | None


@dataclass
class CardView:
    card: Card
    text: str
    names: dict[int, str]
    identifications: list[IdentView] = field(default_factory=list)
    comments: list[CommentView] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)
    genus_families: dict[int, str] = field(default_factory=dict)  # genus prediction id -> its family's name


class Lineages:
    """Taxon id -> ancestor ids (root first, the taxon last), cached for the life of the process."""

    def __init__(self) -> None:
        self._known: dict[int, tuple[int, ...]] = {}
        self._lock = threading.Lock()

    def learn(self, taxon_id: int, ancestors: Iterable[int]) -> None:
        chain = tuple(int(a) for a in ancestors)
        if chain:
            with self._lock:
                self._known[taxon_id] = chain if chain[-1] == taxon_id else (*chain, taxon_id)

    def get(self, taxon_id: int | None, platform: Platform | None) -> tuple[int, ...] | None:
        if taxon_id is None:
            return None
        with self._lock:
            if taxon_id in self._known:
                return self._known[taxon_id]
        if platform is None:
            return None
        try:
            taxon = platform.get_taxon(taxon_id)
        except PlantBotError as exc:
            log.info("no lineage for taxon %s: %s", taxon_id, exc)
            return None
        if taxon is None:
            return None
        self.learn(taxon_id, taxon.ancestor_ids)
        return self._known.get(taxon_id)


def stale_ids(cards: Sequence[Card], max_age_minutes: int, now: datetime | None = None) -> list[int]:
    """Observations whose stored context is missing or older than the configured age."""
    limit = (now or utcnow()) - timedelta(minutes=max_age_minutes)
    return [c.observation.id for c in cards if c.observation.context_at is None or c.observation.context_at < limit]


def refresh_context(store: Store, platform: Platform, observation_ids: Sequence[int]) -> str | None:
    """Re-reads these observations (the adapter batches: one request for a page of cards) and stores
    what they say now.  Returns the error in plain words when the platform could not be read."""
    if not observation_ids:
        return None
    try:
        fresh = platform.get_observations(list(observation_ids))
    except PlantBotError as exc:
        log.warning("could not refresh %d observations: %s", len(observation_ids), exc)
        return _("Could not re-read the observations from the platform (%(error)s); showing what was stored.",
                 error=str(exc))
    with store.session() as s:
        upsert_observations(s, fresh, platform.name)
    return None


def build_view(card: Card, cfg: Config, login: str, lineages: Lineages, platform: Platform | None) -> CardView:
    """The card's text, context and flags."""
    context = card.observation.context or {}
    view = CardView(card=card, text=render_text(card.decision, cfg, reviewed_by=login), names=_known_names(card))
    created = card.decision.created_at
    for raw in context.get("identifications", []):
        when = opt_time(raw.get("created_at"))
        if raw.get("taxon_id") is not None and raw.get("taxon_name"):
            view.names.setdefault(raw["taxon_id"], raw["taxon_name"])
            if raw.get("ancestor_ids"):
                lineages.learn(raw["taxon_id"], raw["ancestor_ids"])
        view.identifications.append(IdentView(user=str(raw.get("user", "?")), taxon_id=raw.get("taxon_id"),
                                              taxon_name=raw.get("taxon_name"), current=bool(raw.get("current")),
                                              created_at=when, new=bool(when and created and when > created)))
    view.comments = [CommentView(user=str(c.get("user", "?")), body=str(c.get("body", "")),
                                 created_at=opt_time(c.get("created_at"))) for c in context.get("comments", [])]
    if card.observation.taxon_id is not None and context.get("taxon_ancestors"):
        lineages.learn(card.observation.taxon_id, context["taxon_ancestors"])
    view.flags = _flags(view, lineages, platform)
    return view


def _known_names(card: Card) -> dict[int, str]:
    """Taxon names we already hold locally (to label the observer's and the community taxon)."""
    names: dict[int, str] = {}
    for p in [*card.top_species, *card.genus, *card.family]:
        if p.taxon_id is not None:
            names[p.taxon_id] = p.name
    if card.decision.taxon_id is not None and card.decision.taxon_name:
        names[card.decision.taxon_id] = card.decision.taxon_name
    if card.observation.taxon_id is not None and card.observation.taxon_name:
        names[card.observation.taxon_id] = card.observation.taxon_name
    return names


def _contradicts(proposed: int | None, other: int | None, lineages: Lineages, platform: Platform | None) -> bool:
    """True when neither taxon lies within the other (different branches of the tree)."""
    if proposed is None or other is None or proposed == other:
        return False
    mine, theirs = lineages.get(proposed, platform), lineages.get(other, platform)
    if mine is None or theirs is None:
        return False
    return other not in mine and proposed not in theirs


def _flags(view: CardView, lineages: Lineages, platform: Platform | None) -> list[Flag]:
    d, obs = view.card.decision, view.card.observation
    flags: list[Flag] = []
    name = view.names.get
    if _contradicts(d.taxon_id, obs.taxon_id, lineages, platform):
        flags.append(Flag("observer", _("Contradicts the observer's taxon (%(name)s).",
                                        name=name(obs.taxon_id or 0) or obs.taxon_id)))
    if obs.community_taxon_id != obs.taxon_id and _contradicts(d.taxon_id, obs.community_taxon_id, lineages,
                                                                   platform):
        flags.append(Flag("community", _("Contradicts the community taxon (%(name)s).",
                                         name=name(obs.community_taxon_id or 0) or obs.community_taxon_id)))
    flags += _rollup_flags(view, lineages, platform)
    new = [i for i in view.identifications if i.new]
    if new:
        flags.append(Flag("changed", ngettext("The observation changed since the proposal: %(num)d new "
                                              "identification.", "The observation changed since the proposal: "
                                              "%(num)d new identifications.", len(new))))
    return flags


def _rollup_flags(view: CardView, lineages: Lineages, platform: Platform | None) -> list[Flag]:
    """Each genus gets its family's name; the best genus outside the best family is flagged."""
    families: list[PredictionValue] = view.card.family
    for g in view.card.genus:
        chain = lineages.get(g.taxon_id, platform) if g.taxon_id is not None else None
        fam = next((f for f in families if chain and f.taxon_id in chain), None)
        if fam is not None:
            view.genus_families[g.id] = fam.name
    if not view.card.genus or not families:
        return []
    best_genus, best_family = view.card.genus[0], families[0]
    chain = lineages.get(best_genus.taxon_id, platform) if best_genus.taxon_id is not None else None
    if chain is None or best_family.taxon_id in chain:
        return []
    return [Flag("rollup", _("The roll-up disagrees: the best genus %(genus)s is not in the best family "
                             "%(family)s.", genus=best_genus.name, family=best_family.name))]
