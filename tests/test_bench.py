"""`plantbot bench --quick` produces every figure (their values are the machine's business)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from click.testing import CliRunner

from bot.bench import FIGURES, observations_of
from bot.classifier import resolve_dtype
from bot.cli import main

torch.set_num_threads(1)


def test_quick_bench_reports_all_figures(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(main, ["bench", "--quick", "--threads", "1", "--json", str(out)])
    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text())
    for name in (*FIGURES, "bare_cpu_ms_per_image", "pipeline_cpu_ms_per_image", "tencrop_images_per_s"):
        assert isinstance(figures[name], float) and math.isfinite(figures[name]) and figures[name] > 0, name
    assert figures["arch"] == "resnet18" and figures["input_size"] == 64 and figures["photos"] == 16
    chosen = resolve_dtype("auto", torch.device("cpu"))
    assert figures["device"] == "cpu" and figures["dtype"] == chosen
    assert figures["batch_size"] in (4, 8) and figures["threads"] == 1
    assert set(figures["by_dtype"]) == {"float32", chosen}  # float32 always measured alongside
    for side in figures["by_dtype"].values():
        assert len(side["pipeline_ratio_rounds"]) == 2 and all(r > 0 for r in side["pipeline_ratio_rounds"])
        low, high = side["pipeline_ratio_spread"]
        assert low <= side["pipeline_ratio"] <= high
        assert math.isclose(side["bare_gflop_per_s"], side["bare_images_per_s"] * figures["gflop_per_image"])
    check = figures["precision_check"]
    assert check["observations_compared"] == len(observations_of(list(range(16))))
    assert 0 <= check["max_prob_diff"] < 0.05 and check["cutoff"] == 0.30
    for row in ("bare forward", "GFLOP/s", "pipeline / bare", "max prob diff", "decisions differ", "seed-style",
                "ten-crop pipeline (crops/s)", "peak RSS"):
        assert row in result.output


def test_bench_json_to_stdout_and_bad_batch_size() -> None:
    runner = CliRunner()
    bad = runner.invoke(main, ["bench", "--quick", "--batch-size", "lots"])
    assert bad.exit_code == 2 and "--batch-size" in bad.output
    ok = runner.invoke(main, ["bench", "--quick", "--threads", "1", "--batch-size", "4", "--photos", "4",
                              "--no-tencrop", "--dtype", "float32", "--json", "-"])
    assert ok.exit_code == 0, ok.output
    figures = json.loads(ok.stdout[ok.stdout.index("{"):])
    assert figures["batch_size"] == 4 and "seed_style_images_per_s" not in figures
    assert list(figures["by_dtype"]) == ["float32"] and figures["precision_check"]["max_prob_diff"] == 0.0


def test_bench_observations_have_one_to_four_photos() -> None:
    photos = [bytes([i]) for i in range(50)]
    groups = observations_of(photos)
    assert [p for g in groups.values() for p in g] == photos
    assert {len(g) for g in groups.values()} <= {1, 2, 3, 4} and len({len(g) for g in groups.values()}) > 2
