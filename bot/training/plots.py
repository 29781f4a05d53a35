"""The evaluation's figures (the paper's Figures 2 and 3) and the index.html that shows them."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from bot.domain import Label  # noqa: E402
from bot.training.metrics import PHOTO_GROUPS  # noqa: E402

CUTOFF_PNG = "cutoff_curve.png"
CONFUSION_PNG = "confusion_matrix.png"
RELIABILITY_PNG = "reliability.png"


def plot_reliability(cal: dict[str, Any], path: Path) -> None:
    """Reliability diagram: accuracy against mean top-label confidence per bin, before and after the
    bundle's temperature; the diagonal is a probability that means what it says."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    for key, name in (("uncalibrated", "uncalibrated"), ("calibrated", f"T = {cal.get('temperature') or 1:.3f}")):
        if key not in cal:
            continue
        bins = [b for b in cal[key]["reliability"] if b["count"]]
        ece = cal[key]["ece"]
        ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o",
                label=f"{name} (ECE {ece:.3f})" if ece is not None else name)
    ax.set(title="Reliability (15 bins, per observation)", xlabel="mean top probability in bin",
           ylabel="accuracy in bin", xlim=(0, 1), ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


LOW_SUPPORT = 10  # an accuracy resting on fewer kept observations is drawn hollow, its count shown


def accuracy_points(rows: Sequence[dict[str, Any]]) -> list[tuple[float, float, int, bool]]:
    """(cutoff, top-1, kept observations, low support) for each cutoff with any kept observation."""
    return [(r["cutoff"], r["top1"], int(r.get("kept") or 0), int(r.get("kept") or 0) < LOW_SUPPORT)
            for r in rows if r["top1"] is not None]


def plot_cutoff_curve(curve: Sequence[dict[str, Any]], path: Path) -> None:
    """Figure 2: top-1 over the kept observations and fraction discarded, per number of photos.

    Accuracy points carry how many observations they rest on: the `all` curve is labelled with its
    counts, and any point resting on fewer than LOW_SUPPORT observations is hollow."""
    fig, (acc_ax, disc_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    for group in PHOTO_GROUPS:
        rows = [r for r in curve if r["n_photos"] == group and r["discarded"] is not None]
        if not rows:
            continue
        n = rows[0].get("observations", "")
        style = {"linewidth": 2.5, "color": "black"} if group == "all" else {}
        name = f"{group} photo{'s' if group != 1 else ''} (n={n})" if group != "all" else f"all (n={n})"
        points = accuracy_points(rows)
        if points:
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            line, = acc_ax.plot(xs, ys, label=name, **style)
            firm = [p for p in points if not p[3]]
            low = [p for p in points if p[3]]
            acc_ax.scatter([p[0] for p in firm], [p[1] for p in firm], s=12, color=line.get_color(), zorder=3)
            acc_ax.scatter([p[0] for p in low], [p[1] for p in low], s=18, facecolors="none",
                           edgecolors=line.get_color(), zorder=3)
            if group == "all":
                for x, y, kept, _ in points[::2]:
                    acc_ax.annotate(str(kept), (x, y), textcoords="offset points", xytext=(0, 5), fontsize=6,
                                    ha="center")
        disc_ax.plot([r["cutoff"] for r in rows], [r["discarded"] for r in rows], marker="o", markersize=3,
                     label=name, **style)
    acc_ax.set(title=f"Top-1 of kept observations (numbers: kept; hollow: < {LOW_SUPPORT})",
               xlabel="cutoff (top probability)", ylabel="accuracy", ylim=(0, 1.08), xlim=(0, 0.95))
    disc_ax.set(title="Fraction discarded", xlabel="cutoff (top probability)", ylabel="fraction",
                ylim=(0, 1.02), xlim=(0, 0.95))
    for ax in (acc_ax, disc_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


MAX_CELLS = 1000  # larger label sets are drawn in blocks of neighbouring labels (taxonomic order)
MAX_LINES = 200  # boundaries of one rank drawn at most (metrics.json keeps them all)


def confusion_image(conf: dict[str, Any]) -> np.ndarray:
    """The row-normalised matrix in taxonomic order, from metrics.json's sparse cells; label sets
    above MAX_CELLS are binned so 6,000 labels never make a 6,000 x 6,000 array."""
    n = int(conf["labels"])
    side = min(n, MAX_CELLS)
    position = np.empty(n, dtype=np.int64)
    position[np.asarray(conf["order"], dtype=np.int64)] = np.arange(n)
    m = np.zeros((side, side), dtype=np.float64)
    if conf["cells"]:
        cells = np.asarray(conf["cells"], dtype=np.int64)
        rows, cols = position[cells[:, 0]] * side // n, position[cells[:, 1]] * side // n
        np.add.at(m, (rows, cols), cells[:, 2])
    totals = m.sum(axis=1, keepdims=True)
    return np.divide(m, totals, out=np.zeros_like(m), where=totals > 0)


def plot_confusion(conf: dict[str, Any], labels: Sequence[Label], path: Path) -> None:
    """Figure 3: row-normalised confusion matrix, labels ordered by family then genus, with family
    boundaries (solid) and genus boundaries (dotted) drawn so confusions within a group stand out."""
    m = confusion_image(conf)
    n, side = int(conf["labels"]), m.shape[0]
    fig_side = min(24.0, max(5.0, 0.18 * side + 3)) if n <= 80 else 12.0  # no names to fit beyond 80
    fig, ax = plt.subplots(figsize=(fig_side, fig_side))
    image = ax.imshow(m, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true label's observations")
    scale = side / max(n, 1)
    genus = np.asarray(conf["genus_starts"], dtype=np.float64) * scale - 0.5
    family = np.asarray(conf["family_starts"], dtype=np.float64) * scale - 0.5
    drawn = [what for what, at in (("genus", genus), ("family", family)) if len(at) <= MAX_LINES]
    for lines in (ax.hlines, ax.vlines):  # hundreds of lines would hide the matrix (and take a minute)
        if "genus" in drawn:
            lines(genus, -0.5, side - 0.5, colors="white", linestyles="dotted", linewidths=0.4)
        if "family" in drawn:
            lines(family, -0.5, side - 0.5, colors="white", linestyles="solid", linewidths=0.8)
    if n <= 80:
        names = [labels[i].name for i in conf["order"]]
        ax.set_xticks(range(n), names, rotation=90, fontsize=6)
        ax.set_yticks(range(n), names, fontsize=6)
    binned = "" if side == n else f"; {n} labels in {side} blocks"
    lines_note = " and ".join(drawn) + " boundaries drawn" if drawn else f"over {MAX_LINES} groups: no boundaries"
    ax.set(xlabel="predicted", ylabel="true",
           title=f"Confusion matrix (observations), by family then genus ({lines_note}{binned})")
    if n <= 80:  # only long tick names need the extra layout pass (a whole extra draw)
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return html.escape(str(value))


def render_index(result: dict[str, Any]) -> str:
    """A self-contained page: the key numbers, the rule's outcome, the target cutoffs, the figures."""
    model = result.get("model", {})
    keys = ["photos", "observations", "top1", "top5", "photo_top1", "photo_top5", "genus_top1", "family_top1",
            "chance_top1", "photos_failed", "photos_unknown_label"]
    numbers = "".join(f"<tr><th>{k}</th><td>{_fmt(result.get(k))}</td></tr>" for k in keys if k in result)
    rule = result.get("rule") or result.get("model_rule", {})  # --predictions: the model-only view
    rule_rows = "".join(
        f"<tr><th>{kind}</th><td>{_fmt(rule.get(kind, {}).get('count'))}</td>"
        f"<td>{_fmt(rule.get(kind, {}).get('precision'))}</td><td>{_interval(rule.get(kind, {}))}</td></tr>"
        for kind in ("species", "genus", "family", "abstain"))
    cuts = ", ".join(f"{r} {_fmt(c)}" for r, c in rule.get("cutoffs", {}).items())
    fallbacks = "".join(
        f"<tr><th>{html.escape(name)}</th>" + "".join(
            f"<td>{_fmt(o[k]['count'])} ({_fmt(o[k].get('precision'))})</td>" for k in ("species", "genus", "family"))
        + f"<td>{_fmt(o['abstain']['count'])}</td></tr>" for name, o in result.get("fallbacks", {}).items())
    cal = result.get("calibration", {})
    cal_rows = "".join(
        f"<tr><th>{key}</th><td>{_fmt(cal[key]['ece'])}</td><td>{_fmt(cal[key]['nll'])}</td></tr>"
        for key in ("uncalibrated", "calibrated") if key in cal)
    targets = "".join(
        f"<tr><td>{_fmt(t['precision'])}</td><td>{_fmt(t['cutoff'])}</td><td>{_fmt(t['top1'])}</td>"
        f"<td>{_fmt(t['discarded'])}</td></tr>" for t in result.get("target_cutoffs", []))
    by_photos = "".join(
        f"<tr><td>{_fmt(r['n_photos'])}</td><td>{_fmt(r['observations'])}</td><td>{_fmt(r['top1'])}</td>"
        f"<td>{_fmt(r['top5'])}</td></tr>" for r in result.get("by_photos", []))
    notes = "".join(f"<p><strong>Note:</strong> {html.escape(str(n))}</p>" for n in result.get("notes", []))
    title = html.escape(f"{model.get('name', 'model')} {model.get('version', '')}".strip())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Evaluation of {title}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse;margin:1em 0}}
th,td{{border:1px solid #ccc;padding:4px 10px;text-align:left}}img{{max-width:100%}}</style></head>
<body><h1>Evaluation of {title}</h1>
<p>arch {html.escape(str(model.get('arch', '')))}, input {_fmt(model.get('input_size'))} px,
ten-crop {_fmt(result.get('tencrop'))}; manifest {_fmt(result.get('manifest'))}.
Per-observation numbers average the probabilities of the observation's photos.</p>
{notes}<h2>Key numbers</h2><table>{numbers}</table>
<h2>Top-1 and top-5 by number of photos per observation</h2>
<table><tr><th>photos</th><th>observations</th><th>top-1</th><th>top-5</th></tr>{by_photos}</table>
<h2>The bot's rule ({_fmt(rule.get('rule'))}; cutoffs {cuts})</h2>
<p>Exactly what the daemon would decide with this bundle and config (a label without a platform taxon id
is never proposed).</p>
<table><tr><th>decision</th><th>count</th><th>precision</th><th>95% interval (Wilson)</th></tr>{rule_rows}</table>
<h2>Fallback rules compared on the same set</h2>
<table><tr><th>fallback</th><th>species</th><th>genus</th><th>family</th><th>abstain</th></tr>{fallbacks}</table>
<h2>Calibration (temperature {_fmt(cal.get('temperature'))})</h2>
<table><tr><th></th><th>ECE (15 bins)</th><th>NLL</th></tr>{cal_rows}</table>
<img src="{RELIABILITY_PNG}" alt="reliability diagram">
<h2>Cutoffs reaching a target precision (species top-1 of kept observations)</h2>
<table><tr><th>target</th><th>cutoff</th><th>top-1</th><th>discarded</th></tr>{targets}</table>
<h2>Accuracy and discarded fraction by cutoff (Figure 2)</h2><img src="{CUTOFF_PNG}" alt="cutoff curve">
<h2>Confusion matrix (Figure 3)</h2><img src="{CONFUSION_PNG}" alt="confusion matrix">
<p>All numbers: <a href="metrics.json">metrics.json</a></p>
</body></html>
"""


def write_report(out: Path, result: dict[str, Any], labels: Sequence[Label]) -> list[Path]:
    """Writes the two PNGs and index.html into `out` from metrics.json's content; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    plot_cutoff_curve(result["cutoff_curve"], out / CUTOFF_PNG)
    plot_confusion(result["confusion"], labels, out / CONFUSION_PNG)
    written = [out / CUTOFF_PNG, out / CONFUSION_PNG]
    if "calibration" in result:
        plot_reliability(result["calibration"], out / RELIABILITY_PNG)
        written.append(out / RELIABILITY_PNG)
    (out / "index.html").write_text(render_index(result), encoding="utf-8")
    return [*written, out / "index.html"]


def _interval(row: dict[str, Any]) -> str:
    ci = row.get("interval")
    return f"{ci[0]:.3f} to {ci[1]:.3f}" if ci else ""
