"""Training/test manifests from a folder of labelled photos (`plantbot dataset from-folder`).

A manifest is a plain CSV with `path,label,observation_id,tag`: `path` absolute or relative to the
manifest's folder, `label` the label's scientific name as in labels.csv, `observation_id` grouping
photos of one observation (evaluation averages over them), `tag` habit/flower/leaf/... or empty.
The split is made per species and per observation, so no observation straddles train and test.

A folder has no observations, so consecutive photos of one species are grouped into
pseudo-observations of 1-4 photos: per-observation evaluation then works as on platform data.
"""

from __future__ import annotations

import csv
import logging
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.classifier.bundle import write_labels
from bot.domain import Label
from bot.errors import UsageError

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
MANIFEST_COLUMNS = ("path", "label", "observation_id", "tag")


@dataclass(frozen=True)
class ManifestRow:
    path: str
    label: str
    observation_id: int
    tag: str = ""


@dataclass(frozen=True)
class TaxonomyRow:
    name: str
    genus: str
    family: str
    taxon_id: int | None = None
    genus_taxon_id: int | None = None
    family_taxon_id: int | None = None


@dataclass(frozen=True)
class DatasetSummary:
    out: Path
    species: int
    train_photos: int
    test_photos: int
    train_observations: int
    test_observations: int
    skipped: tuple[str, ...] = ()  # one line per thing left out, with the reason
    habit_photos: int = 0  # photos tagged `habit` (dataset from-platform --habit-field)


# ---------------------------------------------------------------- small CSV readers


def read_csv(path: Path, required: Sequence[str], what: str) -> list[dict[str, str]]:
    """Rows with keys and values stripped; a missing file, bad CSV or missing column is a one-line UsageError."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    except FileNotFoundError:
        raise UsageError(f"{what} {path} not found") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"{what} {path}: unreadable CSV ({exc})") from None
    missing = [c for c in required if c not in header]
    if missing:
        raise UsageError(f"{what} {path}: missing column(s) {', '.join(missing)} (has {', '.join(header)})")
    return rows


def _opt_int(value: str, where: str) -> int | None:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"{where}: {value!r} is not an integer taxon id") from None


def read_taxonomy(path: Path) -> list[TaxonomyRow]:
    """taxonomy.csv: name,genus,family and optionally taxon_id,genus_taxon_id,family_taxon_id."""
    out: list[TaxonomyRow] = []
    seen: set[str] = set()
    for line, row in enumerate(read_csv(path, ("name", "genus", "family"), "taxonomy"), start=2):
        where = f"taxonomy {path} line {line}"
        if not row["name"]:
            raise UsageError(f"{where}: name is empty")
        if row["name"] in seen:
            raise UsageError(f"{where}: {row['name']!r} is listed twice")
        seen.add(row["name"])
        out.append(TaxonomyRow(row["name"], row["genus"], row["family"],
                               _opt_int(row.get("taxon_id", ""), where),
                               _opt_int(row.get("genus_taxon_id", ""), where),
                               _opt_int(row.get("family_taxon_id", ""), where)))
    if not out:
        raise UsageError(f"taxonomy {path}: no rows")
    return out


def read_tags(path: Path, root: Path) -> dict[Path, str]:
    """tags.csv: path (relative to ROOT, or absolute), tag -> {resolved path: tag}."""
    return {(root / row["path"]).resolve(): row["tag"].lower() for row in read_csv(path, ("path", "tag"), "tags")
            if row["path"]}


def labels_from_taxonomy(rows: Iterable[TaxonomyRow]) -> list[Label]:
    return [Label(i, r.taxon_id, r.name, "species", r.genus_taxon_id, r.genus, r.family_taxon_id, r.family)
            for i, r in enumerate(rows)]


# ---------------------------------------------------------------- grouping, splitting, writing


def group_consecutive(n: int, rng: random.Random, max_size: int = 4) -> list[range]:
    """Split indices 0..n-1 into consecutive runs of 1..max_size (pseudo-observations)."""
    groups: list[range] = []
    start = 0
    while start < n:
        size = min(rng.randint(1, max_size), n - start)
        groups.append(range(start, start + size))
        start += size
    return groups


def split_groups(groups: Sequence[int], fraction: float, rng: random.Random) -> set[int]:
    """The observation ids that go to test: round(fraction * n), but never all of a species' observations."""
    if fraction <= 0 or len(groups) < 2:
        return set()
    n_test = min(len(groups) - 1, max(1, round(len(groups) * fraction)))
    return set(rng.sample(list(groups), n_test))


def write_manifest(path: Path, rows: Iterable[ManifestRow]) -> int:
    """Writes a manifest atomically; returns the number of rows."""
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(MANIFEST_COLUMNS)
        for r in rows:
            writer.writerow([r.path, r.label, r.observation_id, r.tag])
            count += 1
    os.replace(tmp, path)
    return count


def write_split(out: Path, rows: Sequence[ManifestRow], test_ids: set[int], labels: list[Label],
                skipped: Sequence[str] = ()) -> DatasetSummary:
    """train.csv, test.csv and labels.csv in `out`; the summary of what was written."""
    out.mkdir(parents=True, exist_ok=True)
    train = [r for r in rows if r.observation_id not in test_ids]
    test = [r for r in rows if r.observation_id in test_ids]
    write_manifest(out / "train.csv", train)
    write_manifest(out / "test.csv", test)
    write_labels(out / "labels.csv", labels)
    return DatasetSummary(out, len(labels), len(train), len(test), len({r.observation_id for r in train}),
                          len({r.observation_id for r in test}), tuple(skipped))


# ---------------------------------------------------------------- from a folder


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def from_folder(root: Path, taxonomy: Path, out: Path, tags: Path | None = None, test_fraction: float = 0.2,
                seed: int = 0) -> DatasetSummary:
    """ROOT/<species name>/*.jpg -> OUT/train.csv, test.csv, labels.csv (labels in taxonomy order)."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise UsageError(f"image folder {root} not found")
    if not 0 <= test_fraction < 1:
        raise UsageError(f"--test-fraction must be at least 0 and below 1, got {test_fraction}")
    species = read_taxonomy(Path(taxonomy))
    known = {s.name for s in species}
    folders = {p.name: p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    unknown = sorted(set(folders) - known)
    if unknown:
        raise UsageError(f"{len(unknown)} folder(s) of {root} not in the taxonomy, e.g. {unknown[0]!r} "
                         "(add them to taxonomy.csv or move them away)")
    tag_of = read_tags(Path(tags), root) if tags else {}
    rng = random.Random(seed)
    rows: list[ManifestRow] = []
    kept: list[TaxonomyRow] = []
    skipped: list[str] = []
    test_ids: set[int] = set()
    next_id = 1
    for sp in species:
        images = _images(folders[sp.name]) if sp.name in folders else []
        if not images:
            skipped.append(f"{sp.name}: no photos in {root / sp.name}")
            continue
        kept.append(sp)
        ids = []
        for group in group_consecutive(len(images), rng):
            ids.append(next_id)
            rows.extend(ManifestRow(str(images[i]), sp.name, next_id, tag_of.get(images[i].resolve(), ""))
                        for i in group)
            next_id += 1
        test_ids |= split_groups(ids, test_fraction, rng)
    if not kept:
        raise UsageError(f"no photos found under {root} for any species of {taxonomy}")
    for line in skipped:
        log.warning("left out %s", line)
    return write_split(Path(out), rows, test_ids, labels_from_taxonomy(kept), skipped)
