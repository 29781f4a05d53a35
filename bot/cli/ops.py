"""Operations: `plantbot run` (the daemon) and `plantbot status`."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime
from typing import Any

import click
from rich.table import Table

from bot.cli import State, pass_state
from bot.cli.console import labelled, make_console, plain
from bot.domain import PostStatus, RunMode, WithdrawalStatus

log = logging.getLogger(__name__)


@click.command("run")
@click.option("--dry-run", is_flag=True, help="Record decisions only; send no write request at all.")
@click.option("--max-cycles", type=click.IntRange(min=1), default=None,
              help="Stop after this many poll cycles (and, in auto mode, one last posting round).")
@pass_state
def run(state: State, dry_run: bool, max_cycles: int | None) -> None:
    """Run the daemon: poll on schedule, post approved suggestions (auto mode), refresh the token.

    Only one daemon may run per database; SIGTERM or Ctrl-C stops it cleanly (exit 0).
    """
    from bot.daemon import run_daemon

    sys.exit(run_daemon(state.config, mode=RunMode.of(state.config.posting.mode, dry_run), max_cycles=max_cycles))


@click.command("backfill")
@click.option("--since", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Observations created on or "
              "after this date (YYYY-MM-DD).")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), default=None, help="...and before this date "
              "(default: up to where live polling started).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many observations this run; "
              "run again to go on.")
@click.option("--dry-run", is_flag=True, help="Record decisions only; send no write request at all.")
@pass_state
def backfill(state: State, since: datetime, until: datetime | None, limit: int | None, dry_run: bool) -> None:
    """Decide older observations on purpose: oldest first, same budgets, resumable, live cursor untouched."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from bot.backfill import BackfillRange, run_backfill
    from bot.cli.core import open_run, print_summary
    from bot.domain import CycleStatus

    cfg = state.config
    if until is not None and until.date() <= since.date():
        raise click.UsageError("--until must be after --since")
    window = BackfillRange(since.date(), until.date() if until else None, limit)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed} observations"),
               TimeElapsedColumn())
    with open_run(cfg, dry_run) as (classifier, mode, store, platform), Progress(*columns, transient=True) as bar:
        task = bar.add_task(f"backfill from {window.since}", total=limit)
        summary = run_backfill(cfg, store, platform, classifier, window, mode=mode,
                               progress=lambda n: bar.advance(task, n))
    print_summary(summary)
    if summary.status == CycleStatus.FAILED:
        sys.exit(1)


def _budget(cfg: Any, store: Any) -> dict[str, Any] | str:
    """The platform's remaining request budget, without sending a request where the adapter can avoid it."""
    try:
        from bot.config import Secrets
        from bot.platforms import create_platform

        platform = create_platform(cfg, Secrets.from_env(), dry_run=True)
        budget = getattr(platform, "budget_status", None)
        return dict(budget()) if budget else "not reported by this platform"
    except Exception as exc:  # status must still show the rest
        return f"unknown ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"


def _flora(cfg: Any, s: Any) -> dict[str, Any] | None:
    """The flora in use and its last refresh (a failed one says so: the last good list stays in use)."""
    from bot.flora_cache import flora_source
    from bot.store.flora import get_refresh_state

    source = flora_source(cfg)
    if source is None:
        return None
    if cfg.decision.flora == "file":
        return {"source": source}
    st = get_refresh_state(s, source)
    return {"source": source, "species": st.taxa, "list_read_at": st.fetched_at, "last_refresh_at": st.attempted_at,
            "last_refresh_ok": st.ok if st.attempted_at else None, "last_refresh_requests": st.requests,
            "last_refresh_error": st.error}


def flora_lines(flora: dict[str, Any] | None) -> list[tuple[str, str]]:
    if flora is None:
        return [("flora", "off")]
    if "species" not in flora:
        return [("flora", flora["source"])]
    rows = [("flora", f"{flora['source']}: {flora['species']} species (read {flora['list_read_at'] or 'never'})")]
    if flora["last_refresh_at"] is None:
        rows.append(("  last refresh", "none yet"))
    elif flora["last_refresh_ok"]:
        rows.append(("  last refresh",
                     f"ok at {flora['last_refresh_at']}, {flora['last_refresh_requests']} request(s)"))
    else:
        rows.append(("  last refresh", f"FAILED at {flora['last_refresh_at']} after {flora['last_refresh_requests']} "
                                       f"request(s): {flora['last_refresh_error']}; the last good list is kept"))
    return rows


