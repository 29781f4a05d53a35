"""Issue 14's acceptance: the audit's live-cutoff suggestion equals a hand computation.

Species proposals of model version v1 (score -> latest outcome), cutoff 0.30 in use:
  .95 confirmed, .90 confirmed, .85 refined, .80 confirmed, .75 contradicted, .70 confirmed,
  .60 contradicted, .50 confirmed, .40 contradicted, .35 pending, .33 gone
Decided (pending and gone are not): 9, right 6.  Precision of the proposals at or above each score,
best first: 1/1 2/2 3/3 4/4 4/5=.80 5/6=.833 5/7 6/8 6/9.  Target .80 with at least 5 decided: the
lowest such cutoff is .70 (5 of 6 right).  Genus (v1): 3 decided, too few.  v2: kept apart.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.config import load_config
from bot.report.build import build_report
from bot.store.db import Store
from bot.store.models import DecisionRow, ObservationRow, OutcomeRow
from tests.conftest import copy_migrated

T0 = datetime(2026, 6, 1, 12, 0)
SPECIES = [(.95, "confirmed"), (.90, "confirmed"), (.85, "refined"), (.80, "confirmed"), (.75, "contradicted"),
           (.70, "confirmed"), (.60, "contradicted"), (.50, "confirmed"), (.40, "contradicted"), (.35, "pending"),
           (.33, "gone")]
GENUS = [(.8, "confirmed"), (.7, "contradicted"), (.6, "confirmed")]
V2 = [(.9, "contradicted")] * 6


def seed(store: Store) -> None:
    rows = [("v1", "species", s, o) for s, o in SPECIES] + [("v1", "genus", s, o) for s, o in GENUS]
    rows += [("v2", "species", s, o) for s, o in V2]
    with store.session() as s:
        for i, (version, kind, score, outcome) in enumerate(rows, start=1):
            at = T0 + timedelta(minutes=i)
            s.add(ObservationRow(id=i, platform="sim", first_seen_at=at, last_seen_at=at))
            s.flush()
            s.add(DecisionRow(id=i, observation_id=i, kind=kind, taxon_id=100 + i, rank=kind, score=score,
                              reasons=[], n_photos=1, model_name="plants", model_version=version, cutoff=0.3,
                              rule="summed/2", dry_run=True, mode="dry-run", status="recorded", created_at=at))
            s.flush()
            s.add(OutcomeRow(decision_id=i, checked_at=at, post_state="none", outcome="pending", latest=False))
            s.add(OutcomeRow(decision_id=i, checked_at=at + timedelta(days=1), post_state="none", outcome=outcome,
                             latest=True))


@pytest.fixture()
def store(tmp_path: Path, migrated_template: Path):  # type: ignore[no-untyped-def]
    s = Store(copy_migrated(migrated_template, tmp_path / "live.sqlite3"), migrate=False)
    seed(s)
    yield s
    s.close()


def test_live_suggestion_matches_the_hand_computation(store: Store, tmp_path: Path) -> None:
    figures = build_report(store, tmp_path / "report", target_precision=0.8, min_outcomes=5)
    live = {(e["model_version"], e["rank"]): e for e in figures["live_calibration"]}
    sp = live[("v1", "species")]
    assert (sp["outcomes"], sp["decided"], sp["pending"], sp["right"]) == (11, 9, 1, 6)
    assert sp["precision"] == pytest.approx(6 / 9)
    assert sp["suggested_cutoff"] == pytest.approx(0.70)
    assert (sp["suggested_decided"], sp["suggested_precision"]) == (6, pytest.approx(5 / 6))
    assert sp["suggested_interval"] == pytest.approx((0.4365, 0.9699), abs=1e-4)  # Wilson, 5 of 6
    assert sp["cutoffs_used"] == [0.3]
    bins = {round(b["low"], 1): (b["decided"], b["precision"]) for b in sp["bins"]}
    assert bins == {0.9: (2, 1.0), 0.8: (2, 1.0), 0.7: (2, 0.5), 0.6: (1, 0.0), 0.5: (1, 1.0), 0.4: (1, 0.0)}
    genus = live[("v1", "genus")]
    assert genus["suggested_cutoff"] is None and genus["reason"] == "3 decided outcomes, fewer than 5"
    v2 = live[("v2", "species")]
    assert v2["precision"] == 0.0 and v2["suggested_cutoff"] is None
    html = (tmp_path / "report" / "report.html").read_text()
    assert 'id="live-table"' in html and "0.700" in html
    plot = html.split('id="plot-live"')[1].split("</svg>")[0]  # the live plot: one panel per rank
    assert "<svg" in plot and plot.count('id="axes_') == 2  # species and genus
    stricter = build_report(store, tmp_path / "r2", target_precision=0.8, min_outcomes=10)["live_calibration"]
    assert stricter[0]["suggested_cutoff"] is None and "9 decided outcomes, fewer than 10" in stricter[0]["reason"]


CONFIG = """# my community's settings
[decision]
cutoff = 0.30   # the shared one
target_precision = 0.8
live_min_outcomes = 5
fallback = "summed"  # keep the paper's rule

[store]
database = "live.sqlite3"
"""


def test_cutoffs_suggest_then_apply_shows_and_writes_keeping_comments(store: Store, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    runner = CliRunner()
    result = runner.invoke(main, ["--config", str(config), "cutoffs", "suggest", "--model-version", "v1"])
    assert result.exit_code == 0, result.output
    assert "species: 9 decided, 1 pending" in result.output and "suggested 0.700" in result.output
    assert "genus: 3 decided" in result.output and "fewer than 5" in result.output
    result = runner.invoke(main, ["--config", str(config), "cutoffs", "apply", "--model-version", "v1"], input="n\n")
    assert result.exit_code == 0 and "config unchanged" in result.output
    assert config.read_text() == CONFIG  # nothing changes without a yes
    result = runner.invoke(main, ["--config", str(config), "cutoffs", "apply", "--model-version", "v1"], input="y\n")
    assert result.exit_code == 0, result.output
    assert "species_cutoff = 0.700   (was 0.300)" in result.output
    assert "genus_cutoff = 0.300   (unchanged)" in result.output
    text = config.read_text()
    assert "# my community's settings" in text and "# the shared one" in text and "# keep the paper's rule" in text
    cfg = load_config(config)
    assert (cfg.decision.species_cutoff, cfg.decision.genus_cutoff, cfg.decision.cutoffs) == (0.7, 0.3, "config")
