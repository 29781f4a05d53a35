"""Benchmark: a moderator reviews proposals with the keyboard only, in Chromium, against the simulator.

    .venv/bin/python benchmarks/bench_review.py [--proposals 50] [--page-size 20] [--seed 7]

The simulator serves a synthetic world; the observations are read through the platform adapter and
stored as the poll cycle stores them, and one proposal each is recorded (species IDs, genus and family
comments).  The review UI runs in a thread; Playwright drives Debian's chromium and signs in through
the simulator's OAuth form.  Then, per proposal, the keys a moderator presses: `a` (approve), `s`
(skip) or `x` (reject without a reason), in a fixed mix; the keystrokes are counted per decision
type.  Inside the page a capture-phase listener stamps each deciding keypress and, frame by frame,
waits until the next card has the focus and all its photos have loaded: that is "keypress -> next card
ready".  Prints keystrokes per decision by type, the median and 95th percentile of that time, and
the posts the simulator received.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.config import Config, Secrets  # noqa: E402
from bot.domain import Decision, DecisionKind, Ranked  # noqa: E402
from bot.platforms import create_platform  # noqa: E402
from bot.sim.server import SimServer  # noqa: E402
from bot.sim.world import MODERATOR_USER_ID, WorldSpec, make_world  # noqa: E402
from bot.store.db import Store  # noqa: E402
from bot.store.records import record_decision, upsert_observations  # noqa: E402
from bot.web import create_app  # noqa: E402
from bot.web.server import make_review_server  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
# What the moderator does, in turn: mostly approvals, some skips and rejections without a reason.
PLAN = ("a", "a", "s", "a", "a", "x", "a", "a", "a", "s")
# The keys each decision type takes (a reject with a reason, `r` + typing + Enter, is not in the plan).
KEYS = {"a": ("a",), "s": ("s",), "x": ("x",)}
NAMES = {"a": "approve", "s": "skip", "x": "reject without a reason"}
STAMPER = """() => {
  window.__lat = [];
  document.addEventListener('keydown', (e) => {
    const deciding = ['a', 's', 'x'].includes(e.key) || (e.key === 'Enter' && e.target.name === 'reason');
    if (!deciding) { return; }
    const from = document.querySelector('article.card.current');
    const fromId = from ? from.dataset.id : null;
    const t0 = e.timeStamp;
    const check = () => {
      const cur = document.querySelector('article.card.current');
      const ready = cur && cur.dataset.id !== fromId && document.activeElement === cur &&
        Array.from(cur.querySelectorAll('.photos img')).every((i) => i.complete && i.naturalWidth > 0);
      if (ready) { window.__lat.push(performance.now() - t0); }
      else if (performance.now() - t0 < 15000) { requestAnimationFrame(check); }
      else { window.__lat.push(-1); }
    };
    requestAnimationFrame(check);
  }, true);
}"""


def make_config(sim: SimServer, state: Path, page_size: int) -> Config:
    cfg = Config()
    cfg.platform.api_url, cfg.platform.site_url = sim.api_url, sim.url
    cfg.platform.ratelimit_path = str(state / "ratelimit.sqlite3")
    cfg.platform.requests_per_second, cfg.platform.requests_per_minute = 1000.0, 100000
    cfg.posting.mode = "review"
    cfg.review.moderators = [sim.world.users[MODERATOR_USER_ID].login]
    cfg.review.oauth_client_id = "plantbot-bench"
    cfg.review.page_size = page_size
    cfg.review.map_tiles_url = ""  # offline: the map shows the point only
    return cfg


def seed(cfg: Config, store: Store, world: Any, n: int) -> int:
    """Reads `n` plant observations through the adapter and records one proposal on each."""
    platform = create_platform(cfg, Secrets())
    ids = sorted(o.id for o in world.observations.values() if o.true_taxon_id and o.true_taxon_id >= 100000)[:n]
    observations = platform.get_observations(ids)
    species = sorted((t for t in world.taxa.values() if t.rank == "species" and t.iconic_taxon_name == "Plantae"),
                     key=lambda t: t.id)
    with store.session() as s:
        upsert_observations(s, observations, platform.name)
        for i, obs in enumerate(observations):
            true = world.taxa[world.observations[obs.id].true_taxon_id]
            genus = world.taxa[true.parent_id]
            family = world.taxa[genus.parent_id]
            others = [t for t in species if t.id != true.id][i % 7: i % 7 + 4]
            top = tuple(Ranked(t.name, t.id, p) for t, p in zip([true, *others], (0.62, 0.12, 0.08, 0.05, 0.03),
                                                                  strict=True))
            kind = (DecisionKind.SPECIES, DecisionKind.SPECIES, DecisionKind.GENUS, DecisionKind.SPECIES,
                    DecisionKind.FAMILY)[i % 5]
            chosen = {DecisionKind.SPECIES: true, DecisionKind.GENUS: genus, DecisionKind.FAMILY: family}[kind]
            decision = Decision(observation_id=obs.id, kind=kind, taxon_id=chosen.id, taxon_name=chosen.name,
                                rank=chosen.rank, score=0.62 if kind == DecisionKind.SPECIES else 0.74,
                                top_species=top, best_genus=Ranked(genus.name, genus.id, 0.74, "genus"),
                                best_family=Ranked(family.name, family.id, 0.8, "family"), n_photos=len(obs.photos))
            record_decision(s, decision, model_name="bench", model_version="1", cutoff=0.3, mode="review",
                            dry_run=False, status="proposed", cycle_id=None)
    platform.close()  # type: ignore[attr-defined]
    return len(observations)


def review(base: str, sim: SimServer, n: int) -> tuple[list[float], dict[str, list[int]]]:
    """Signs in and decides `n` proposals with the keyboard; returns the latencies and, per decision
    type, the keystrokes each decision took."""
    from playwright.sync_api import sync_playwright

    keys: dict[str, list[int]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.set_default_timeout(30_000)
        page.goto(f"{base}/")
        page.click("#signin")
        page.wait_for_url(f"{sim.url}/oauth/authorize?*")
        page.fill("#login", sim.world.users[MODERATOR_USER_ID].login)
        page.fill("#password", "password")
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/")
        page.wait_for_selector("article.card.current")
        page.evaluate(STAMPER)
        for i in range(n):
            action = PLAN[i % len(PLAN)]
            done = page.evaluate("window.__lat.length")
            for key in KEYS[action]:
                page.keyboard.press(key)
            keys.setdefault(action, []).append(len(KEYS[action]))
            if i < n - 1:  # the last decision has no next card to wait for
                page.wait_for_function("(n) => window.__lat.length > n", arg=done)
        page.wait_for_function("() => !document.querySelector('article.card[data-state=working]')")
        latencies = page.evaluate("window.__lat")
        browser.close()
    return [x for x in latencies if x >= 0], keys


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--proposals", type=int, default=50)
    ap.add_argument("--page-size", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    world, _ = make_world(WorldSpec(families=3, genera_per_family=2, species_per_genus=3,
                                    observations=args.proposals * 2, non_plant_fraction=0.0,
                                    photos_per_observation=(1, 4), photo_size=(640, 480), seed=args.seed))
    with tempfile.TemporaryDirectory() as tmp, SimServer(world) as sim:
        cfg = make_config(sim, Path(tmp), args.page_size)
        store = Store(Path(tmp) / "bench.sqlite3")
        n = seed(cfg, store, world, args.proposals)
        app = create_app(cfg, store, secret_key="bench")
        server = make_review_server(app, "127.0.0.1", 0)
        import threading

        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        started = time.perf_counter()
        try:
            latencies, keys = review(f"http://127.0.0.1:{server.port}", sim, n)
        finally:
            server.shutdown()
            store.close()
        wall = time.perf_counter() - started
        posts = [w for w in sim.writes if w.method == "POST" and w.path in ("/v1/identifications", "/v1/comments")]
    lat = sorted(latencies)
    p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))] if lat else float("nan")
    approvals = len(keys.get("a", []))
    every = [k for counts in keys.values() for k in counts]
    print(f"proposals reviewed: {n} (keyboard only, Chromium, page size {args.page_size})")
    print(f"keystrokes per decision: mean {statistics.mean(every):.2f} over {len(every)}; " +
          ", ".join(f"{NAMES[a]} ({'+'.join(KEYS[a])}) {statistics.mean(keys[a]):.2f} x{len(keys[a])}"
                    for a in NAMES if a in keys))
    print(f"keypress -> next card ready: median {statistics.median(lat):.0f} ms, p95 {p95:.0f} ms, "
          f"max {lat[-1]:.0f} ms over {len(lat)} transitions")
    print(f"posts received by the simulator: {len(posts)} for {approvals} approvals "
          f"({'exactly one each' if len(posts) == approvals else 'MISMATCH'})")
    print(f"wall time: {wall:.1f} s")


if __name__ == "__main__":
    main()
