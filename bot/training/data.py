"""Photos of a manifest matched to the bundle's labels, for training and for evaluation."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from bot.classifier import read_labels
from bot.domain import Label
from bot.errors import UsageError
from bot.training.dataset import read_csv

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("path", "label")

__all__ = ["ManifestPhotos", "manifest_photos", "read_labels", "training_photos"]


@dataclass
class ManifestPhotos:
    """Parallel lists, one entry per photo whose label is among the labels."""

    paths: list[Path]
    targets: list[int]
    tags: list[str]
    observation_ids: list[str]
    unknown_labels: dict[str, int]  # label name -> photos left out


def manifest_photos(manifest: Path, labels: list[Label]) -> ManifestPhotos:
    """Reads a manifest CSV (`path` relative to its folder or absolute, `label`, `observation_id`, `tag`).

    A photo without an observation id is its own observation.  Labels not in `labels` are counted
    and left out; the caller decides whether that is an error.
    """
    rows = read_csv(manifest, REQUIRED_COLUMNS, "manifest")
    index = {lab.name: lab.index for lab in labels}
    out = ManifestPhotos([], [], [], [], {})
    for line, row in enumerate(rows, start=2):
        name = (row.get("label") or "").strip()
        if name not in index:
            out.unknown_labels[name] = out.unknown_labels.get(name, 0) + 1
            continue
        path = Path((row.get("path") or "").strip())
        out.paths.append(path if path.is_absolute() else manifest.parent / path)
        out.targets.append(index[name])
        out.tags.append((row.get("tag") or "").strip())
        out.observation_ids.append((row.get("observation_id") or "").strip() or f"line{line}")
    return out


def training_photos(manifest: Path, labels: list[Label]) -> tuple[list[Path], list[int], list[str]]:
    """Training refuses unknown labels: a photo must never silently vanish from the training set."""
    photos = manifest_photos(manifest, labels)
    if photos.unknown_labels:
        names = sorted(photos.unknown_labels)
        raise UsageError(f"manifest {manifest}: {len(names)} label(s) not in labels.csv, e.g. {names[0]!r}")
    if not photos.paths:
        raise UsageError(f"manifest {manifest}: no photos")
    return photos.paths, photos.targets, photos.tags
