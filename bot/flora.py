"""The local flora as a prior on the model's species probabilities, applied before the decision rule.

A model trained on a continent's plants proposes species that do not grow where the observation was
made.  A species outside the community's flora (the taxa recorded in its place, or a checklist file)
has its probability multiplied by `weight` (0: Pl@ntNet-style restriction; between 0 and 1: a soft
prior).  The vector is *not* renormalised by default: the mass taken away stands for "something not
on the local list", so a model sure of an unlisted species (a garden escape, a first record) abstains
instead of proposing a listed look-alike with an inflated probability.  Genus and family sums follow,
because the rule rolls them up from the weighted vector.

Pure functions (plus the flora file reader), like `decide`, so the daemon and `evaluate` apply the
very same weighting.
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.domain import Label, Ranked
from bot.errors import UsageError


@dataclass(frozen=True)
class Flora:
    """A flora the cycle applies: which taxa, and how to name it on decisions and review cards."""

    source: str  # "place:6" or "file:/path/flora.csv"
    place_name: str  # shown as "not recorded in <place_name>"
    taxon_ids: frozenset[int]


@dataclass(frozen=True)
class FloraWeighting:
    probs: tuple[float, ...]
    removed: tuple[Ranked, ...]  # species of the unweighted top-k outside the flora, with their old probability


def apply_flora(probs: Sequence[float], labels: Sequence[Label], taxon_ids: Collection[int], *,
                weight: float = 0.0, renormalise: bool = False, top_k: int = 5) -> FloraWeighting:
    """Weights the species outside `taxon_ids`; labels without a platform taxon id are left as they are
    (there is nothing to look up).  `renormalise` rescales the result to the original total."""
    if len(probs) != len(labels):
        raise ValueError(f"{len(probs)} probabilities for {len(labels)} labels")
    outside = [lab.taxon_id is not None and lab.taxon_id not in taxon_ids for lab in labels]
    weighted = [float(p) * weight if out else float(p) for p, out in zip(probs, outside, strict=True)]
    if renormalise:
        before, after = sum(float(p) for p in probs), sum(weighted)
        if after > 0:
            weighted = [p * before / after for p in weighted]
    order = sorted(range(len(probs)), key=lambda i: (-probs[i], i))[:top_k]
    removed = tuple(Ranked(name=labels[i].name, taxon_id=labels[i].taxon_id, prob=float(probs[i]),
                           rank=labels[i].rank) for i in order if outside[i])
    return FloraWeighting(tuple(weighted), removed)


def read_flora_file(path: Path) -> dict[int, int]:
    """A flora CSV: a `taxon_id` column (other columns such as `name` are ignored) and an optional
    `count`.  A file without a header is read as one taxon id (and optionally a count) per line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(f"flora file {path}: cannot read: {exc.strerror or exc}") from None
    rows = [row for row in csv.reader(text.splitlines()) if row and any(cell.strip() for cell in row)]
    if not rows:
        raise UsageError(f"flora file {path}: empty")
    header = [cell.strip().lower() for cell in rows[0]]
    has_header = "taxon_id" in header
    id_col = header.index("taxon_id") if has_header else 0
    count_col = header.index("count") if has_header and "count" in header else (None if has_header else 1)
    out: dict[int, int] = {}
    for line, row in enumerate(rows[1:] if has_header else rows, start=2 if has_header else 1):
        try:
            taxon_id = int(row[id_col].strip())
            raw_count = row[count_col].strip() if count_col is not None and count_col < len(row) else ""
            count = int(raw_count) if raw_count else 1
        except (ValueError, IndexError):
            raise UsageError(f"flora file {path} line {line}: expected a taxon id (and a count), "
                             f"got {','.join(row)!r:.60}") from None
        out[taxon_id] = out.get(taxon_id, 0) + count
    return out
