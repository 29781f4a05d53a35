"""Daemon steady state and API economy against the simulator: prints figures, asserts nothing.

1. Backlog: 1,000 new plant observations waiting; one cycle polls them all. Listing requests per
   1,000 new observations (target <= 6 with 200 per page) and photo bytes per observation.
2. Steady state: N cycles (default 200) of the daemon's poll job, a few new observations arriving
   before each; resident memory after cycle 20 and after the last (target: within 10%).

Run:  .venv/bin/python benchmarks/bench_daemon.py [--cycles 200] [--per-cycle 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
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


def rss_mib() -> float:
    """Current resident set size (not the peak), from /proc."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=200)
    ap.add_argument("--per-cycle", type=int, default=5, help="New observations before each steady-state cycle.")
    ap.add_argument("--backlog", type=int, default=1000)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(max(1, (os.cpu_count() or 1)))
    total = int((args.backlog + args.cycles * args.per_cycle) / 0.93) + 50
    world, species = make_world(WorldSpec(families=3, genera_per_family=2, species_per_genus=3, observations=total,
                                          photos_per_observation=(1, 3), photo_size=(160, 120), seed=5))
    plant_ids = sorted(o.id for o in world.observations.values() if world.iconic_taxon_name(o.taxon_id) == "Plantae")
    for obs in world.observations.values():
        obs.release_after_s = 1e12  # hidden until released
    with tempfile.TemporaryDirectory() as tmp_name, SimServer(world) as sim:
        tmp = Path(tmp_name)
        labels = labels_for(species)
        bundle = save_bundle(tmp / "bundle", name="bench", version="1", arch="resnet18",
                             model=build_model("resnet18", len(labels)), labels=labels, input_size=64, resize_size=64)
        (tmp / "config.toml").write_text(f"""
[platform]
api_url = "{sim.api_url}"
site_url = "{sim.url}"
requests_per_second = 50.0
requests_per_minute = 3000
ratelimit_path = "{tmp / 'rl.sqlite3'}"
[model]
path = "{bundle.path}"
[posting]
mode = "dry-run"
[store]
database = "{tmp / 'db.sqlite3'}"
""")
        cfg = load_config(tmp / "config.toml")
        store = Store(cfg.database_path)
        platform = create_platform(cfg, dry_run=True)
        classifier = Classifier(bundle)

        def unhide(ids: list[int]) -> None:
            with sim.lock:
                for oid in ids:
                    world.observations[oid].release_after_s = 0.0

        backlog_ids = [o for o in sorted(world.observations) if o <= plant_ids[args.backlog - 1]]
        unhide(backlog_ids)
        before = len(sim.requests)
        start = time.perf_counter()
        summary = run_cycle(cfg, store, platform, classifier, mode=RunMode.DRY_RUN)
        backlog_s = time.perf_counter() - start
        listing = sum(1 for r in sim.requests[before:] if r.path == "/v1/observations")
        photo_bytes = _photo_bytes(store)
        figures: dict[str, object] = {
            "backlog_observations": summary.seen,
            "backlog_seconds": round(backlog_s, 2),
            "listing_requests_per_1000_new": round(listing * 1000 / max(1, summary.seen), 2),
            "photo_bytes_per_observation": round(photo_bytes / max(1, summary.decided), 1),
        }
        remaining = [o for o in sorted(world.observations) if o not in set(backlog_ids)]
        rss: dict[int, float] = {}
        start = time.perf_counter()
        for cycle in range(1, args.cycles + 1):
            unhide(remaining[(cycle - 1) * args.per_cycle: cycle * args.per_cycle])
            run_cycle(cfg, store, platform, classifier, mode=RunMode.DRY_RUN)
            if cycle in (20, args.cycles):
                gc.collect()
                rss[cycle] = rss_mib()
        figures.update({
            "steady_cycles": args.cycles,
            "steady_seconds_per_cycle": round((time.perf_counter() - start) / args.cycles, 3),
            "rss_mib_after_20": round(rss.get(20, 0.0), 1),
            f"rss_mib_after_{args.cycles}": round(rss.get(args.cycles, 0.0), 1),
            "rss_growth_percent": round(100 * (rss[args.cycles] / rss[20] - 1), 2) if 20 in rss else None,
        })
        store.close()
    for key, value in figures.items():
        print(f"{key:36s} {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


def _photo_bytes(store: Store) -> int:
    from sqlalchemy import func, select

    from bot.store.models import PhotoRow

    with store.session() as s:
        return int(s.scalar(select(func.coalesce(func.sum(PhotoRow.bytes), 0))) or 0)


if __name__ == "__main__":
    main()
