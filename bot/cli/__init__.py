"""The `plantbot` command: a thin click layer over the library.

Only this layer configures logging and turns domain errors into one-line messages with an exit
status (2 for bad input such as a config or bundle, 1 for everything else).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from bot import __version__
from bot.config import Config, load_config
from bot.errors import PlantBotError


class PlantBotGroup(click.Group):
    """Turns PlantBotError raised by any command into a one-line error and its exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PlantBotError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)


class State:
    """What the top-level options give every command; the config is read lazily."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config


pass_state = click.make_pass_decorator(State)


def log_level(verbose: int, quiet: bool) -> int:
    """Warnings by default; -v info, -vv debug; -q errors only (it wins over -v)."""
    if quiet:
        return logging.ERROR
    return {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)


@click.group(cls=PlantBotGroup)
@click.option("--config", "config_path", envvar="PLANTBOT_CONFIG", type=click.Path(dir_okay=False),
              help="Config file (TOML). Default: $PLANTBOT_CONFIG, else built-in defaults.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Errors only (no warnings).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              envvar="PLANTBOT_LOG_FORMAT", help="json: one JSON object a line (journald, log shippers).")
@click.version_option(__version__, prog_name="plantbot")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, verbose: int, quiet: bool, log_format: str) -> None:
    """PlantBot: model-assisted plant identifications for iNaturalist communities, human-gated."""
    level = log_level(verbose, quiet)
    configure_logging(level, log_format)
    if level > logging.DEBUG:
        logging.getLogger("pyinaturalist").setLevel(logging.WARNING)
    ctx.obj = State(config_path)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int, log_format: str) -> None:
    """stderr logging, as text or as one JSON object a line (python-json-logger)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                           rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])


def _register() -> None:
    """Each command family lives in its own module and adds itself to `main`."""
    from bot.cli import audit, bench, core, cutoffs, dataset, flora, init, loop, ops, platform, training, web

    for module in (init, core, platform, ops, web, audit, cutoffs, bench, dataset, training, flora, loop):
        module.register(main)


_register()
