"""A PlantBot config pointing at a running simulator, for tests that drive the cycle directly."""

from __future__ import annotations

from pathlib import Path

from bot.config import Config, load_config
from bot.sim.server import SimServer


def sim_config(tmp_path: Path, sim: SimServer, bundle_path: Path, *, requests_per_second: float = 50.0,
               extra: str = "") -> Config:
    """Dry-run, a database and rate-limit bucket in `tmp_path`, the given model bundle; `extra` adds TOML."""
    path = tmp_path / "config.toml"
    path.write_text(f"""
[platform]
api_url = "{sim.api_url}"
site_url = "{sim.url}"
requests_per_second = {requests_per_second}
requests_per_minute = 3000
ratelimit_path = "{tmp_path / 'ratelimit.sqlite3'}"
[model]
path = "{bundle_path}"
[posting]
mode = "dry-run"
[store]
database = "{tmp_path / 'db.sqlite3'}"
{extra}
""")
    return load_config(path)
