"""PlantBot installed from a wheel, not from the source tree: the way `pip install plantbot` or pipx runs it.

The wheel is built from a clean copy of the checkout, installed without dependencies into a
temporary folder (the dependencies come from this environment), and its own `plantbot` script
writes a first config with `init`, migrates a database, checks a config and runs one dry-run cycle
against the simulator (logging JSON lines), from a working directory with no source tree in sight.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bot.classifier import build_model, save_bundle
from bot.sim.server import SimServer
from bot.sim.world import WorldSpec, labels_for, make_world

REPO = Path(__file__).resolve().parents[1]


def clean_copy(dest: Path) -> Path:
    """The files git would check out (tracked or new, not ignored): no build/, egg-info or caches."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=False)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: cannot tell a clean copy from build leftovers")
    for name in filter(None, listed.stdout.decode().split("\0")):
        src = REPO / name
        if src.is_file() and not src.is_symlink():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def expected_files() -> set[str]:
    """Every module and template of the package, and every migration, as the wheel must hold them."""
    files = {p.relative_to(REPO).as_posix() for p in (REPO / "bot").rglob("*")
             if p.is_file() and "__pycache__" not in p.parts}
    files |= {"bot/" + p.relative_to(REPO).as_posix() for p in (REPO / "migrations").rglob("*")
              if p.is_file() and "__pycache__" not in p.parts}
    return files


def plantbot(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("PLANTBOT_CONFIG", None)
    return subprocess.run([str(site / "bin" / "plantbot"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.mark.slow
def test_a_wheel_from_a_clean_checkout_installs_and_runs(tmp_path: Path) -> None:
    src = clean_copy(tmp_path / "src")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("plantbot-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = {n for n in zf.namelist() if ".dist-info/" not in n}
    missing = expected_files() - names
    assert not missing, f"the wheel lacks {sorted(missing)}"
    assert not {n for n in names if not n.startswith("bot/")}, "the wheel installs files outside bot/"
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True,
                   capture_output=True, timeout=300)

    run = tmp_path / "community"
    run.mkdir()
    where = subprocess.run([sys.executable, "-c", "import bot; print(bot.__file__)"], cwd=run, text=True,
                           env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True, check=True)
    assert where.stdout.strip().startswith(str(site))  # the installed copy, not this checkout

    world, species = make_world(WorldSpec(families=2, genera_per_family=1, species_per_genus=2, observations=12,
                                          photos_per_observation=(1, 1), photo_size=(48, 36), seed=3))
    labels = labels_for(species)
    save_bundle(run / "model", name="tiny", version="1", arch="resnet18", model=build_model("resnet18", len(labels)),
                labels=labels, input_size=32, resize_size=32)
    made = plantbot(site, run, "init", "--preset", "inaturalist", "--out", "first-day.toml")
    assert made.returncode == 0, made.stderr
    assert "model: tiny 1" in made.stdout and (run / "plantbot.sqlite3").exists()
    assert "once --dry-run" in made.stdout
    with SimServer(world) as sim:
        (run / "config.toml").write_text(f"""
[platform]
api_url = "{sim.api_url}"
site_url = "{sim.url}"
start = 0
requests_per_second = 50.0
ratelimit_path = "ratelimit.sqlite3"
[model]
path = "model"
threads = 1
[posting]
mode = "dry-run"
[store]
database = "sim.sqlite3"
""")
        upgraded = plantbot(site, run, "--config", "config.toml", "db", "upgrade")
        assert upgraded.returncode == 0, upgraded.stderr
        assert "at revision" in upgraded.stdout and (run / "sim.sqlite3").exists()
        checked = plantbot(site, run, "--config", "config.toml", "config", "check")
        assert checked.returncode == 0 and checked.stdout.startswith("ok:"), checked.stderr
        once = plantbot(site, run, "--config", "config.toml", "-v", "--log-format", "json", "once", "--dry-run",
                        "--json")
        assert once.returncode == 0, once.stderr
        summary = json.loads(once.stdout)
        assert summary["decided"] > 0 and summary["dry_run"] is True
        assert not sim.writes
        logs = [json.loads(line) for line in once.stderr.splitlines() if line.strip()]  # every line is JSON
        assert any(e["logger"] == "bot.start" and "starts after observation id 0" in e["message"] for e in logs)
        assert all({"time", "level", "logger", "message"} <= set(e) for e in logs)
