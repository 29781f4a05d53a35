"""The quick-start demo, shrunk: every step runs and leaves what the README says it leaves."""

from __future__ import annotations

from pathlib import Path

import torch

from bot.demo import DemoOptions, run_demo
from bot.store import Store, records


def test_small_demo_runs_every_step(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    lines: list[str] = []
    opts = DemoOptions(out=tmp_path / "demo", families=2, genera_per_family=2, species_per_genus=2,
                       photos_per_species=8, observations=40, epochs=1, input_size=32, waves=2, wave_seconds=1.0,
                       port=0, target_precision=0.05, min_decided=3)  # a 1-epoch model: a target it can reach
    result = run_demo(opts, say=lines.append)
    out = tmp_path / "demo"
    for path in ("evaluation/index.html", "evaluation/metrics.json", "report/report.html", "model/model.toml",
                 "world/world.json", "config.toml", "plantbot.sqlite3"):
        assert (out / path).exists(), path
    decisions = result["decisions"]
    assert isinstance(decisions, dict) and sum(decisions.values()) > 0
    text = "\n".join(lines)
    assert "Decisions:" in text and "Where to look" in text and "review UI" in text
    assert "synthetic test world" in text
    flora = result["metrics"]["flora_demo"]  # type: ignore[index]
    assert flora["off"]["species_coverage"] is not None and "flora off" in text
    assert (out / "evaluation-place" / "metrics.json").exists()
    assert "4/7 calibration on" in text and "temperature" in text and "Cutoffs the daemon used" in text
    assert "rule summed/2 (cutoffs species" in text  # the evaluation reports the rule with its cutoffs
    assert (out / "dataset" / "calibration.csv").exists() and (out / "evaluation" / "reliability.png").exists()
    # the calibrated cutoffs: stored in the bundle, used by the evaluation on the test half (precision with
    # its Wilson interval) and by the daemon, whose decisions record them; the summary says what they promise
    found = result["calibration"]["cutoffs"]  # type: ignore[index]
    assert found["cutoffs"], found
    rule = result["metrics"]["rule"]  # type: ignore[index]
    store = Store(out / "plantbot.sqlite3")
    try:
        with store.session() as s:
            used = records.used_cutoffs(s)
    finally:
        store.close()
    for rank, cutoff in found["cutoffs"].items():
        assert found[rank]["precision"] >= 0.05 and found[rank]["decided"] >= 3
        assert rule["cutoffs"][rank] == cutoff
        if rule[rank]["count"]:
            assert rule[rank]["interval"] is not None
        recorded = {c for r, c, _ in used if r == rank}
        assert recorded <= {cutoff}, (rank, recorded, cutoff)
        if recorded:
            assert f"  {rank} {cutoff:.3f} [summed/2]: calibrated: " in text
    assert {r for r, _, _ in used} & set(found["cutoffs"]), (used, found["cutoffs"])
