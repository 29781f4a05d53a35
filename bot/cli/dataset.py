"""`plantbot dataset from-folder|from-platform|from-reviews` and `plantbot labels resolve`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from bot.cli import State, pass_state
from bot.errors import UsageError

_dir = click.Path(file_okay=False, path_type=Path)
_file = click.Path(dir_okay=False, path_type=Path)


def _platform(state: State, **overrides: Any) -> Any:
    """A read-only platform adapter for the configured site, with some [platform] keys overridden."""
    from bot.config import Secrets
    from bot.platforms import create_platform

    cfg = state.config
    cfg = dataclasses.replace(cfg, platform=dataclasses.replace(cfg.platform, **overrides))
    return create_platform(cfg, Secrets.from_env(), dry_run=True)


def _print_summary(summary: Any, habit_rule: str | None = None) -> None:
    click.echo(f"{summary.species} species: train {summary.train_photos} photos / "
               f"{summary.train_observations} observations, test {summary.test_photos} photos / "
               f"{summary.test_observations} observations")
    if habit_rule is not None:
        click.echo(f"{summary.habit_photos} photos tagged habit ({habit_rule})")
    elif summary.habit_photos:
        click.echo(f"{summary.habit_photos} photos tagged habit")
    for line in summary.skipped:
        click.echo(f"  left out: {line}")
    out = summary.out
    click.echo(f"wrote {out / 'train.csv'}, {out / 'test.csv'}, {out / 'labels.csv'}")


@click.group("dataset")
def dataset_group() -> None:
    """Build training/test manifests and labels.csv from photos."""


@dataset_group.command("from-folder")
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--taxonomy", type=_file, required=True, help="CSV: name,genus,family (+ optional taxon ids).")
@click.option("--tags", type=_file, help="CSV: path (relative to ROOT),tag (habit, flower, leaf, ...).")
@click.option("--test-fraction", type=float, default=0.2, show_default=True,
              help="Share of each species' (pseudo-)observations held out for testing.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=_dir, required=True, help="Folder for train.csv, test.csv and labels.csv.")
def from_folder_cmd(root: Path, taxonomy: Path, tags: Path | None, test_fraction: float, seed: int,
                    out: Path) -> None:
    """ROOT/<species name>/*.jpg -> manifests (photos grouped into pseudo-observations of 1-4)."""
    from bot.training.dataset import from_folder

    _print_summary(from_folder(root, taxonomy, out, tags=tags, test_fraction=test_fraction, seed=seed))


@dataset_group.command("from-platform")
@pass_state
@click.option("--place-id", type=int, help="Only observations in this place.")
@click.option("--project-id", type=int, help="Only observations in this project.")
@click.option("--min-photos", type=int, default=10, show_default=True, help="Least photos a species needs.")
@click.option("--max-species", type=int, default=100, show_default=True, help="Most species to keep.")
@click.option("--test-fraction", type=float, default=0.2, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--size", "photo_size", help="Photo size word (default: [photos] size).")
@click.option("--habit-field", help="Observation field marking habit photos: yes/all tags every photo of the "
                                   "observation, a list like '1,3' tags those positions ([dataset] habit_field).")
@click.option("--habit-annotation", metavar="ATTRIBUTE:VALUE",
              help="Annotation (controlled attribute and value ids) tagging every photo of the observation "
                   "habit ([dataset] habit_annotation_attribute_id and _value_id).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--out", type=_dir, required=True, help="Dataset folder (an interrupted run resumes here).")
def from_platform_cmd(state: State, place_id: int | None, project_id: int | None, min_photos: int,
                      max_species: int, test_fraction: float, seed: int, photo_size: str | None,
                      habit_field: str | None, habit_annotation: str | None, no_progress: bool, out: Path) -> None:
    """Research-grade plant observations of a place or project; resumable, each photo fetched once."""
    from bot.training.collect import CollectOptions, HabitRule, collect_from_platform, photo_fetcher

    if (place_id is None) == (project_id is None):
        raise UsageError("give exactly one of --place-id and --project-id")
    if not 0 <= test_fraction < 1:
        raise UsageError(f"--test-fraction must be at least 0 and below 1, got {test_fraction}")
    cfg = state.config
    filters = {"place_id": place_id} if place_id is not None else {"project_id": project_id}
    platform = _platform(state, quality_grade="research", place_id=place_id, project_id=project_id)
    fetch = photo_fetcher(cfg)
    ds = cfg.dataset
    config_annotation = (None if ds.habit_annotation_attribute_id is None or ds.habit_annotation_value_id is None
                         else (ds.habit_annotation_attribute_id, ds.habit_annotation_value_id))
    rule = HabitRule(habit_field or ds.habit_field or None,
                     _annotation(habit_annotation) if habit_annotation else config_annotation)
    opts = CollectOptions(min_photos, max_species, test_fraction, seed, photo_size or cfg.photos.size,
                          tuple(filters.items()), rule)
    summary = collect_from_platform(platform, out, opts, fetch=fetch, progress=not no_progress)
    _print_summary(summary, rule.describe() if rule else None)
    if rule.annotation and cfg.platform.flavor == "legacy":
        click.echo("  (a Rails fork's observations.json carries no annotations: only the field tags photos there)")


def _annotation(text: str) -> tuple[int, int]:
    """`--habit-annotation 12:13` (or 12=13): attribute and value ids."""
    attribute, sep, value = text.replace("=", ":").partition(":")
    if not sep or not attribute.strip().isdigit() or not value.strip().isdigit() \
            or min(int(attribute), int(value)) < 1:
        raise UsageError(f"--habit-annotation: expected ATTRIBUTE:VALUE ids like 12:13, got {text!r}")
    return int(attribute), int(value)


@dataset_group.command("from-reviews")
@pass_state
@click.option("--bundle", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="The bundle whose labels the rows must match (default: [model] path).")
@click.option("--size", "photo_size", help="Photo size word (default: [photos] size).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--out", type=_dir, required=True, help="Dataset folder (an interrupted run resumes here).")
def from_reviews_cmd(state: State, bundle: Path | None, photo_size: str | None, no_progress: bool,
                     out: Path) -> None:
    """Approved, edited and community-confirmed observations as training rows; rejections as negatives."""
    from bot.classifier import read_labels
    from bot.config import check_model_path
    from bot.store import Store
    from bot.store.labels import get_photos, get_review_labels
    from bot.training.collect import photo_fetcher
    from bot.training.reviews import dataset_from_reviews

    cfg = state.config
    labels = read_labels((bundle or check_model_path(cfg)) / "labels.csv")
    store = Store(cfg.database_path)
    try:
        with store.session() as s:
            review_labels, negatives = get_review_labels(s)
            photos = get_photos(s, sorted(review_labels))
    finally:
        store.close()
    r = dataset_from_reviews(review_labels, negatives, photos, labels, out, photo_fetcher(cfg),
                             photo_size or cfg.photos.size, progress=not no_progress)
    sources = ", ".join(f"{n} {k}" for k, n in sorted(r.by_source.items())) or "none"
    click.echo(f"{r.observations} observations ({sources}), {r.rows} photos -> {out / 'train.csv'}")
    if r.not_in_labels:
        click.echo(f"left out, not among the bundle's labels: {sum(r.not_in_labels.values())} observation(s) of "
                   f"{len(r.not_in_labels)} taxa (taxon ids: {', '.join(map(str, list(r.not_in_labels)[:10]))})")
    click.echo(f"{r.negatives} rejected pair(s) -> {out / 'negatives.csv'} (not used by `plantbot train`)")
    if r.photos_failed:
        click.echo(f"{r.photos_failed} photo(s) failed (see {out / 'failed.jsonl'}); run again to retry them")


@click.group("labels")
def labels_group() -> None:
    """Work on a labels.csv."""


@labels_group.command("resolve")
@pass_state
@click.argument("labels_csv", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=_file, help="Where to write the result (default: update LABELS_CSV in place).")
@click.option("--overwrite", is_flag=True, help="Look up ids that are already filled too.")
def resolve_cmd(state: State, labels_csv: Path, out: Path | None, overwrite: bool) -> None:
    """Fill taxon ids by exact scientific-name search; report unmapped and ambiguous names (exit 1)."""
    from bot.classifier.bundle import read_labels, write_labels
    from bot.training.labels import resolve_labels

    labels = read_labels(labels_csv)
    result = resolve_labels(labels, _platform(state), overwrite=overwrite)
    target = out or labels_csv
    write_labels(target, result.labels)
    changed = f" ({result.changed} changed)" if overwrite else ""
    click.echo(f"{len(labels)} labels, {result.filled} ids filled{changed}; wrote {target}")
    for line in result.unmapped:
        click.echo(f"unmapped: {line}")
    for line in result.ambiguous:
        click.echo(f"ambiguous: {line}")
    if not result.ok:
        click.echo(f"{len(result.unmapped)} unmapped and {len(result.ambiguous)} ambiguous: left empty, "
                   "fix the names (or the ids by hand) and run again", err=True)
        raise SystemExit(1)


def register(group: click.Group) -> None:
    """Adds `dataset` and `labels` to the top-level group."""
    group.add_command(dataset_group)
    group.add_command(labels_group)
