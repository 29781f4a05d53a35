"""Audit commands: `audit refresh`, `report` and `retract`."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import click
from rich.progress import Progress
from rich.table import Table

from bot.cli import State, pass_state
from bot.cli.console import make_console, plain
from bot.config import Secrets
from bot.domain import WithdrawalStatus
from bot.errors import UsageError
from bot.store import Store

if TYPE_CHECKING:
    from bot.report.retract import Retraction


@click.group("audit")
def audit_group() -> None:
    """Track what the community made of PlantBot's suggestions."""


@audit_group.command("refresh")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Check at most this many suggestions (never-checked and longest-unchecked first).")
@pass_state
def audit_refresh(state: State, limit: int | None) -> None:
    """Re-read posted and would-be-posted observations and record their outcomes."""
    from bot.platforms import create_platform
    from bot.report import refresh_outcomes

    cfg = state.config
    store = Store(cfg.database_path)
    try:
        platform = create_platform(cfg, Secrets.from_env(), dry_run=True)  # reads only
        with Progress(transient=True) as bar:
            task = bar.add_task("checking outcomes", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            counts = refresh_outcomes(store, platform, cfg, limit=limit, progress=progress)
    finally:
        store.close()
    click.echo(", ".join(f"{k}: {v}" for k, v in counts.items() if k != "stopped"))
    if "stopped" in counts:
        click.echo(f"stopped early: {counts['stopped']} (the next run resumes)", err=True)


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--since: {value!r} is not a date (use YYYY-MM-DD)") from None


@click.command("report")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for report.html, posts.csv and report.json.")
@click.option("--since", default=None, help="Only decisions recorded on or after this date (YYYY-MM-DD).")
@click.option("--model-version", default=None, help="Only decisions of this model version.")
@pass_state
def report(state: State, out_dir: str, since: str | None, model_version: str | None) -> None:
    """Write the audit report: one self-contained HTML page plus CSV and JSON."""
    from bot.report import build_report

    cfg = state.config
    store = Store(cfg.database_path)
    try:
        figures = build_report(store, out_dir, since=_parse_since(since), model_version=model_version,
                               site_url=cfg.platform.site_url, platform_hosts=cfg.platform_hosts,
                               photo_hosts=cfg.allowed_photo_hosts, target_precision=cfg.decision.target_precision,
                               min_outcomes=cfg.decision.live_min_outcomes)
    finally:
        store.close()
    if figures["empty"]:
        click.echo("nothing recorded yet; wrote an empty report")
    for path in figures["files"].values():
        click.echo(path)


@click.command("retract")
@click.option("--model-version", required=True, help="The model version whose identifications to withdraw.")
@click.option("--dry-run", is_flag=True, help="List what would be withdrawn; send nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_state
def retract(state: State, model_version: str, dry_run: bool, yes: bool) -> None:
    """Withdraw (current: false) the posted identifications of a bad model version, exactly once."""
    from bot.platforms import create_platform
    from bot.report import retract_model_version

    cfg = state.config
    store = Store(cfg.database_path)
    try:
        listed = retract_model_version(store, create_platform(cfg, Secrets.from_env(), dry_run=True),
                                       cfg, version=model_version, token=None, user_login=None, dry_run=True)
        _print_retractions(listed, f"current identifications of model version {model_version}")
        if dry_run or not listed:
            return
        if not yes and not click.confirm(f"Withdraw these {len(listed)} identifications?", default=False):
            click.echo("nothing withdrawn")
            return
        platform = create_platform(cfg, Secrets.from_env(), dry_run=False)
        token = platform.get_token()
        login = platform.get_current_user(token).login
        done = retract_model_version(store, platform, cfg, version=model_version, token=token,
                                     user_login=login, dry_run=False)
    finally:
        store.close()
    _print_retractions(done, "result")
    _report_left(done, model_version)


def _report_left(done: list[Retraction], version: str) -> None:
    """Per moderator, what is still current; exit 1 when anything is."""
    from bot.report.retract import left_by_author

    left = left_by_author(done)
    if not left:
        click.echo(f"every identification of model version {version} is withdrawn")
        return
    total = sum(len(rows) for rows in left.values())
    click.echo(f"{total} identification(s) of model version {version} are still current:", err=True)
    for login, rows in left.items():
        failed = sum(r.status == WithdrawalStatus.FAILED for r in rows)
        obs = ", ".join(str(r.observation_id) for r in rows[:10]) + (", ..." if len(rows) > 10 else "")
        why = (f"{failed} failed, run retract again; " if failed else "") + \
            (f"posted under {login}'s own account: {login} must withdraw them (review UI, Withdraw page)"
             if failed < len(rows) else "")
        click.echo(f"  {login}: {len(rows)} (observations {obs}): {why.rstrip('; ')}", err=True)
    raise SystemExit(1)


def _print_retractions(rows: list[Retraction], title: str) -> None:
    table = Table(title=title)
    for col in ("observation", "identification", "taxon", "author", "status"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r.observation_id), str(r.remote_id), str(r.taxon_id or ""), plain(r.user_login),
                      plain(r.status))
    make_console().print(table)


def register(group: click.Group) -> None:
    """Adds this module's commands to the top-level group."""
    group.add_command(audit_group)
    group.add_command(report)
    group.add_command(retract)
