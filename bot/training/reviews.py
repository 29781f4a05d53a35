"""`plantbot dataset from-reviews`: the moderators' decisions (and the community's) as training labels.

Every observation the bot proposed on can teach the model once a person has said what it is:

- an approved proposal: the label is the taxon that was proposed (and posted);
- an edited one: the label is the moderator's taxon;
- an audited outcome (`plantbot audit refresh`) with a community taxon: the label is the community
  taxon, which wins over a moderator's label because several identifiers agreed on it;
- a rejected proposal: not a label but a "not this taxon" pair, written to `negatives.csv`.
  `plantbot train` does not use them (plain cross-entropy has no place for them); they are kept for
  a later negative-aware loss and for the audit.

Only species among the bundle's labels become training rows (the model has no output for others);
the rest are counted per taxon in `summary.json` and on the console.  Photos are fetched through the
bot's safe download (allowed hosts, byte limit, media budget), each once: a file on disk is complete
and is never fetched again, so a run that stopped half-way resumes.
"""

from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.domain import Label
from bot.store.labels import Negative, ReviewLabel
from bot.training.collect import Fetch, _download, _progress, _State
from bot.training.dataset import ManifestRow, write_labels, write_manifest

log = logging.getLogger(__name__)

@dataclass
class ReviewDataset:
    out: Path
    rows: int = 0  # photos in train.csv
    observations: int = 0
    by_source: dict[str, int] = field(default_factory=dict)  # observations per source
    not_in_labels: dict[int, int] = field(default_factory=dict)  # taxon id -> observations left out
    negatives: int = 0
    photos_failed: int = 0


def dataset_from_reviews(review_labels: dict[int, ReviewLabel], negatives: Sequence[Negative],
                         photos: dict[int, list[tuple[int, str]]], labels: list[Label], out: Path, fetch: Fetch,
                         photo_size: str = "medium", progress: bool = True) -> ReviewDataset:
    """Writes OUT/train.csv (path,label,observation_id,tag), sources.csv, negatives.csv, labels.csv (the
    bundle's, order kept) and summary.json; photos under OUT/photos.  The labels, negatives and stored
    photo URLs come from `bot.store.labels` (the CLI reads them)."""
    by_taxon = {lab.taxon_id: lab for lab in labels if lab.taxon_id is not None and lab.rank == "species"}
    result = ReviewDataset(out=Path(out))
    kept: list[ReviewLabel] = []
    left_out: Counter[int] = Counter()
    for rl in sorted(review_labels.values(), key=lambda r: r.observation_id):
        if rl.taxon_id in by_taxon:
            kept.append(rl)
        else:
            left_out[rl.taxon_id] += 1
    state = _State(result.out, {"from": "reviews"})
    with _progress(progress) as bar:
        todo = [(pid, url) for rl in kept for pid, url in photos.get(rl.observation_id, [])]
        result.photos_failed = _download(state, fetch, todo, photo_size, bar)
    rows: list[ManifestRow] = []
    sources: list[tuple[int, int, str, str]] = []
    for rl in kept:
        present = [pid for pid, _ in photos.get(rl.observation_id, []) if state.photo_path(pid).exists()]
        if not present:
            continue
        name = by_taxon[rl.taxon_id].name
        rows.extend(ManifestRow(f"photos/{pid}.jpg", name, rl.observation_id, "") for pid in present)
        sources.append((rl.observation_id, rl.taxon_id, name, rl.source))
    write_manifest(result.out / "train.csv", rows)
    write_labels(result.out / "labels.csv", labels)
    _write_csv(result.out / "sources.csv", ("observation_id", "taxon_id", "label", "source"), sources)
    _write_csv(result.out / "negatives.csv", ("observation_id", "taxon_id", "name", "moderator", "reason"),
               [(n.observation_id, n.taxon_id, n.name, n.moderator, n.reason) for n in negatives])
    result.rows, result.observations = len(rows), len(sources)
    result.by_source = dict(Counter(src for *_, src in sources))
    result.not_in_labels = dict(sorted(left_out.items()))
    result.negatives = len(negatives)
    _write_summary(result)
    return result


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def _write_summary(r: ReviewDataset) -> None:
    doc = {"rows": r.rows, "observations": r.observations, "by_source": r.by_source,
           "not_in_labels": {str(k): v for k, v in r.not_in_labels.items()}, "negatives": r.negatives,
           "negatives_used_by_training": False, "photos_failed": r.photos_failed}
    (r.out / "summary.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
