"""`plantbot cutoffs suggest|apply`: per-rank cutoffs from the community's live outcomes.

`suggest` prints what the audit report's live recalibration says; `apply` shows the change to the
config file's [decision] keys and writes it only when confirmed (or --yes), keeping the file's
comments and layout (tomlkit).  Nothing ever changes a cutoff silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import tomlkit

from bot.cli import State, pass_state
from bot.config import Config, check_model_path
from bot.errors import UsageError
from bot.store import Store

RANKS = ("species", "genus", "family")


@click.group("cutoffs")
def cutoffs_group() -> None:
    """Per-rank cutoffs from live outcomes: suggest, then apply."""


def _model_version(cfg: Config, given: str | None) -> str:
    if given:
        return given
    from bot.classifier import load_bundle

    return load_bundle(check_model_path(cfg)).version


def _live(cfg: Config, version: str) -> list[dict[str, Any]]:
    from bot.report.build import live_entries

    store = Store(cfg.database_path)
    try:
        return [e for e in live_entries(store, cfg.decision.target_precision, cfg.decision.live_min_outcomes)
                if e["model_version"] == version]
    finally:
        store.close()


def _current(cfg: Config) -> dict[str, float]:
    """The cutoffs the daemon uses now (the bundle's under `cutoffs = "bundle"`)."""
    from bot.decide import with_bundle_cutoffs

    decision = cfg.decision
    if decision.cutoffs == "bundle":
        from bot.classifier import load_bundle

        decision = with_bundle_cutoffs(decision, load_bundle(check_model_path(cfg)).cutoffs)
    return {rank: decision.cutoff_for(rank) for rank in RANKS}


def _print(entries: list[dict[str, Any]], version: str, current: dict[str, float]) -> None:
    if not entries:
        click.echo(f"no checked outcomes for model version {version} yet (run `plantbot audit refresh`)")
        return
    for e in entries:
        ci = e["interval"]
        band = f" (95% CI {100 * ci[0]:.1f}%-{100 * ci[1]:.1f}%)" if ci else ""
        precision = "n/a" if e["precision"] is None else f"{100 * e['precision']:.1f}%"
        head = (f"{e['rank']}: {e['decided']} decided, {e['pending']} pending, precision {precision}{band}; "
                f"cutoff now {current.get(e['rank'], float('nan')):.3f}")
        if e["suggested_cutoff"] is None:
            click.echo(f"{head}; no suggestion: {e['reason']}")
        else:
            click.echo(f"{head}; suggested {e['suggested_cutoff']:.3f} ({100 * e['suggested_precision']:.1f}% "
                       f"right of {e['suggested_decided']})")


@cutoffs_group.command("suggest")
@click.option("--model-version", default=None, help="Outcomes of this model version (default: the bundle's).")
@pass_state
def suggest(state: State, model_version: str | None) -> None:
    """Print, per rank, the cutoff the live outcomes say reaches [decision] target_precision."""
    cfg = state.config
    version = _model_version(cfg, model_version)
    click.echo(f"model version {version}, target precision {cfg.decision.target_precision:.2f}, "
               f"at least {cfg.decision.live_min_outcomes} decided outcomes per rank:")
    _print(_live(cfg, version), version, _current(cfg))


@cutoffs_group.command("apply")
@click.option("--model-version", default=None, help="Outcomes of this model version (default: the bundle's).")
@click.option("--yes", is_flag=True, help="Write without asking (the change is still printed).")
@pass_state
def apply(state: State, model_version: str | None, yes: bool) -> None:
    """Write the suggested per-rank cutoffs into the config file's [decision], after showing the change."""
    cfg = state.config
    if cfg.source is None:
        raise UsageError("cutoffs apply needs a config file (--config or $PLANTBOT_CONFIG)")
    version = _model_version(cfg, model_version)
    entries = _live(cfg, version)
    current = _current(cfg)
    _print(entries, version, current)
    new = current | {e["rank"]: e["suggested_cutoff"] for e in entries if e["suggested_cutoff"] is not None}
    changed = {r: (current[r], new[r]) for r in RANKS if abs(new[r] - current[r]) > 1e-9}
    if not changed and cfg.decision.cutoffs == "config":
        click.echo("nothing to change")
        return
    click.echo(f"in {cfg.source} [decision]:")
    for rank in RANKS:
        old, value = current[rank], new[rank]
        click.echo(f"  {rank}_cutoff = {value:.3f}" + (f"   (was {old:.3f})" if rank in changed else "   (unchanged)"))
    if cfg.decision.cutoffs != "config":
        click.echo('  cutoffs = "config"   (was "bundle": the numbers above now come from the config)')
    if not yes and not click.confirm("Write this into the config file?", default=False):
        click.echo("config unchanged")
        return
    write_cutoffs(cfg.source, {r: round(v, 4) for r, v in new.items()})
    click.echo(f"written to {cfg.source}; the daemon uses them from its next start")


def write_cutoffs(path: Path, cutoffs: dict[str, float]) -> None:
    """Sets [decision] <rank>_cutoff and cutoffs = "config", keeping every comment and other key."""
    doc = tomlkit.parse(path.read_text(encoding="utf-8"))
    if "decision" not in doc:
        doc["decision"] = tomlkit.table()
    table: Any = doc["decision"]
    table["cutoffs"] = "config"
    for rank, value in cutoffs.items():
        table[f"{rank}_cutoff"] = float(value)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(tomlkit.dumps(doc), encoding="utf-8")
    tmp.replace(path)


def register(group: click.Group) -> None:
    """Adds `cutoffs suggest|apply` to the top-level group."""
    group.add_command(cutoffs_group)
