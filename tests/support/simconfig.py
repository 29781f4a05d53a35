"""The one builder of PlantBot config files for tests that point PlantBot at a simulator.

Every test that needs a config file on disk (the CLI, the daemon, the cycle) writes it here, so a
new required key or a changed default is fixed in one place.  `sections` add or override keys by
TOML section; values are rendered as TOML (strings quoted, lists of strings, numbers, booleans).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.config import Config, load_config
from bot.sim.server import SimServer

Sections = dict[str, dict[str, Any]]

# Tests of what happens to a world's observations read all of it: from the first id, every grade. A real
# install starts at "now" and polls needs_id only; pass {"start": None, "quality_grade": None} for those
# defaults (None leaves a key out), as tests/test_start.py does.
WHOLE_WORLD: dict[str, Any] = {"start": 0, "quality_grade": "any"}


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Path):
        value = str(value)
    return json.dumps(value)  # strings and lists of strings: JSON and TOML agree


def write_sim_config(path: Path, *, api_url: str, site_url: str, state: Path, sections: Sections | None = None,
                     extra: str = "") -> Path:
    """A config at `path` for the platform at `api_url`/`site_url`; the rate-limit bucket and the
    database live in `state` unless `sections` say otherwise; `extra` is appended TOML."""
    merged: Sections = {
        "platform": {"api_url": api_url, "site_url": site_url, "ratelimit_path": state / "ratelimit.sqlite3",
                     **WHOLE_WORLD},
        "store": {"database": state / "plantbot.sqlite3"},
    }
    for name, keys in (sections or {}).items():
        merged.setdefault(name, {}).update(keys)
    lines: list[str] = []
    for name, keys in merged.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {_value(value)}" for key, value in keys.items() if value is not None]
    path.write_text("\n".join(lines) + "\n" + extra + "\n", encoding="utf-8")
    return path


def sim_config(tmp_path: Path, sim: SimServer, bundle_path: Path, *, requests_per_second: float = 50.0,
               extra: str = "", flavor: str = "inat-v1", platform: dict[str, Any] | None = None) -> Config:
    """Dry-run, a database and rate-limit bucket in `tmp_path`, the given model bundle; `extra` adds TOML,
    `platform` adds or (with None) removes [platform] keys."""
    return load_config(write_sim_config(
        tmp_path / "config.toml", api_url=sim.api_url, site_url=sim.url, state=tmp_path, extra=extra,
        sections={"platform": {"flavor": flavor, "requests_per_second": requests_per_second,
                               "requests_per_minute": 3000, **(platform or {})},
                  "model": {"path": bundle_path}, "posting": {"mode": "dry-run"},
                  "store": {"database": tmp_path / "db.sqlite3"}}))
