"""Benchmark: `build_report` on 100,000 synthetic decisions; prints wall time and peak memory.

    .venv/bin/python benchmarks/bench_report.py [--decisions N] [--keep DIR] [--tracemalloc]

The database is filled with bulk INSERTs (observations, one photo each, decisions, two predictions
each, review actions, posts and outcomes with a realistic mix), then the report is built once.
Peak memory is the process's maximum resident set size (and, with --tracemalloc, the peak of
Python allocations during the build, which slows the build down).
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from bot.report.build import build_report  # noqa: E402
from bot.store.db import Store  # noqa: E402
from bot.store.models import (  # noqa: E402
    DecisionRow,
    ObservationRow,
    OutcomeRow,
    PhotoRow,
    PostRow,
    PredictionRow,
    ReviewActionRow,
)

T0 = datetime(2026, 1, 1)
OUTCOMES = ("confirmed", "confirmed", "confirmed", "refined", "contradicted", "pending", "gone")


def _rows(n: int, rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in ("obs", "photo", "dec", "pred", "act", "post", "out")}
    for i in range(1, n + 1):
        at = T0 + timedelta(seconds=30 * i)
        version = "v1" if i <= n // 2 else "v2"
        dry = i % 3 == 0
        score = rng.random()
        kind = ("species" if score >= 0.3 else "genus" if score >= 0.2 else "family" if score >= 0.15
                else "abstain" if i % 17 else "skip")
        proposes = kind in ("species", "genus", "family")
        status = "recorded" if dry or not proposes else rng.choice(
            ("posted", "posted", "posted", "proposed", "rejected", "skipped"))
        n_photos = rng.randint(1, 8)
        out["obs"].append(dict(id=i, platform="bench", uri=f"https://example.org/observations/{i}",
                               n_photos=n_photos, attempts=0, first_seen_at=at, last_seen_at=at))
        out["photo"].append(dict(observation_id=i, photo_id=i, position=0,
                                 url=f"https://example.org/photos/{i}/medium.jpg", status="ok"))
        out["dec"].append(dict(id=i, observation_id=i, kind=kind, taxon_id=1000 + i % 500 if proposes else None,
                               taxon_name=f"Taxon {i % 500}" if proposes else None,
                               rank=kind if proposes else None, score=score, reasons=[], n_photos=n_photos,
                               model_name="plants", model_version=version, cutoff=0.3, dry_run=dry,
                               mode="dry-run" if dry else "review", status=status, created_at=at))
        out["pred"].append(dict(decision_id=i, rank="species", position=0, taxon_id=1, name="a", prob=score))
        out["pred"].append(dict(decision_id=i, rank="genus", position=0, taxon_id=2, name="b",
                                prob=min(1.0, score * 1.5)))
        if status in ("posted", "rejected", "skipped"):
            action = {"posted": "approve", "rejected": "reject", "skipped": "skip"}[status]
            out["act"].append(dict(decision_id=i, action=action, moderator=f"mod{i % 7}", at=at))
        if status == "posted":
            out["post"].append(dict(decision_id=i, observation_id=i, model_version=version, action="post",
                                    kind="identification" if kind == "species" else "comment",
                                    taxon_id=1000 + i % 500, body="", user_login=f"mod{i % 7}",
                                    mode="review", status="posted", remote_id=10_000_000 + i, attempts=1,
                                    created_at=at, completed_at=at))
        if status == "posted" or (dry and proposes):
            out["out"].append(dict(decision_id=i, checked_at=at + timedelta(days=3), community_taxon_id=None,
                                   observation_taxon_id=None, post_state="current" if status == "posted"
                                   else "none", outcome=rng.choice(OUTCOMES), latest=True))
    return out


def seed(store: Store, n: int, seed_value: int = 0) -> dict[str, int]:
    rows = _rows(n, random.Random(seed_value))
    tables = (("obs", ObservationRow), ("photo", PhotoRow), ("dec", DecisionRow), ("pred", PredictionRow),
              ("act", ReviewActionRow), ("post", PostRow), ("out", OutcomeRow))
    with store.session() as s:
        for key, model in tables:
            if rows[key]:
                s.execute(insert(model), rows[key])
    return {key: len(rows[key]) for key, _ in tables}


def build_once(db: Path, out: Path, trace: bool) -> None:
    """Builds the report in this process and prints its time and memory."""
    store = Store(db, migrate=False)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if trace:
        tracemalloc.start()
    t, cpu = time.perf_counter(), time.process_time()
    figures = build_report(store, out)
    elapsed, cpu = time.perf_counter() - t, time.process_time() - cpu
    peak_py = tracemalloc.get_traced_memory()[1] if trace else None
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    store.close()
    sizes = {p.name: p.stat().st_size for p in out.iterdir()}
    print(f"build_report: {figures['n_decisions']} decisions, {figures['suggestions']} suggestion rows "
          f"in {elapsed:.2f} s wall, {cpu:.2f} s CPU")
    print(f"peak RSS of the build process: {rss_after / 1024:.0f} MiB "
          f"(after imports and opening the store: {rss_before / 1024:.0f} MiB)")
    if peak_py is not None:
        print(f"peak Python allocations during the build (tracemalloc): {peak_py / 2**20:.0f} MiB")
    print("files: " + ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in sorted(sizes.items())))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--decisions", type=int, default=100_000)
    ap.add_argument("--keep", type=Path, default=None, help="Keep the database and report in this folder.")
    ap.add_argument("--db", type=Path, default=None, help="Build from this database (no seeding).")
    ap.add_argument("--tracemalloc", action="store_true", help="Also measure peak Python allocations.")
    args = ap.parse_args()
    if args.db is not None:
        build_once(args.db, args.db.parent / "report", args.tracemalloc)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        store = Store(folder / "bench.sqlite3")
        t = time.perf_counter()
        counts = seed(store, args.decisions)
        store.close()
        print(f"seeded {counts} in {time.perf_counter() - t:.1f} s")
        # a fresh process, so the peak memory is the build's and not the seeding's
        cmd = [sys.executable, __file__, "--db", str(folder / "bench.sqlite3")]
        subprocess.run(cmd + (["--tracemalloc"] if args.tracemalloc else []), check=True)


if __name__ == "__main__":
    main()
