"""Operations: `plantbot run` (the daemon) and `plantbot status`."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import click
from rich.table import Table

from bot.cli import State, pass_state
from bot.cli.console import labelled, make_console, plain
from bot.domain import PostStatus, RunMode

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


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@pass_state
def status(state: State, as_json: bool) -> None:
    """Last cycle, review queue by kind, posts by status, errors in the last 24 h, request budget."""
    from bot.store import Store
    from bot.store.posting import get_value, status_report

    cfg = state.config
    store = Store(cfg.database_path)
    try:
        with store.session() as s:
            report = status_report(s)
            token_at = get_value(s, "token_refreshed_at")
            flora = _flora(cfg, s)
        budget = _budget(cfg, store)
    finally:
        store.close()
    doc = {"database": str(cfg.database_path), "mode": cfg.posting.mode, "last_cycle": report.last_cycle,
           "queue": report.queue, "posts": report.posts, "retry_due": report.retry_due,
           "errors_24h": report.errors_24h, "budget": budget, "token_refreshed_at": token_at,
           "flora": flora}
    if as_json:
        click.echo(json.dumps(doc, indent=2, default=str))
        return
    _print_status(doc)


def _print_status(doc: dict[str, Any]) -> None:
    console = make_console()
    table = Table(title=f"PlantBot status ({doc['mode']} mode, {doc['database']})")
    table.add_column("what")
    table.add_column("value", justify="right")
    last = doc["last_cycle"]
    if last is None:
        table.add_row("last cycle", "none yet")
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
    for st in (PostStatus.POSTED, "withdrawn", PostStatus.INTENT, PostStatus.RETRY, PostStatus.FAILED,
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
            table.add_row(plain(f"budget: {key}"), plain(value))
    else:
        table.add_row("budget", plain(budget))
    console.print(table)
    for err in doc["errors_24h"][-20:]:
        console.print(labelled("error", "red", err), soft_wrap=True)


def register(group: click.Group) -> None:
    """Adds this module's commands to the top-level group."""
    group.add_command(run)
    group.add_command(status)