def _model(cfg: Any) -> str:
    """Whether the configured model bundle loads, in words (status goes on either way)."""
    try:
        from bot.classifier import load_bundle
        from bot.config import check_model_path

        bundle = load_bundle(check_model_path(cfg))
        return f"{bundle.name} {bundle.version} ({len(bundle.labels)} labels) loads"
    except Exception as exc:
        return f"does not load: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"


def word(value: Any, empty: str = "never") -> str:
    """A value as `status` prints it: yes/no for booleans, `empty` for nothing, never a Python repr."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or value == "":
        return empty
    return str(value)


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@pass_state
def status(state: State, as_json: bool) -> None:
    """Where polling started, last cycle, review queue, posts, errors in the last 24 h, budget, model.

    Exits 1 when the database does not exist (it is never created here).
    """
    from bot.start import get_start_records
    from bot.store import Store
    from bot.store.posting import get_value, status_report

    cfg = state.config
    if not cfg.database_path.exists():
        raise click.ClickException(f"{cfg.database_path}: no database yet; create it with `plantbot init` "
                                   "or `plantbot db upgrade`")
    store = Store(cfg.database_path)
    try:
        with store.session() as s:
            report = status_report(s)
            token_at = get_value(s, "token_refreshed_at")
            flora = _flora(cfg, s)
        starts = [vars(r) for r in get_start_records(store)]
        budget = _budget(cfg, store)
    finally:
        store.close()
    doc = {"database": str(cfg.database_path), "mode": cfg.posting.mode, "start_setting": str(cfg.platform.start),
           "starts": starts, "last_cycle": report.last_cycle, "queue": report.queue, "posts": report.posts,
           "retry_due": report.retry_due, "errors_24h": report.errors_24h, "budget": budget,
           "token_refreshed_at": token_at, "flora": flora, "model": _model(cfg)}
    if as_json:
        click.echo(json.dumps(doc, indent=2, default=str))
        return
    _print_status(doc)


def _print_status(doc: dict[str, Any]) -> None:
    console = make_console()
    table = Table(title=f"PlantBot status ({doc['mode']} mode, {doc['database']})")
    table.add_column("what")
    table.add_column("value", justify="right")
    if not doc["starts"]:
        table.add_row("polling starts", f"not yet chosen (start = {doc['start_setting']}, on the first cycle)")
    for start in doc["starts"]:
        table.add_row("polling started", f"after id {start['cursor']} (start = {start['setting']}, "
                                         f"chosen {start['chosen_at']})")
    last = doc["last_cycle"]
    if last is None:
        table.add_row("last cycle", "never")
    else:
        table.add_row("last cycle", f"#{last['id']} {last['status']} at {last['started_at']}")
        table.add_row("  observations seen / decided", f"{last['seen']} / {last['decided']}")
        table.add_row("  photos failed", str(last["photos_failed"]))
        table.add_row("  classifier precision", str(last.get("dtype") or "not recorded"))
    queue = doc["queue"]
    table.add_row("review queue", str(sum(queue.values())))
    for kind in ("species", "genus", "family"):
        table.add_row(f"  {kind}", str(queue.get(kind, 0)))
    posts = doc["posts"]
    table.add_row("posts", str(sum(posts.values())))
    # "withdrawn" is a display state (a posted post whose withdrawal went out), not a ledger status.
    for st in (PostStatus.POSTED, WithdrawalStatus.WITHDRAWN, PostStatus.INTENT, PostStatus.RETRY, PostStatus.FAILED,
               PostStatus.SKIPPED):
        if st in posts or st in (PostStatus.POSTED, PostStatus.FAILED):
            table.add_row(f"  {st}", str(posts.get(st, 0)))
    table.add_row("retries due now", str(doc["retry_due"]))
    table.add_row("errors in the last 24 h", str(len(doc["errors_24h"])))
    for what, value in flora_lines(doc["flora"]):
        table.add_row(what, value)
    budget = doc["budget"]
    if isinstance(budget, dict):
        for key, value in budget.items():
            table.add_row(plain(f"budget: {key.replace('_', ' ')}"), plain(word(value, "none")))
    else:
        table.add_row("budget", plain(budget))
    table.add_row("token refreshed", plain(word(doc["token_refreshed_at"])))
    table.add_row("model", plain(doc["model"]))
    console.print(table)
    for err in doc["errors_24h"][-20:]:
        console.print(labelled("error", "red", err), soft_wrap=True)


def register(group: click.Group) -> None:
    """Adds this module's commands to the top-level group."""
    group.add_command(run)
    group.add_command(status)
    group.add_command(backfill)
