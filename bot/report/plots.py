"""The report's plots as inline SVG text (matplotlib, no display, text drawn as paths).

Inline SVG keeps report.html a single file that opens offline; each plot gets its own hash salt so
the ids matplotlib writes into one SVG never collide with another's on the same page.
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib
from matplotlib.figure import Figure

COLORS = {"posted": "#2b6cb0", "would-post": "#dd6b20"}
LABELS = {"posted": "posted", "would-post": "would have posted"}
OUTCOME_COLORS = {"confirmed": "#2f855a", "refined": "#68d391", "contradicted": "#c53030",
                  "pending": "#a0aec0", "gone": "#4a5568"}


def to_svg(fig: Figure, name: str) -> str:
    """The figure as an <svg> element (no XML prolog), ready to inline."""
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": name, "svg.fonttype": "path"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    start = text.find("<svg")
    return f'<div class="plot" id="plot-{name}">{text[start:]}</div>'


def calibration(precision_by_bin: list[dict[str, Any]]) -> str:
    """Precision against the model's probability per bin, with the number of decided suggestions."""
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ls="--", color="#999", lw=1, label="perfect calibration")
    for source, color in COLORS.items():
        rows = [r for r in precision_by_bin if r["source"] == source and r["precision"] is not None]
        if not rows:
            continue
        xs = [r["mean_score"] for r in rows]
        ys = [r["precision"] for r in rows]
        ax.plot(xs, ys, marker="o", color=color, label=LABELS[source])
        for x, y, r in zip(xs, ys, rows, strict=True):
            ax.annotate(f"n={r['decided']}", (x, y), textcoords="offset points", xytext=(4, 6),
                        fontsize=7, color=color)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("model probability (mean in bin)")
    ax.set_ylabel("precision (confirmed + refined) / decided")
    ax.set_title("Calibration")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    return to_svg(fig, "calibration")


def abstention(ab: dict[str, Any]) -> str:
    """Share of classified observations abstained on at each cutoff (paper Fig. 2b)."""
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    cut = ab["cutoffs"]
    ax.plot(cut, [v or 0 for v in ab["no_species_share"]], marker="o", label="no species ID")
    ax.plot(cut, [v or 0 for v in ab["abstain_share"]], marker="s",
            label="abstain (no species, genus or family)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("cutoff")
    ax.set_ylabel("share of observations")
    ax.set_title(f"Abstention by cutoff (n = {ab['n_classified']})")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    return to_svg(fig, "abstention")


def outcomes_by_version(rows: list[dict[str, Any]]) -> str:
    """Latest outcomes per model version and source, stacked."""
    fig = Figure(figsize=(6.4, 0.6 + 0.45 * max(len(rows), 1)))
    ax = fig.add_subplot()
    labels = [f"{r['group']} ({LABELS[r['source']]})" for r in rows]
    left = [0] * len(rows)
    for outcome, color in OUTCOME_COLORS.items():
        vals = [r[outcome] for r in rows]
        ax.barh(labels, vals, left=left, color=color, label=outcome)
        left = [a + b for a, b in zip(left, vals, strict=True)]
    ax.set_xlabel("suggestions (latest check)")
    ax.set_title("Outcomes by model version", pad=28)
    ax.legend(fontsize=7, ncols=5, loc="lower center", bbox_to_anchor=(0.5, 1.08))
    return to_svg(fig, "outcomes")


def live(entries: list[dict[str, Any]]) -> str:
    """Live precision by probability bin, one panel per rank, one line per model version, with the
    Wilson 95% interval as error bars, the target precision and each version's suggested cutoff."""
    ranks = [r for r in ("species", "genus", "family") if any(e["rank"] == r for e in entries)]
    ranks += sorted({e["rank"] for e in entries} - set(ranks))
    fig = Figure(figsize=(4.0 * len(ranks), 3.8))
    axes = fig.subplots(1, len(ranks), squeeze=False)[0]
    target = entries[0]["target_precision"]
    for ax, rank in zip(axes, ranks, strict=True):
        ax.axhline(target, ls="--", color="#999", lw=1, label=f"target {target:.2f}")
        for k, e in enumerate(x for x in entries if x["rank"] == rank):
            color = f"C{k}"
            bins = [b for b in e["bins"] if b["interval"] is not None]
            xs = [(b["low"] + b["high"]) / 2 for b in bins]
            ys = [b["precision"] for b in bins]
            err = [[y - b["interval"][0] for y, b in zip(ys, bins, strict=True)],
                   [b["interval"][1] - y for y, b in zip(ys, bins, strict=True)]]
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, color=color,
                        label=f"{e['model_version']} ({e['decided']} decided)")
            if e.get("suggested_cutoff") is not None:
                ax.axvline(e["suggested_cutoff"], color=color, lw=1, ls=":")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("model probability (bin)")
        ax.set_title(rank)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=7)
    axes[0].set_ylabel("live precision (95% Wilson)")
    return to_svg(fig, "live")


def render_all(figures: dict[str, Any]) -> dict[str, str]:
    """Every plot the report shows, by name."""
    out = {"abstention": abstention(figures["abstention"])}
    prec = figures["precision"]
    if prec["prob_bin"]:
        out["calibration"] = calibration(prec["prob_bin"])
    if prec["model_version"]:
        out["outcomes"] = outcomes_by_version(prec["model_version"])
    if figures.get("live_calibration"):
        out["live"] = live(figures["live_calibration"])
    return out
