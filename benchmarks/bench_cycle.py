"""End-to-end cycle throughput with the streaming photos -> classify stage: prints figures, asserts nothing.

A backlog of plant observations (default 1,000) waits in the simulator, whose photos come from a
simulated CDN (`--photo-latency` seconds before the first byte, `--photo-bandwidth` bytes/s each).

1. end to end: one `run_cycle` over the whole backlog (poll, streamed download + classify, decide,
   record), observations/s; in a child process per page size (`--pages 200 50`), whose peak RSS
   (ru_maxrss) is reported, so the page size's effect on memory is visible (goal: within 15%).
2. the stages alone on the same observations, page by page: download (photos.download_photos, decoded
   as the cycle decodes them) then classify (Classifier.predict_observations on those decoded photos).
   Their sum is what the cycle took before streaming; the goal is end to end >= 0.85 x the slower.

Run:  .venv/bin/python benchmarks/bench_cycle.py [--observations 1000] [--arch resnet18] [--input-size 224]
          [--photo-latency 0.2] [--photo-bandwidth 2000000] [--dtype auto] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from bot.bench import bench_photos
from bot.classifier import Classifier, build_model, save_bundle
from bot.config import Config, load_config
from bot.cycle import run_cycle
from bot.decide import skip_before_inference
from bot.domain import RunMode
from bot.photos import download_photos
from bot.platforms import create_platform
from bot.sim.model import World
from bot.sim.server import SimServer
from bot.sim.world import WorldSpec, labels_for, make_world
from bot.store import Store

HERE = Path(__file__).resolve()


def build(tmp: Path, args: argparse.Namespace) -> None:
    """The world (tiny renders swapped for a pool of medium-size photos: rendering 2,000 takes minutes)."""
    world, species = make_world(WorldSpec(families=3, genera_per_family=2, species_per_genus=3,
                                          observations=args.observations, photos_per_observation=(1, 2),
                                          non_plant_fraction=0.0, photo_size=(24, 18), seed=11))
    pool = bench_photos(args.distinct_photos, size=args.photo_size)
    rng = random.Random(11)
    for pid in world.photos:
        world.photos[pid] = rng.choice(pool)
    world.save(tmp / "world")
    labels = labels_for(species)
    torch.manual_seed(0)
    save_bundle(tmp / "bundle", name="bench", version="1", arch=args.arch, model=build_model(args.arch, len(labels)),
                labels=labels, input_size=args.input_size, resize_size=round(args.input_size * 256 / 224))


def config(tmp: Path, sim: SimServer, per_page: int, tag: str) -> Config:
    path = tmp / f"config-{tag}.toml"
    path.write_text(f"""
