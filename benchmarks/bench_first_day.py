"""A community's first cycle against a platform with history: start = "now" versus start = 0.

The simulator holds HISTORY observations that exist before the bot starts. Prints, for each start
setting, the listing requests, photo requests, decisions and seconds of the first cycle. Asserts nothing.

Run:  .venv/bin/python benchmarks/bench_first_day.py [--history 2000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from bot.classifier import Classifier, build_model, save_bundle
from bot.config import load_config
from bot.cycle import run_cycle
from bot.domain import RunMode
from bot.platforms import create_platform
from bot.sim.server import SimServer
from bot.sim.world import WorldSpec, labels_for, make_world
from bot.store import Store


def first_cycle(root: Path, sim: SimServer, bundle: Path, start: str) -> dict[str, float]:
    root.mkdir()
    (root / "config.toml").write_text(f"""
[platform]
api_url = "{sim.api_url}"
site_url = "{sim.url}"
start = {start}
requests_per_second = 200.0
requests_per_minute = 100000
ratelimit_path = "{root / 'rl.sqlite3'}"
[model]
path = "{bundle}"
threads = 1
[posting]
mode = "dry-run"
[store]
database = "{root / 'db.sqlite3'}"
""")
    cfg = load_config(root / "config.toml")
    store = Store(cfg.database_path)
    platform = create_platform(cfg, dry_run=True)
    before = len(sim.requests)
    t0 = time.perf_counter()
    summary = run_cycle(cfg, store, platform, _classifier(bundle), mode=RunMode.DRY_RUN)
    seconds = time.perf_counter() - t0
    platform.close()
    store.close()
    sent = sim.requests[before:]
    return {"listings": sum(r.path == "/v1/observations" for r in sent),
            "photos": sum(r.path.startswith("/photos/") for r in sent),
            "decided": summary.decided, "seconds": round(seconds, 2)}


def _classifier(bundle: Path) -> Classifier:
    from bot.classifier import load_bundle

    return Classifier(load_bundle(bundle), threads=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=2000)
    args = parser.parse_args()
    torch.manual_seed(0)
    world, species = make_world(WorldSpec(families=2, genera_per_family=1, species_per_genus=2, history=args.history,
                                          observations=0, photos_per_observation=(1, 2), photo_size=(96, 72), seed=1))
    labels = labels_for(species)
    with tempfile.TemporaryDirectory() as tmp, SimServer(world) as sim:
        bundle = save_bundle(Path(tmp) / "model", name="tiny", version="1", arch="resnet18",
                             model=build_model("resnet18", len(labels)), labels=labels, input_size=64,
                             resize_size=64).path
        for start in ('"now"', "0"):
            figures = first_cycle(Path(tmp) / start.strip('"'), sim, bundle, start)
            print(f"start = {start:6} first cycle over {args.history} existing observations: "
                  f"{figures['listings']} listing requests, {figures['photos']} photo requests, "
                  f"{figures['decided']} decisions, {figures['seconds']} s")


if __name__ == "__main__":
    main()
