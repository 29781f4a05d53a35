"""`plantbot init`: a community's first config, database and next steps, in one command."""

from __future__ import annotations

import re
from pathlib import Path

import click

from bot.cli import State, pass_state
from bot.config import PRESETS, ConfigError, load_config

PACKAGED_EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.toml"  # in a wheel (setup.py copies it)
SOURCE_EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"  # a source checkout
PRESET_KEYS = ("flavor", "api_url", "photo_hosts")  # left to the preset (site_url too, except for legacy)


def example_text() -> str:
    """config.example.toml: every key, commented, with its default."""
    for path in (PACKAGED_EXAMPLE, SOURCE_EXAMPLE):
        if path.exists():
            return path.read_text(encoding="utf-8")
    raise ConfigError(f"config.example.toml not found at {PACKAGED_EXAMPLE}: this installation is incomplete")


def render_config(preset: str, state_dir: Path | None = None) -> str:
    """The example with `preset` set and the keys the preset fills commented out (they would override it);
    with `state_dir`, the database, model and rate-limit bucket live there (absolute paths, for a service)."""
    text = re.sub(r'^# preset = "inaturalist" *', f'preset = "{preset}"'.ljust(32), example_text(), count=1,
                  flags=re.MULTILINE)
    keys = PRESET_KEYS if preset == "legacy" else (*PRESET_KEYS, "site_url")
    if "language" in PRESETS[preset]:
        keys = (*keys, "language")
    for key in keys:
        text = re.sub(rf"^{key} = ", f"# {key} = ", text, count=1, flags=re.MULTILINE)
    if preset == "legacy":
        text = re.sub(r'^site_url = "[^"]*"', 'site_url = "https://your-fork.example.org"', text, count=1,
                      flags=re.MULTILINE)
    if state_dir is not None:
        for key, value in (("database", "plantbot.sqlite3"), ("path", "model"), ("ratelimit_path", "")):
            default = f'"{value}"'
            target = f'"{(state_dir / (value or "ratelimit.sqlite3")).resolve()}"'
            text = re.sub(rf"^{key} = {re.escape(default)} *", f"{key} = {target}  ", text, count=1,
                          flags=re.MULTILINE)
    header = f"# Written by `plantbot init --preset {preset}`; edit it, then run the commands it printed.\n"
    return header + text


def _model_line(cfg_path: Path) -> str:
    from bot.classifier import load_bundle

    cfg = load_config(cfg_path)
    if not cfg.model_path.exists():
        return (f"model: no bundle at {cfg.model_path} yet: put one there (model.toml, weights.pt, labels.csv; "
                "see `plantbot train`) or set [model] path")
    bundle = load_bundle(cfg.model_path)
    return f"model: {bundle.name} {bundle.version} ({len(bundle.labels)} labels) at {cfg.model_path}"


@click.command("init")
@click.option("--preset", type=click.Choice(list(PRESETS)), default="inaturalist", show_default=True,
              help="The platform: iNaturalist, Natusfera (iNaturalist Spain) or an independent legacy fork.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("config.toml"),
              show_default=True, help="Where to write the config.")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the database, model and rate-limit bucket here (absolute paths; e.g. /var/lib/plantbot "
              "for the systemd units). Default: next to the config.")
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
@pass_state
def init(state: State, preset: str, out: Path, state_dir: Path | None, force: bool) -> None:
    """Write a commented config for a preset, check the model bundle, create the database, print next steps."""
    from bot.store import current_revision, upgrade

    if out.exists() and not force:
        raise click.ClickException(f"{out} exists; edit it, or pass --force to overwrite it")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_config(preset, state_dir), encoding="utf-8")
    click.echo(f"wrote {out} (preset {preset}; every key is there, commented)")
    cfg = load_config(out)
    click.echo(_model_line(out))
    upgrade(cfg.database_path)
    click.echo(f"database: {cfg.database_path} at revision {current_revision(cfg.database_path)}")
    if preset == "legacy":
        click.echo(f"edit [platform] site_url in {out}: the address of your fork")
    c = f"plantbot --config {out}"
    click.echo("\nNext (secrets come from the environment, see the file's header):\n"
               f"  {c} whoami            # checks the bot account's credentials\n"
               f"  {c} once --dry-run    # one cycle from the newest observation; records, sends nothing\n"
               f"  {c} run               # the daemon (or deploy/plantbot.service)\n"
               f"  {c} serve             # the moderators' review UI (or deploy/plantbot-review.service)")


def register(group: click.Group) -> None:
    """Adds this module's commands to the top-level group."""
    group.add_command(init)