[platform]
api_url = "{sim.api_url}"
site_url = "{sim.url}"
per_page = {per_page}
requests_per_second = 100.0
requests_per_minute = 6000
ratelimit_path = "{tmp / f'rl-{tag}.sqlite3'}"
[model]
path = "{tmp / 'bundle'}"
[posting]
mode = "dry-run"
[store]
database = "{tmp / f'db-{tag}.sqlite3'}"
""")
    return load_config(path)


def classifier(cfg: Config, args: argparse.Namespace) -> Classifier:
    from bot.classifier import load_bundle

    return Classifier(load_bundle(cfg.model_path), batch_size=args.batch_size, threads=args.threads, dtype=args.dtype)


def serve(tmp: Path, args: argparse.Namespace) -> SimServer:
    return SimServer(World.load(tmp / "world"), photo_latency=args.photo_latency, photo_bandwidth=args.photo_bandwidth)


def end_to_end(tmp: Path, args: argparse.Namespace, per_page: int) -> dict[str, Any]:
    """Runs in a child process: one cycle over the backlog; its own peak RSS is the page size's."""
    with serve(tmp, args) as sim:
        cfg = config(tmp, sim, per_page, f"e2e{per_page}")
        clf = classifier(cfg, args)
        store = Store(cfg.database_path)
        platform = create_platform(cfg, dry_run=True)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        start = time.perf_counter()
        summary = run_cycle(cfg, store, platform, clf, mode=RunMode.DRY_RUN)
        seconds = time.perf_counter() - start
        platform.close()
        store.close()
    return {"per_page": per_page, "seconds": seconds, "observations": summary.decided,
            "obs_per_s": summary.decided / seconds, "photos_ok": summary.photos_ok, "dtype": clf.dtype_name,
            "timings": {k: round(v, 2) for k, v in summary.timings.items()},
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_before_cycle_mib": rss_before}


def stages_alone(tmp: Path, args: argparse.Namespace, per_page: int) -> dict[str, Any]:
    """Download then classify, page by page, each timed alone (the cycle before streaming)."""
    with serve(tmp, args) as sim:
        cfg = config(tmp, sim, per_page, "alone")
        clf = classifier(cfg, args)
        store = Store(cfg.database_path)
        platform = create_platform(cfg, dry_run=True)
        download_s = classify_s = 0.0
        n_obs = 0
        for page in platform.get_new_observations(0):
            todo = [o for o in page.observations if skip_before_inference(o, cfg.decision) is None]
            n_obs += len(todo)
            start = time.perf_counter()
            results = download_photos(todo, cfg, decode_size=clf.bundle.resize_size)
            download_s += time.perf_counter() - start
            images = {o: [r.image for r in rs if r.image is not None] for o, rs in results.items()}
            start = time.perf_counter()
            clf.predict_observations({o: v for o, v in images.items() if v})
            classify_s += time.perf_counter() - start
        platform.close()
        store.close()
    return {"observations": n_obs, "download_seconds": download_s, "classify_seconds": classify_s,
            "download_obs_per_s": n_obs / download_s, "classify_obs_per_s": n_obs / classify_s,
            "sequential_obs_per_s": n_obs / (download_s + classify_s)}


def child(tmp: Path, args: argparse.Namespace, per_page: int) -> dict[str, Any]:
    argv = [sys.executable, str(HERE), "--child", str(tmp), "--child-page", str(per_page), *args.passthrough]
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[1])}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"child run for page size {per_page} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def options() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--observations", type=int, default=1000)
    ap.add_argument("--pages", type=int, nargs="+", default=[200, 50], help="Page sizes; the first is the headline.")
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--input-size", type=int, default=224)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--photo-latency", type=float, default=0.2, help="Seconds before each photo's first byte.")
    ap.add_argument("--photo-bandwidth", type=float, default=2_000_000, help="Bytes/s per photo (0: unlimited).")
    ap.add_argument("--photo-size", type=int, default=500, help="Longer side of the photos (iNaturalist medium).")
    ap.add_argument("--distinct-photos", type=int, default=64)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child-page", type=int, default=200, help=argparse.SUPPRESS)
    return ap


def main() -> None:
    args = options().parse_args()
    keep = ("--arch", "--input-size", "--dtype", "--batch-size", "--threads", "--photo-latency", "--photo-bandwidth")
    args.passthrough = [x for k in keep for x in (k, str(getattr(args, k[2:].replace("-", "_"))))]
    if args.child is not None:
        print(json.dumps(end_to_end(args.child, args, args.child_page)))
        return
    with tempfile.TemporaryDirectory(prefix="plantbot-bench-cycle-") as name:
        tmp = Path(name)
        print(f"building a world of {args.observations} observations ...", file=sys.stderr)
        build(tmp, args)
        runs = []
        for per_page in args.pages:
            print(f"end to end, {per_page} a page (child process) ...", file=sys.stderr)
            runs.append(child(tmp, args, per_page))
        print("download alone, then classify alone, page by page ...", file=sys.stderr)
        alone = stages_alone(tmp, args, args.pages[0])
    report(args, runs, alone)


def report(args: argparse.Namespace, runs: list[dict[str, Any]], alone: dict[str, Any]) -> None:
    head = runs[0]
    slower = min(alone["download_obs_per_s"], alone["classify_obs_per_s"])
    figures: dict[str, Any] = {
        "observations": head["observations"], "arch": args.arch, "input_size": args.input_size,
        "dtype": head["dtype"], "photo_latency_s": args.photo_latency, "photo_bandwidth_bytes_per_s":
        args.photo_bandwidth, "end_to_end_obs_per_s": head["obs_per_s"],
        "download_alone_obs_per_s": alone["download_obs_per_s"], "classify_alone_obs_per_s":
        alone["classify_obs_per_s"], "sequential_obs_per_s": alone["sequential_obs_per_s"],
        "end_to_end_vs_slower_stage": head["obs_per_s"] / slower,
        "peak_rss_mib_by_page_size": {str(r["per_page"]): round(r["peak_rss_mib"], 1) for r in runs},
        "end_to_end_obs_per_s_by_page_size": {str(r["per_page"]): round(r["obs_per_s"], 2) for r in runs},
        "cycle_timings": head["timings"], "cpu_count": os.cpu_count(), "load_average": list(os.getloadavg()),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }
    if len(runs) > 1:
        rss = [r["peak_rss_mib"] for r in runs]
        figures["peak_rss_spread_percent"] = 100 * (max(rss) / min(rss) - 1)
    for key, value in figures.items():
        print(f"{key:36s} {round(value, 3) if isinstance(value, float) else value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
