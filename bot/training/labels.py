"""Filling a labels.csv's taxon ids from the platform's taxa search, without guessing.

A label whose name has no exact scientific-name match at its rank is *unmapped*; a name that
matches several taxa, or two labels that land on the same taxon, are *ambiguous*.  Both are reported
and left empty, because a wrong taxon id would make the bot propose a wrong identification.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Protocol

from bot.domain import PLANTAE, Label, Taxon

log = logging.getLogger(__name__)
PLANTAE_ID = 47126


class TaxaSearch(Protocol):
    """The part of the Platform protocol this needs (tests pass a small fake)."""

    def search_taxa(self, name: str, rank: str | None = None) -> list[Taxon]: ...


@dataclass
class Resolution:
    labels: list[Label]
    unmapped: list[str] = field(default_factory=list)  # one line each: "name (rank): why"
    ambiguous: list[str] = field(default_factory=list)
    filled: int = 0  # ids written by this run (with --overwrite: every id looked up again)
    changed: int = 0  # of those, ids that differ from what the file held

    @property
    def ok(self) -> bool:
        return not self.unmapped and not self.ambiguous


def _is_plant(t: Taxon) -> bool:
    return t.iconic_taxon_name == PLANTAE or PLANTAE_ID in t.ancestor_ids


class _Resolver:
    def __init__(self, platform: TaxaSearch) -> None:
        self.platform = platform
        self.cache: dict[tuple[str, str], list[Taxon]] = {}
        self.unmapped: list[str] = []
        self.ambiguous: list[str] = []
        self.filled = 0
        self.changed = 0

    def matches(self, name: str, rank: str) -> list[Taxon]:
        """Exact (case-insensitive) name matches at `rank`; plants preferred over homonyms elsewhere."""
        key = (name.strip().lower(), rank)
        if key not in self.cache:
            found = [t for t in self.platform.search_taxa(name.strip(), rank=rank)
                     if t.name.strip().lower() == key[0] and t.rank == rank]
            plants = [t for t in found if _is_plant(t)]
            unique = {t.id: t for t in (plants or found)}
            self.cache[key] = list(unique.values())
        return self.cache[key]

    def resolve(self, current: int | None, name: str, rank: str, overwrite: bool) -> int | None:
        if not name.strip():
            return current
        if current is not None and not overwrite:
            return current
        found = self.matches(name, rank)
        if len(found) == 1:
            self.filled += 1
            self.changed += int(current is not None and found[0].id != current)
            return found[0].id
        if not found:
            _add_once(self.unmapped, f"{name} ({rank}): no taxon with exactly this name")
        else:
            ids = ", ".join(str(t.id) for t in found)
            _add_once(self.ambiguous, f"{name} ({rank}): {len(found)} taxa have this name (ids {ids})")
        return None


def _add_once(items: list[str], line: str) -> None:
    if line not in items:
        items.append(line)


def resolve_labels(labels: list[Label], platform: TaxaSearch, overwrite: bool = False) -> Resolution:
    """Fills taxon_id, genus_taxon_id and family_taxon_id; ids already present are kept unless `overwrite`."""
    r = _Resolver(platform)
    out: list[Label] = []
    for label in labels:
        out.append(replace(
            label,
            taxon_id=r.resolve(label.taxon_id, label.name, label.rank, overwrite),
            genus_taxon_id=r.resolve(label.genus_taxon_id, label.genus, "genus", overwrite),
            family_taxon_id=r.resolve(label.family_taxon_id, label.family, "family", overwrite),
        ))
    out = _clear_shared_taxa(out, r.ambiguous)
    log.info("labels resolve: %d ids filled, %d unmapped, %d ambiguous", r.filled, len(r.unmapped),
             len(r.ambiguous))
    return Resolution(out, r.unmapped, r.ambiguous, r.filled, r.changed)


def _clear_shared_taxa(labels: list[Label], ambiguous: list[str]) -> list[Label]:
    """Two outputs on one taxon would make the model's scores for it meaningless: empty both, report."""
    by_taxon: dict[int, list[Label]] = defaultdict(list)
    for label in labels:
        if label.taxon_id is not None:
            by_taxon[label.taxon_id].append(label)
    shared = {tid: group for tid, group in by_taxon.items() if len(group) > 1}
    for tid, group in shared.items():
        names = ", ".join(label.name for label in group)
        ambiguous.append(f"taxon {tid} is the match of {len(group)} labels: {names}")
    return [replace(label, taxon_id=None) if label.taxon_id in shared else label for label in labels]
