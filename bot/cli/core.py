"""Core commands: the database, one cycle, the simulator and the config."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table

from bot.cli import State, pass_state
from bot.cli.console import labelled, make_console, plain
from bot.config import Config, Secrets, as_dict, check_model_path
from bot.cycle import CycleSummary, run_cycle
from bot.domain import CycleStatus, PostResult, RunMode
from bot.store import Store, current_revision, downgrade, upgrade

if TYPE_CHECKING:
    from bot.classifier import Classifier
    from bot.platforms.base import Platform


@click.group("db")
def db_group() -> None:
    """Create, migrate or inspect the SQLite database."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Alembic revision to upgrade to.")
@pass_state
def db_upgrade(state: State, revision: str) -> None:
    """Create the database or migrate it to the latest schema."""
    _migrate(state, upgrade, revision)


@db_group.command("downgrade")
@click.argument("revision", default="base")
@pass_state
def db_downgrade(state: State, revision: str) -> None:
    """Migrate the database down to REVISION (default: base, i.e. drop everything)."""
    _migrate(state, downgrade, revision)


def _migrate(state: State, move: Callable[[Path, str], None], revision: str) -> None:
    path = state.config.database_path
    move(path, revision)
    click.echo(f"{path}: at revision {current_revision(path) or 'base'}")


@db_group.command("current")
@pass_state
def db_current(state: State) -> None:
    """Show the database's schema revision."""
    click.echo(current_revision(state.config.database_path) or "base (empty)")


