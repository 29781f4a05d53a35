"""The quick-start demo, shrunk: every step runs and leaves what the README says it leaves."""

from __future__ import annotations

from pathlib import Path

import torch

from bot.demo import DemoOptions, run_demo


def test_small_demo_runs_every_step(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    lines: list[str] = []
    opts = DemoOptions(out=tmp_path / "demo", families=2, genera_per_family=2, species_per_genus=2,
                       photos_per_species=8, observations=40, epochs=1, input_size=32, waves=2, wave_seconds=1.0,
                       port=0)
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
