"""A training set from the community's own research-grade observations (`plantbot dataset from-platform`).

Three resumable phases, all state in the output folder, so an interrupted run (Ctrl-C, a spent
request budget, a network failure) continues where it stopped and fetches each photo once:

1. list: research-grade plant observations page by page through the Platform adapter; each page is
   appended to `observations.jsonl` and only then the cursor in `progress.json` moves on;
2. select: species with at least `min_photos` photos, the `max_species` best-represented ones, their
   genus and family looked up once each (`taxa.json`);
3. download: every photo of the selected observations to `photos/<photo id>.jpg` (written to a
   temporary name and renamed, so a file that exists is complete); a photo that fails is logged
   in `failed.jsonl` and retried by the next run.

Finally train.csv/test.csv (observation ids kept for grouping) and labels.csv with taxon ids.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from bot import photos
from bot.config import Config
from bot.domain import Label, Observation, Taxon
from bot.errors import BudgetExhausted, PhotoRefused, PlantBotError, PlatformError, UsageError
from bot.imaging import ImageDecodeError, decode_image
from bot.platforms.base import ObservationPage
from bot.platforms.photo_host import PhotoHost
from bot.training.dataset import DatasetSummary, ManifestRow, split_groups, write_split

log = logging.getLogger(__name__)
Fetch = Callable[[str], bytes]


class ListingPlatform(Protocol):
    """The reads of bot.platforms.base.Platform this needs (any adapter; tests pass a small fake)."""

    def get_new_observations(self, cursor: int) -> Iterator[ObservationPage]: ...

    def get_taxon(self, taxon_id: int) -> Taxon | None: ...


@dataclass(frozen=True)
class CollectOptions:
    min_photos: int = 10  # per species
    max_species: int = 100
    test_fraction: float = 0.2
    seed: int = 0
    photo_size: str = "medium"
    filters: tuple[tuple[str, Any], ...] = ()  # e.g. (("place_id", 6883),): a folder is for one query
    habit: HabitRule = dataclasses.field(default_factory=lambda: HabitRule())


HABIT_ALL = {"yes", "true", "all", "habit", "whole plant", "sí", "si"}


@dataclass(frozen=True)
class HabitRule:
    """Which photos to tag `habit` (the augmentation never turns them upside down): an observation
    field's value, or an annotation (controlled attribute and value ids) that tags every photo."""

    field: str | None = None
    annotation: tuple[int, int] | None = None

    def __bool__(self) -> bool:
        return bool(self.field) or self.annotation is not None

    def describe(self) -> str:
        parts = ([f"field {self.field!r}"] if self.field else []) + \
            ([f"annotation {self.annotation[0]}={self.annotation[1]}"] if self.annotation else [])
        return " or ".join(parts) or "no rule"


