"""`plantbot serve`: the moderators' review UI."""

from __future__ import annotations

import logging

import click

from bot.cli import State, pass_state
from bot.config import ConfigError
from bot.domain import RunMode

log = logging.getLogger(__name__)


@click.command("serve")
@click.option("--host", default=None, help="Interface to listen on. Default: [review] host.")
@click.option("--port", type=int, default=None, help="Port to listen on (0: any free port). Default: [review] port.")
@pass_state
def serve(state: State, host: str | None, port: int | None) -> None:
    """Run the review web UI where moderators approve, edit, reject or skip proposals."""
    from bot.store.db import Store
    from bot.web import create_app
    from bot.web.server import make_review_server

    cfg = state.config
    where = str(cfg.source) if cfg.source else "<config>"
    if not cfg.review.moderators:
        raise ConfigError(f"{where}: [review] moderators: empty, so nobody could sign in")
    if not cfg.review.oauth_client_id:
        raise ConfigError(f"{where}: [review] oauth_client_id: empty (register an OAuth app on "
                          f"{cfg.platform.site_url} with redirect URL http://HOST:PORT/auth/callback)")
    host = host or cfg.review.host
    port = cfg.review.port if port is None else port
    store = Store(cfg.database_path)
    mode = RunMode.of(cfg.posting.mode)
    app = create_app(cfg, store, mode=mode)
    server = make_review_server(app, host, port)
    if mode.dry_run:
        log.warning("posting mode is dry-run: approvals are recorded, nothing is posted")
    click.echo(f"PlantBot review UI on http://{host}:{server.port}/ (moderators: "
               f"{', '.join(cfg.review.moderators)}); Ctrl-C stops it.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        store.close()


def register(group: click.Group) -> None:
    """Adds this module's commands to the top-level group."""
    group.add_command(serve)
