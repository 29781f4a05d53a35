"""One-line summaries of evaluation and calibration results, shared by the CLI and the demo."""

from __future__ import annotations

from typing import Any


def pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def num(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def rule_lines(rule: dict[str, Any]) -> list[str]:
    """The daemon's rule on the set: cutoffs, then count and precision (Wilson 95%) per rank."""
    cuts = ", ".join(f"{r} {c:.3f}" for r, c in rule["cutoffs"].items())
    lines = [f"rule {rule['rule']} (cutoffs {cuts}):"]
    for k in ("species", "genus", "family"):
        ci = rule[k].get("interval")
        band = f", 95% CI {pct(ci[0])}-{pct(ci[1])}" if ci else ""
        lines.append(f"  {k}: {rule[k]['count']} proposed, {pct(rule[k]['precision'])} right{band}")
    lines.append(f"  abstain: {rule['abstain']['count']}")
    return lines


def cutoff_lines(found: dict[str, Any]) -> list[str]:
    """One line per rank: the cutoff found and the precision it promises, or why there is none."""
    lines = [f"cutoffs for precision {found['target_precision']:.2f} "
             f"(at least {found['min_decided']} decided observations per rank):"]
    for rank in ("species", "genus", "family"):
        row = found.get(rank)
        if row is None:
            continue
        if row["cutoff"] is None:
            lines.append(f"  {rank}: none ({row['reason']}); the config's cutoff stays")
            continue
        lo, hi = row["interval"]
        lines.append(f"  {rank}: {row['cutoff']:.3f} -> {pct(row['precision'])} right of {row['decided']} "
                     f"(95% CI {pct(lo)}-{pct(hi)})")
    return lines