def habit_photos(photo_ids: list[int], field_values: dict[str, str], annotations: list[tuple[int, int, int]],
                 rule: HabitRule) -> list[int]:
    """The photos (ids in position order) the rule tags: the annotation, unless voted down, tags every
    photo; the field's yes-like value ("yes", "all", "habit", ...) every photo, a list of 1-based
    positions ("1, 3") those; anything else none."""
    if rule.annotation is not None and any((a, v) == rule.annotation and score >= 0 for a, v, score in annotations):
        return list(photo_ids)
    if not rule.field:
        return []
    name = rule.field.strip().lower()
    value = next((v for k, v in field_values.items() if k.strip().lower() == name), "").strip().lower()
    if value in HABIT_ALL:
        return list(photo_ids)
    parts = [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
    if not parts or not all(part.isdigit() for part in parts):
        return []
    wanted = {int(part) - 1 for part in parts}
    return [pid for i, pid in enumerate(photo_ids) if i in wanted]


def habit_photo_ids(obs: Observation, field_name: str | None, annotation: tuple[int, int] | None = None) -> list[int]:
    """`habit_photos` for a parsed observation."""
    return habit_photos([p.id for p in obs.photos], obs.field_values,
                        [(a.attribute_id, a.value_id, a.vote_score) for a in obs.annotations],
                        HabitRule(field_name, annotation))


def photo_fetcher(cfg: Config) -> Fetch:
    """Photo bytes through bot.photos' guards: allowed hosts only (each redirect hop checked), the
    byte cap, the timeout and the media budget (BudgetExhausted stops the run; the next one resumes)."""
    host = PhotoHost(cfg)
    budget = photos.MediaBudget.from_config(cfg)

    def fetch(url: str) -> bytes:
        return photos.fetch_photo_bytes(host, url, cfg, photos.resolve_addresses, budget)

    return fetch


# ---------------------------------------------------------------- state in the output folder


class _State:
    def __init__(self, out: Path, filters: dict[str, Any]) -> None:
        self.out = out
        self.photos = out / "photos"
        self.photos.mkdir(parents=True, exist_ok=True)
        self.progress_path = out / "progress.json"
        self.progress: dict[str, Any] = {"version": 1, "filters": filters, "cursor": 0, "listed": False}
        if self.progress_path.exists():
            saved = json.loads(self.progress_path.read_text(encoding="utf-8"))
            if saved.get("filters") != filters:
                raise UsageError(f"{out} holds a dataset for {saved.get('filters')}, not {filters}; "
                                 "use another --out folder")
            self.progress = saved
        self.taxa: dict[str, dict[str, Any]] = _read_json(out / "taxa.json", {})

    def save(self) -> None:
        _write_json(self.progress_path, self.progress)
        _write_json(self.out / "taxa.json", self.taxa)

    def append_observations(self, records: list[dict[str, Any]]) -> None:
        with (self.out / "observations.jsonl").open("a", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(rec) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def observations(self) -> dict[int, dict[str, Any]]:
        """Listed observations by id (a page written twice after a crash counts once)."""
        path = self.out / "observations.jsonl"
        if not path.exists():
            return {}
        recs = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
        return {rec["id"]: rec for rec in recs}

    def photo_path(self, photo_id: int) -> Path:
        return self.photos / f"{photo_id}.jpg"

    def log_failure(self, photo_id: int, url: str, error: str) -> None:
        with (self.out / "failed.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"photo_id": photo_id, "url": url, "error": error}) + "\n")


def _read_json(path: Path, default: Any) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else default


def _write_json(path: Path, doc: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    os.replace(tmp, path)


@contextmanager
def _progress(enabled: bool) -> Iterator[Progress]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not enabled, transient=False) as bar:
        yield bar


# ---------------------------------------------------------------- phases


def _record(obs: Observation) -> dict[str, Any] | None:
    """What the dataset keeps of an observation; None when it is not a research-grade plant species.
    Its fields and annotations are kept, so the habit rule applies when the manifests are written."""
    if not obs.is_plant or obs.taxon is None or obs.taxon.rank != "species" or not obs.photos:
        return None
    if obs.quality_grade not in (None, "research"):
        return None
    return {"id": obs.id, "taxon_id": obs.taxon.id, "name": obs.taxon.name,
            "ancestor_ids": list(obs.taxon.ancestor_ids), "photos": [[p.id, p.url] for p in obs.photos],
            "fields": dict(obs.field_values),
            "annotations": [[a.attribute_id, a.value_id, a.vote_score] for a in obs.annotations]}


def _habit_of(rec: dict[str, Any], rule: HabitRule) -> set[int]:
    if "fields" not in rec:  # listed by an earlier version, which kept only the tags it computed then
        return {int(p) for p in rec.get("habit") or ()}
    return set(habit_photos([int(pid) for pid, _ in rec["photos"]], rec["fields"],
                            [(int(a), int(v), int(s)) for a, v, s in rec.get("annotations") or ()], rule))


def _list(platform: ListingPlatform, state: _State, bar: Progress) -> None:
    if state.progress["listed"]:
        return
    task = bar.add_task("listing observations", total=None)
    for page in platform.get_new_observations(int(state.progress["cursor"])):
        records = [r for r in (_record(o) for o in page.observations) if r is not None]
        state.append_observations(records)
        if page.last_id:
            state.progress["cursor"] = max(int(state.progress["cursor"]), page.last_id)
        state.save()
        bar.advance(task, len(page.observations) + len(page.rejected))
    state.progress["listed"] = True
    state.save()


def _select(observations: dict[int, dict[str, Any]], opts: CollectOptions) -> list[int]:
    """Species ids with >= min_photos photos, most photos first (then by name), at most max_species."""
    photos: Counter[int] = Counter()
    names: dict[int, str] = {}
    for rec in observations.values():
        photos[rec["taxon_id"]] += len(rec["photos"])
        names[rec["taxon_id"]] = rec["name"]
    eligible = [tid for tid, n in photos.items() if n >= opts.min_photos]
    eligible.sort(key=lambda tid: (-photos[tid], names[tid]))
    return eligible[: opts.max_species]


def _lineage(platform: ListingPlatform, state: _State, rec: dict[str, Any]) -> tuple[Label | None, str | None]:
    """The species' label with genus and family from its ancestors (each taxon fetched once ever)."""
    found: dict[str, tuple[int, str]] = {}
    ancestors = [a for a in rec["ancestor_ids"] if a != rec["taxon_id"]]
    if not ancestors:  # the listing did not carry them: ask for the taxon itself
        taxon = platform.get_taxon(rec["taxon_id"])
        ancestors = [a for a in (taxon.ancestor_ids if taxon else ()) if a != rec["taxon_id"]]
    for aid in reversed(ancestors):
        key = str(aid)
        if not state.taxa.get(key, {}).get("name"):  # an empty name: a failed look-up an older run kept
            taxon = platform.get_taxon(aid)
            if taxon is None:  # never cached: the next run asks again
                state.taxa.pop(key, None)
                continue
            state.taxa[key] = {"name": taxon.name, "rank": taxon.rank}
        rank = state.taxa[key]["rank"]
        if rank in ("genus", "family") and rank not in found:
            found[rank] = (aid, state.taxa[key]["name"])
        if rank == "family":
            break
    if "genus" not in found or "family" not in found:
        return None, f"{rec['name']} (taxon {rec['taxon_id']}): genus or family not found among its ancestors"
    (gid, genus), (fid, family) = found["genus"], found["family"]
    return Label(0, rec["taxon_id"], rec["name"], "species", gid, genus, fid, family), None


def _download(state: _State, fetch: Fetch, todo: list[tuple[int, str]], size: str, bar: Progress) -> int:
    """Fetches the photos that are not on disk yet; returns how many failed (kept for the next run)."""
    task = bar.add_task("downloading photos", total=len(todo))
    bar.advance(task, sum(1 for pid, _ in todo if state.photo_path(pid).exists()))
    failed = 0
    for pid, url in todo:
        path = state.photo_path(pid)
        if path.exists():
            continue
        try:
            data = fetch(photos.rewrite_size(url, size))
            decode_image(data)  # never keep a file the trainer cannot read
        except BudgetExhausted:
            raise
        except (OSError, ImageDecodeError, ValueError, PlatformError, PhotoRefused) as exc:
            failed += 1
            state.log_failure(pid, url, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            log.warning("photo %d (%s) failed: %s", pid, url, exc)
            continue
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        bar.advance(task)
    return failed


def collect_from_platform(platform: ListingPlatform, out: Path, opts: CollectOptions, fetch: Fetch,
                          progress: bool = True) -> DatasetSummary:
    """Lists, selects and downloads (resuming any earlier run in `out`), then writes the manifests."""
    if opts.min_photos < 1 or opts.max_species < 1:
        raise UsageError("--min-photos and --max-species must be at least 1")
    out = Path(out)
    state = _State(out, {k: v for k, v in opts.filters})
    with _progress(progress) as bar:
        _list(platform, state, bar)
        observations = state.observations()
        chosen = _select(observations, opts)
        labels, skipped = _labels(platform, state, observations, chosen)
        state.save()
        if not labels:
            raise EmptyDataset(_why_empty(observations, chosen, skipped, opts))
        keep = {lab.taxon_id for lab in labels}
        selected = [rec for rec in observations.values() if rec["taxon_id"] in keep]
        todo = [(int(pid), url) for rec in selected for pid, url in rec["photos"]]
        failed = _download(state, fetch, todo, opts.photo_size, bar)
    if failed:
        skipped.append(f"{failed} photo(s) failed (see {out / 'failed.jsonl'}); run again to retry them")
    return _write(state, selected, labels, opts, skipped)


class EmptyDataset(PlantBotError):
    """Nothing to train on: no species passed selection (exit 1; what was fetched is kept)."""


def _why_empty(observations: dict[int, dict[str, Any]], chosen: list[int], skipped: list[str],
               opts: CollectOptions) -> str:
    if not observations:
        return "0 species: the platform listed no research-grade plant observation with photos for this query"
    if not chosen:
        return (f"0 species: none of the {len(observations)} observations' species has {opts.min_photos} "
                "photos (lower --min-photos)")
    return f"0 species: all {len(chosen)} candidates were left out, e.g. {skipped[0]}; run again to retry"


def _labels(platform: ListingPlatform, state: _State, observations: dict[int, dict[str, Any]],
            chosen: list[int]) -> tuple[list[Label], list[str]]:
    first: dict[int, dict[str, Any]] = {}
    for rec in observations.values():
        first.setdefault(rec["taxon_id"], rec)
    labels: list[Label] = []
    skipped: list[str] = []
    for tid in chosen:
        label, why = _lineage(platform, state, first[tid])
        if label is None:
            skipped.append(str(why))
        else:
            labels.append(label)
    labels.sort(key=lambda lab: (lab.family, lab.genus, lab.name))
    return [Label(i, lab.taxon_id, lab.name, lab.rank, lab.genus_taxon_id, lab.genus, lab.family_taxon_id,
                  lab.family) for i, lab in enumerate(labels)], skipped


def _write(state: _State, selected: list[dict[str, Any]], labels: list[Label], opts: CollectOptions,
           skipped: list[str]) -> DatasetSummary:
    name_of = {lab.taxon_id: lab.name for lab in labels}
    rows: list[ManifestRow] = []
    by_species: dict[int, list[int]] = defaultdict(list)
    for rec in sorted(selected, key=lambda r: r["id"]):
        present = [int(pid) for pid, _ in rec["photos"] if state.photo_path(int(pid)).exists()]
        if not present:
            continue
        by_species[rec["taxon_id"]].append(rec["id"])
        habit = _habit_of(rec, opts.habit)
        rows.extend(ManifestRow(f"photos/{pid}.jpg", name_of[rec["taxon_id"]], rec["id"],
                                "habit" if pid in habit else "") for pid in present)
    rng = random.Random(opts.seed)
    test_ids: set[int] = set()
    for tid in sorted(by_species):
        test_ids |= split_groups(by_species[tid], opts.test_fraction, rng)
    summary = write_split(state.out, rows, test_ids, labels, skipped)
    return dataclasses.replace(summary, habit_photos=sum(r.tag == "habit" for r in rows))
