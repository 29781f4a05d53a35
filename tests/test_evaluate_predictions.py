"""`evaluate --predictions`: another system's top-k lists, measured with the same metrics.

Hand-made set (labels: 0 A G1 F1, 1 B G1 F1, 2 C G2 F1, 3 D G3 F2, 4 E G3 F2, 5 F G4 F3), top-2 lists:

obs  photos                          averaged (missing = 0)          truth  top-1  true rank  genus     family
o1   [A .6, C .3], [B .5, A .4]       A .5, B .25, C .15              A      A yes  0          G1 .75 ok F1 .9 ok
o2   [C .25, B .2]                    C .25, B .2                     F      C no   5 (miss@5) G2 no     F1 no
o3   [E .35, D .34]                   E .35, D .34                    D      E no   1          G3 ok     F2 ok

photo top-1: 1/4 (only o1's first photo), photo top-5: 3/4 (o2's photo ranks F sixth: B, C, then the
zeros A, D, E come before F).  Rule at 0.30: o1 species A (right), o2 species .25 no, genus G2 .25 no,
family F1 .45 (wrong), o3 species E (wrong).
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bot.classifier.bundle import write_labels
from bot.cli import main
from bot.domain import Label
from bot.training import metrics
from bot.training.predictions import evaluate_predictions, read_predictions, summary_from_predictions

TAXA = [("A", "G1", "F1"), ("B", "G1", "F1"), ("C", "G2", "F1"), ("D", "G3", "F2"), ("E", "G3", "F2"),
        ("F", "G4", "F3")]
LABELS = [Label(i, None, n, "species", None, g, None, f) for i, (n, g, f) in enumerate(TAXA)]
LINES = [
    {"observation_id": "o1", "label": "A", "top": [["A", 0.6], ["C", 0.3]]},
    {"observation_id": "o2", "label": "F", "top": [["C", 0.25], ["B", 0.2]]},
    {"observation_id": "o1", "label": "A", "top": [["B", 0.5], ["A", 0.4]]},
    {"observation_id": "o3", "label": "D", "top": [["E", 0.35], ["D", 0.34], ["Nonexistus", 0.01]]},
]


def write_jsonl(path: Path, lines: list[dict]) -> Path:  # type: ignore[type-arg]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    write_labels(tmp_path / "labels.csv", LABELS)
    return write_jsonl(tmp_path / "preds.jsonl", LINES), tmp_path / "labels.csv"


def test_hand_computed_metrics(files: tuple[Path, Path], tmp_path: Path) -> None:
    preds, labels = files
    m = evaluate_predictions(preds, labels, tmp_path / "out", cutoff=0.30, targets=(0.9,))
    assert (m["photos"], m["observations"], m["labels"]) == (4, 3, 6)
    assert m["top1"] == pytest.approx(1 / 3) and m["top5"] == pytest.approx(2 / 3)
    assert m["photo_top1"] == pytest.approx(1 / 4) and m["photo_top5"] == pytest.approx(3 / 4)
    assert m["genus_top1"] == pytest.approx(2 / 3) and m["family_top1"] == pytest.approx(2 / 3)
    assert m["model_rule"] == {"cutoff": 0.30, "species": {"count": 2, "precision": 0.5},
                         "genus": {"count": 0, "precision": None}, "family": {"count": 1, "precision": 0.0},
                         "abstain": {"count": 0}}
    point = {r["cutoff"]: (r["top1"], r["discarded"], r["kept"]) for r in m["cutoff_curve"] if r["n_photos"] == "all"}
    assert point[0.3] == (0.5, pytest.approx(1 / 3), 2) and point[0.4] == (1.0, pytest.approx(2 / 3), 1)
    assert m["target_cutoffs"] == [{"precision": 0.9, "cutoff": 0.4, "top1": 1.0, "discarded": pytest.approx(2 / 3)}]
    by = {r["n_photos"]: (r["observations"], r["top1"], r["top5"]) for r in m["by_photos"]}
    assert by[1] == (2, 0.0, 0.5) and by[2] == (1, 1.0, 1.0)
    assert m["confusion"]["cells"] == [[0, 0, 1], [3, 4, 1], [5, 2, 1]]
    assert m["top_k"] == {"min": 2, "max": 3} and any("top 2-3 of 6 labels" in n for n in m["notes"])
    assert any("'Nonexistus'" in n for n in m["notes"])
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["top1"] == m["top1"]
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {"metrics.json", "index.html", "cutoff_curve.png",
                                                              "confusion_matrix.png"}


def test_same_numbers_and_keys_as_the_dense_path() -> None:
    """Full lists (k = every label) must give exactly what metrics.summary gives on the array."""
    rng = np.random.default_rng(4)
    labels = [Label(i, None, f"S{i}", "species", None, f"G{i // 3}", None, f"F{i // 7}") for i in range(20)]
    n = 90
    truth = rng.integers(0, 20, n)
    probs = rng.dirichlet(np.full(20, 0.3), n)
    probs[np.arange(n), truth] += rng.random(n) * 0.5  # some signal
    probs /= probs.sum(axis=1, keepdims=True)
    obs = [f"o{rng.integers(0, 40)}" for _ in range(n)]
    first_label: dict[str, int] = {}
    truth = np.array([first_label.setdefault(o, int(t)) for o, t in zip(obs, truth, strict=True)])
    dense = metrics.summary(probs, truth, obs, labels, cutoff=0.3, targets=(0.5, 0.8))
    rows = np.repeat(np.arange(n), 20)
    from bot.training.predictions import Predictions

    sparse = summary_from_predictions(Predictions(rows, np.tile(np.arange(20), n), probs.ravel(), truth, obs, 20, 20),
                                      labels, cutoff=0.3, targets=(0.5, 0.8))
    daemon_only = {"rule", "fallbacks"}  # the daemon's rule needs a bundle's taxon mapping: dense only
    assert sparse.keys() == dense.keys() - daemon_only
    assert _rounded(sparse) == _rounded({k: v for k, v in dense.items() if k not in daemon_only})


def _rounded(doc: object) -> object:
    if isinstance(doc, float):
        return round(doc, 9)
    if isinstance(doc, dict):
        return {k: _rounded(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_rounded(v) for v in doc]
    return doc


def test_bad_lines_are_one_line_errors_naming_the_line(tmp_path: Path) -> None:
    from bot.errors import UsageError

    for bad, why in (("{not json", "not JSON"), (json.dumps({"label": "A", "top": [["A", 1]]}), "observation_id"),
                     (json.dumps({"observation_id": 1, "label": "A", "top": [["A", 2]]}), "between 0 and 1"),
                     (json.dumps({"observation_id": 1, "label": "A", "top": []}), "non-empty")):
        path = tmp_path / "bad.jsonl"
        path.write_text(json.dumps(LINES[0]) + "\n" + bad + "\n", encoding="utf-8")
        with pytest.raises(UsageError, match=f"bad.jsonl:2: .*{why}"):
            read_predictions(path, LABELS)


def test_cli(files: tuple[Path, Path], tmp_path: Path) -> None:
    preds, labels = files
    runner = CliRunner()
    result = runner.invoke(main, ["evaluate", "--predictions", str(preds), "--labels", str(labels),
                                  "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    assert "3 observations (4 photos): top-1 33.3%" in result.output and "note: the predictions give" in result.output
    wrong = runner.invoke(main, ["evaluate", "--predictions", str(preds), "--out", str(tmp_path / "x")])
    assert wrong.exit_code == 2 and "--labels" in wrong.output


def test_large_file_benchmark(tmp_path: Path) -> None:
    """15,000 photos x top-5 over 6,000 labels: prints how long reading and the metrics take."""
    rnd = random.Random(1)
    labels = [Label(i, None, f"Genus{i // 4} species{i}", "species", None, f"Genus{i // 4}", None,
                    f"Family{i // 40}") for i in range(6000)]
    write_labels(tmp_path / "labels.csv", labels)
    with (tmp_path / "big.jsonl").open("w", encoding="utf-8") as fh:
        for photo in range(15000):
            obs = photo // 3
            true = (obs * 7919) % 6000
            names = [true if rnd.random() < 0.6 else rnd.randrange(6000)] + rnd.sample(range(6000), 4)
            probs = sorted((rnd.random() for _ in names), reverse=True)
            top = [[labels[j].name, p / 3] for j, p in zip(names, probs, strict=True)]
            fh.write(json.dumps({"observation_id": obs, "label": labels[true].name, "top": top}) + "\n")
    started = time.perf_counter()
    preds = read_predictions(tmp_path / "big.jsonl", labels)
    read_s = time.perf_counter() - started
    m = summary_from_predictions(preds, labels, 0.3, (0.8, 0.9))
    metrics_s = time.perf_counter() - started - read_s
    print(f"\nbenchmark: 15,000 photos x top-5 over 6,000 labels: read {read_s:.2f} s, metrics {metrics_s:.2f} s")
    assert m["photos"] == 15000 and m["observations"] == 5000 and m["top1"] is not None