@click.command("once")
@click.option("--dry-run", is_flag=True, help="Record decisions as 'would post'; send no write request at all.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_state
def once(state: State, dry_run: bool, as_json: bool) -> None:
    """Run one cycle: poll -> photos -> classify -> decide -> record (-> post in auto mode)."""
    cfg = state.config
    with open_run(cfg, dry_run) as (classifier, mode, store, platform):
        from bot.flora_cache import refresh_if_stale

        refresh_if_stale(cfg, store, platform)
        summary = run_cycle(cfg, store, platform, classifier, mode=mode)
        if mode is RunMode.AUTO:
            _post_auto(cfg, store, platform, mode)
    if as_json:
        click.echo(json.dumps(summary_dict(summary), indent=2))
    else:
        print_summary(summary)
    if summary.status == CycleStatus.FAILED:
        sys.exit(1)


@contextmanager
def open_run(cfg: Config, dry_run: bool) -> Iterator[tuple[Classifier, RunMode, Store, Platform]]:
    """What a deciding command (`once`, `backfill`) holds: the classifier, the run mode, the store and
    the platform, closed afterwards.  The bundle is loaded and auto mode's permission checked before
    the database or the platform is touched, so a bad setup records nothing."""
    from bot import classifier as classifiers
    from bot.platforms import create_platform

    classifier = classifiers.Classifier.from_config(cfg)
    mode = RunMode.of(cfg.posting.mode, dry_run)
    if mode is RunMode.AUTO:
        from bot.post import check_mode_allowed

        check_mode_allowed(cfg)  # before any decision is recorded as approved for posting
    store = Store(cfg.database_path)
    platform = create_platform(cfg, Secrets.from_env(), dry_run=mode.dry_run)
    try:
        yield classifier, mode, store, platform
    finally:
        platform.close()
        store.close()


def _post_auto(cfg: Config, store: Store, platform: Platform, mode: RunMode) -> None:
    """Auto mode (explicit opt-in only): post this cycle's approved decisions under the bot's account."""
    from bot.post import auto_post_round

    token = platform.get_token()
    login = platform.get_current_user(token).login
    outcomes = auto_post_round(store, platform, cfg, mode=mode, token=token, user_login=login)
    click.echo(f"auto mode: {sum(o.status == PostResult.POSTED for o in outcomes)} posted, "
               f"{sum(o.status != PostResult.POSTED for o in outcomes)} not posted")


def summary_dict(s: CycleSummary) -> dict[str, object]:
    return {
        "cycle": s.cycle_id, "status": s.status, "mode": s.mode, "dry_run": s.dry_run, "dtype": s.dtype,
        "seen": s.seen,
        "retried": s.retried, "decided": s.decided, "decisions": dict(s.kinds), "skipped": dict(s.skipped),
        "rejected": s.rejected, "photos_ok": s.photos_ok, "photos_failed": s.photos_failed,
        "left_for_next_cycle": s.left_for_next, "seconds": {k: round(v, 3) for k, v in s.timings.items()},
        "errors": s.errors, "paused": s.paused,
    }


def print_summary(s: CycleSummary) -> None:
    console = make_console()
    mode = "dry-run: nothing sent" if s.dry_run else f"{s.mode} mode"
    table = Table(title=f"Cycle {s.cycle_id} ({mode}): {s.status}")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("observations seen", str(s.seen))
    table.add_row("retried from earlier cycles", str(s.retried))
    table.add_row("decisions recorded", str(s.decided))
    for kind in ("species", "genus", "family", "abstain", "skip"):
        table.add_row(f"  {kind}", str(s.kinds.get(kind, 0)))
    for reason, n in sorted(s.skipped.items()):
        table.add_row(plain(f"    skipped: {reason}"), str(n))
    table.add_row("rejected by the parser", str(s.rejected))
    table.add_row("photos loaded / failed", f"{s.photos_ok} / {s.photos_failed}")
    table.add_row("left for the next cycle", str(s.left_for_next))
    table.add_row("classifier precision", s.dtype)
    for stage, seconds in s.timings.items():
        table.add_row(f"time: {stage}", f"{seconds:.2f} s")
    console.print(table)
    for err in s.errors:
        console.print(labelled("error", "red", err))
    if s.paused:
        console.print(labelled("paused", "yellow", s.paused))


@click.command("sim")
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address to bind.")
@click.option("--port", default=8765, show_default=True, type=int)
@click.option("--world", "world_dir", type=click.Path(file_okay=False), help="A world saved by World.save; "
              "default: a generated demo world.")
@click.option("--fault", "faults", multiple=True, help='Fault rule, e.g. "GET /v1/observations*=status:503@0.2".')
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for faults and the generated world.")
@click.option("--photo-latency", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Seconds before the first byte of every photo (a distant CDN).")
@click.option("--photo-bandwidth", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Bytes per second per photo response (0: unlimited).")
def sim(host: str, port: int, world_dir: str | None, faults: tuple[str, ...], seed: int, photo_latency: float,
        photo_bandwidth: float) -> None:
    """Serve the bundled iNaturalist simulator on loopback (for tests and the demo)."""
    from bot.sim.server import serve_cli

    serve_cli(world_dir, host, port, list(faults), seed, photo_latency, photo_bandwidth)


@click.group("config")
def config_group() -> None:
    """Check or show the configuration."""


@config_group.command("check")
@pass_state
def config_check(state: State) -> None:
    """Validate the config file, the model bundle and the post templates; exit 2 with one line if anything is wrong."""
    from bot.classifier import load_bundle
    from bot.texts import check_templates

    cfg = state.config
    bundle = load_bundle(check_model_path(cfg))
    check_templates(cfg)  # renders each post template once: a broken or sandbox-breaking one stops here
    click.echo(f"ok: {cfg.source or 'built-in defaults'}; model {bundle.name} {bundle.version} "
               f"({len(bundle.labels)} labels); mode {cfg.posting.mode}")


@config_group.command("show")
@pass_state
def config_show(state: State) -> None:
    """Print the effective settings as JSON (secrets are never part of them)."""
    click.echo(json.dumps(as_dict(state.config), indent=2))


@click.command("demo")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo"), show_default=True,
              help="Folder for everything the demo makes.")
@click.option("--epochs", default=20, show_default=True, type=int, help="Training epochs for the demo model.")
@click.option("--port", default=8765, show_default=True, type=int, help="Simulator port (another if busy).")
def demo(out: Path, epochs: int, port: int) -> None:
    """The quick-start demo: a synthetic world, a small model, the simulator, the daemon, the report."""
    from bot.demo import DemoOptions, run_demo

    logging.getLogger().setLevel(logging.WARNING)
    run_demo(DemoOptions(out=out, epochs=epochs, port=port), say=click.echo)


def register(group: click.Group) -> None:
    for command in (db_group, once, sim, config_group, demo):
        group.add_command(command)
