"""`plantbot calibrate` on a designed bundle whose over-confidence is known: the temperature written
into model.toml is the NLL minimum computed here independently, ECE falls, and evaluate agrees."""

from __future__ import annotations

import csv
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
import tomlkit
from click.testing import CliRunner

from bot.classifier import load_bundle
from bot.cli import main
from tests.support.designed_model import build_designed_bundle, make_prototypes
from tests.test_calibration import grid_minimum, nll_at
from tests.test_end_to_end import labels

N_PROTOS, SHARPEN = 24, 3.0


def _designed_set(tmp_path: Path) -> tuple[Path, Path, np.ndarray, list[int], list[int], list[int]]:
    """A designed bundle over-confident by construction and a labelled set drawn from the true logits:
    (bundle folder, set manifest, what the model says per prototype, photo prototypes, groups, truth)."""
    rng = np.random.default_rng(5)
    labs = labels()
    true_logits = rng.normal(0, 1.2, (N_PROTOS, len(labs)))
    said = np.exp(SHARPEN * true_logits)
    said /= said.sum(axis=1, keepdims=True)  # what the model says: over-confident by construction
    protos = make_prototypes(N_PROTOS, seed=9)
    bundle = build_designed_bundle(tmp_path / "bundle", labs, protos, said)
    (tmp_path / "photos").mkdir()
    for k, data in enumerate(protos):
        (tmp_path / "photos" / f"{k}.jpg").write_bytes(data)
    rows, group, photo_proto, truth = [], [], [], []
    for o in range(160):
        k = int(rng.integers(N_PROTOS))
        p = np.exp(true_logits[k]) / np.exp(true_logits[k]).sum()
        y = int(rng.choice(len(labs), p=p))
        truth.append(y)
        for _ in range(int(rng.integers(1, 3))):
            rows.append({"path": f"photos/{k}.jpg", "label": labs[y].name, "observation_id": f"o{o}"})
            group.append(o)
            photo_proto.append(k)
    with (tmp_path / "calib.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "label", "observation_id"])
        writer.writeheader()
        writer.writerows(rows)
    return bundle.path, tmp_path / "calib.csv", said, photo_proto, group, truth


def test_calibrate_writes_the_nll_minimising_temperature(tmp_path: Path) -> None:
    bundle_path, calib, said, photo_proto, group, truth = _designed_set(tmp_path)
    out = tmp_path / "calibrated"
    # float32: the independent computation below uses exact logits (bf16 autocast would round them)
    result = CliRunner().invoke(main, ["calibrate", "--dtype", "float32", str(bundle_path), str(calib),
                                       "--out", str(out), "--device", "cpu", "--no-progress", "--min-decided", "5",
                                       "--target-precision", "0.6"])
    assert result.exit_code == 0, result.output
    written = tomllib.loads((out / "model.toml").read_text())
    assert "temperature" not in tomllib.loads((bundle_path / "model.toml").read_text())  # original untouched
    # independently: the model's logits are log(said) (clipped as the designed bundle does), per photo
    logits = np.log(np.clip(said, 1e-6, None))[np.array(photo_proto)][:, None, :]
    best = grid_minimum(lambda t: nll_at(t, logits, np.array(group), np.array(truth)), 0.3, 10.0)
    assert written["temperature"] == pytest.approx(best, abs=1e-3)
    assert written["calibration"]["set"] == "calib.csv" and written["calibration"]["observations"] == 160
    assert written["calibration"]["ece_after"] < written["calibration"]["ece_before"]
    assert written["calibration"]["nll_after"] < written["calibration"]["nll_before"]
    assert load_bundle(out).temperature == written["temperature"]
    assert "temperature" in result.output and "species" in result.output

    result = CliRunner().invoke(main, ["evaluate", str(out), str(tmp_path / "calib.csv"), "--out",
                                       str(tmp_path / "eval"), "--device", "cpu", "--no-progress",
                                       "--dtype", "float32"])
    assert result.exit_code == 0, result.output
    cal = json.loads((tmp_path / "eval" / "metrics.json").read_text())["calibration"]
    assert cal["calibrated"]["ece"] == pytest.approx(written["calibration"]["ece_after"], abs=1e-4)
    assert cal["uncalibrated"]["nll"] == pytest.approx(written["calibration"]["nll_before"], abs=1e-4)
    assert (tmp_path / "eval" / "reliability.png").exists()

    # With `cutoffs = "bundle"`, evaluate on the calibration set finds the precision calibrate promised
    # (target 0.6 here: softmax(z) over 8 labels rarely puts 0.9 on one), at or above the target, for every
    # rank it set a cutoff for (the same rule, the same probabilities).
    config = tmp_path / "bundle-cutoffs.toml"
    config.write_text('[decision]\ncutoffs = "bundle"\n[model]\ndtype = "float32"\n')
    found = written.get("cutoffs", {})
    assert "species" in found, written  # this set supports a species cutoff for 0.6 with 5 decided
    result = CliRunner().invoke(main, ["--config", str(config), "evaluate", str(out), str(tmp_path / "calib.csv"),
                                       "--out", str(tmp_path / "eval2"), "--device", "cpu", "--no-progress"])
    assert result.exit_code == 0, result.output
    rule = json.loads((tmp_path / "eval2" / "metrics.json").read_text())["rule"]
    for rank, cutoff in found.items():
        assert rule["cutoffs"][rank] == pytest.approx(cutoff)
        assert rule[rank]["precision"] == pytest.approx(written["calibration"][f"{rank}_precision"])
        assert rule[rank]["precision"] >= 0.6


def test_evaluate_write_cutoffs_finds_what_calibrate_finds(tmp_path: Path) -> None:
    """`evaluate --write-cutoffs` runs calibrate's own cutoff search: on the same set at the same
    temperature it stores the same cutoffs, keeps the temperature, and the rule then keeps the promise."""
    bundle_path, calib, *_ = _designed_set(tmp_path)
    calibrated = tmp_path / "calibrated"
    args = ["--dtype", "float32", "--device", "cpu", "--no-progress"]
    result = CliRunner().invoke(main, ["calibrate", str(bundle_path), str(calib), "--out", str(calibrated),
                                       "--min-decided", "5", "--target-precision", "0.6", *args])
    assert result.exit_code == 0, result.output
    by_calibrate = tomllib.loads((calibrated / "model.toml").read_text())
    assert by_calibrate.get("cutoffs"), by_calibrate  # the set supports at least one cutoff at 0.6
    written = tmp_path / "written"
    written.mkdir()
    for path in calibrated.iterdir():  # the calibrated bundle, its cutoffs taken out
        (written / path.name).write_bytes(path.read_bytes())
    doc = tomlkit.parse((written / "model.toml").read_text())
    doc.pop("cutoffs")
    (written / "model.toml").write_text(tomlkit.dumps(doc))
    assert load_bundle(written).cutoffs is None and load_bundle(written).temperature == doc["temperature"]

    config = tmp_path / "config.toml"
    config.write_text('[decision]\ncutoffs = "bundle"\ntarget_precision = 0.6\nmin_decided = 5\n')
    result = CliRunner().invoke(main, ["--config", str(config), "evaluate", str(written), str(calib),
                                       "--out", str(tmp_path / "eval"), "--write-cutoffs", *args])
    assert result.exit_code == 0, result.output
    assert "cutoffs written to" in result.output and "cutoffs for precision 0.60" in result.output
    stored = tomllib.loads((written / "model.toml").read_text())
    assert stored["cutoffs"] == pytest.approx(by_calibrate["cutoffs"])
    assert stored["temperature"] == by_calibrate["temperature"]  # evaluate fits no temperature
    assert stored["calibration"]["cutoffs_set"] == "calib.csv"
    assert stored["calibration"]["cutoffs_observations"] == 160
    rule = json.loads((tmp_path / "eval" / "metrics.json").read_text())["rule"]
    for rank, cutoff in stored["cutoffs"].items():  # the rule reported ran with the cutoffs just stored
        assert rule["cutoffs"][rank] == pytest.approx(cutoff)
        assert rule[rank]["precision"] == pytest.approx(stored["calibration"][f"{rank}_precision"])
        assert rule[rank]["precision"] >= 0.6


def test_evaluate_write_cutoffs_needs_a_bundle(tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text("")
    (tmp_path / "labels.csv").write_text("name\n")
    result = CliRunner().invoke(main, ["evaluate", "--predictions", str(tmp_path / "p.jsonl"), "--labels",
                                       str(tmp_path / "labels.csv"), "--out", str(tmp_path / "o"), "--write-cutoffs"])
    assert result.exit_code != 0 and "--write-cutoffs needs a BUNDLE" in result.output
