"""Benchmark: `plantbot evaluate --predictions` on 15,000 photos x top-5 over 6,000 labels.

    .venv/bin/python benchmarks/bench_predictions.py [--photos N] [--labels N] [--k K] [--keep DIR]

Writes a synthetic labels.csv and JSON Lines file (3 photos an observation, the true label first in
60% of the lists), then times reading, the metrics and the whole command (metrics.json, the figures,
index.html), and prints the peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.classifier.bundle import write_labels  # noqa: E402
from bot.domain import Label  # noqa: E402
from bot.training.predictions import evaluate_predictions, read_predictions, summary_from_predictions  # noqa: E402


def make_files(folder: Path, n_photos: int, n_labels: int, k: int) -> tuple[Path, Path]:
    rnd = random.Random(1)
    labels = [Label(i, None, f"Genus{i // 4} species{i}", "species", None, f"Genus{i // 4}", None,
                    f"Family{i // 40}") for i in range(n_labels)]
    write_labels(folder / "labels.csv", labels)
    with (folder / "predictions.jsonl").open("w", encoding="utf-8") as fh:
        for photo in range(n_photos):
            obs = photo // 3
            true = (obs * 7919) % n_labels
            names = [true if rnd.random() < 0.6 else rnd.randrange(n_labels)] + rnd.sample(range(n_labels), k - 1)
            probs = sorted((rnd.random() for _ in names), reverse=True)
            top = [[labels[j].name, round(p / k, 6)] for j, p in zip(names, probs, strict=True)]
            fh.write(json.dumps({"observation_id": obs, "label": labels[true].name, "top": top}) + "\n")
    return folder / "predictions.jsonl", folder / "labels.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=15_000)
    parser.add_argument("--labels", type=int, default=6_000)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="Keep the files and the report in this folder.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        preds, labels_csv = make_files(folder, args.photos, args.labels, args.k)
        from bot.classifier import read_labels

        labels = read_labels(labels_csv)
        t0 = time.perf_counter()
        parsed = read_predictions(preds, labels)
        t1 = time.perf_counter()
        summary_from_predictions(parsed, labels, 0.3, (0.8, 0.9))
        t2 = time.perf_counter()
        result = evaluate_predictions(preds, labels_csv, folder / "evaluation")
        t3 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.photos:,} photos x top-{args.k} over {args.labels:,} labels "
          f"({result['observations']:,} observations): read {t1 - t0:.2f} s, metrics {t2 - t1:.2f} s, "
          f"whole command (metrics.json, figures, index.html) {t3 - t2:.2f} s; peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
