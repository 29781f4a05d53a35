"""`plantbot flora refresh / show`: the community's flora, by hand (the daemon refreshes it weekly)."""

from __future__ import annotations

import click

from bot.cli import State, pass_state
from bot.errors import UsageError


@click.group("flora")
def flora_group() -> None:
    """The local flora applied before the decision rule ([decision] flora)."""


@flora_group.command("refresh")
@pass_state
def flora_refresh(state: State) -> None:
    """Re-read the place's plant taxa now (flora = "place"); a failure keeps the last good list."""
    from bot.config import Secrets
    from bot.flora_cache import refresh_flora
    from bot.platforms import create_platform
    from bot.store import Store

    cfg = state.config
    if cfg.decision.flora != "place":
        raise UsageError(f"[decision] flora is {cfg.decision.flora!r}: only a place's flora is refreshed")
    store = Store(cfg.database_path)
    platform = create_platform(cfg, Secrets.from_env(), dry_run=True)
    try:
        outcome = refresh_flora(cfg, store, platform)
    finally:
        platform.close()
        store.close()
    if outcome is None:
        raise click.ClickException("flora refresh did not run: [decision] flora_place_id is not set")
    if not outcome.ok:
        raise click.ClickException(f"flora refresh failed after {outcome.requests} request(s): {outcome.error}; "
                                   f"keeping the last list ({outcome.taxa} species)")
    click.echo(f"flora {outcome.source}: {outcome.taxa} species, {outcome.requests} request(s)")


@flora_group.command("show")
@pass_state
def flora_show(state: State) -> None:
    """Print the flora in use: taxon_id,count (the format `flora = "file"` reads)."""
    from bot.flora import read_flora_file
    from bot.flora_cache import flora_source
    from bot.store import Store
    from bot.store.flora import get_flora_taxa

    cfg = state.config
    source = flora_source(cfg)
    if source is None:
        raise UsageError("[decision] flora is off")
    if cfg.decision.flora == "file":
        taxa = read_flora_file(cfg.resolve_path(cfg.decision.flora_file))
    else:
        store = Store(cfg.database_path)
        try:
            with store.session() as s:
                taxa = get_flora_taxa(s, source)
        finally:
            store.close()
    click.echo("taxon_id,count")
    for taxon_id, count in sorted(taxa.items(), key=lambda kv: (-kv[1], kv[0])):
        click.echo(f"{taxon_id},{count}")


def register(group: click.Group) -> None:
    group.add_command(flora_group)
