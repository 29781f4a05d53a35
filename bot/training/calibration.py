"""Calibration numbers and the temperature fit, as functions over arrays (no files, no plots).

`photo_logits` is [photos, crops, labels]; `group` maps each photo to its observation's row, so the
probabilities judged are exactly the daemon's: softmax(logits / T) per crop, mean over crops, then
mean over the observation's photos (`observation_probs`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from bot.classifier import photo_probabilities

ECE_BINS = 15
T_BOUNDS = (0.05, 20.0)


def observation_probs(photo_logits: np.ndarray, group: np.ndarray, n_obs: int,
                      temperature: float | None) -> np.ndarray:
    """[n_obs, labels]: each observation's mean of its photos' probabilities at `temperature`."""
    per_photo = photo_probabilities(photo_logits, temperature)
    sums = np.zeros((n_obs, per_photo.shape[-1]), dtype=np.float64)
    np.add.at(sums, np.asarray(group, dtype=np.int64), per_photo)
    counts = np.bincount(np.asarray(group, dtype=np.int64), minlength=n_obs)
    return sums / np.maximum(counts, 1)[:, None]


def nll(probs: np.ndarray, truth: np.ndarray) -> float | None:
    """Mean negative log-likelihood of the true labels (probabilities floored at 1e-12)."""
    if len(truth) == 0:
        return None
    p = np.asarray(probs, dtype=np.float64)[np.arange(len(truth)), np.asarray(truth, dtype=np.int64)]
    return float(-np.mean(np.log(np.clip(p, 1e-12, None))))


def reliability(probs: np.ndarray, truth: np.ndarray, bins: int = ECE_BINS) -> list[dict[str, Any]]:
    """Top-label confidence vs accuracy in `bins` equal-width bins of (0, 1]; empty bins included."""
    probs = np.asarray(probs, dtype=np.float64)
    conf = probs.max(axis=1) if len(probs) else np.zeros(0)
    hit = probs.argmax(axis=1) == np.asarray(truth) if len(probs) else np.zeros(0, dtype=bool)
    index = np.clip(np.ceil(conf * bins).astype(np.int64) - 1, 0, bins - 1)
    out = []
    for b in range(bins):
        mask = index == b
        n = int(mask.sum())
        out.append({"low": b / bins, "high": (b + 1) / bins, "count": n,
                    "confidence": float(conf[mask].mean()) if n else None,
                    "accuracy": float(hit[mask].mean()) if n else None})
    return out


def ece(probs: np.ndarray, truth: np.ndarray, bins: int = ECE_BINS) -> float | None:
    """Expected calibration error: sum over bins of (bin share) x |accuracy - mean confidence|."""
    n = len(truth)
    if n == 0:
        return None
    return float(sum(b["count"] / n * abs(b["accuracy"] - b["confidence"])
                     for b in reliability(probs, truth, bins) if b["count"]))


def calibration_numbers(probs: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    return {"ece": ece(probs, truth), "nll": nll(probs, truth), "reliability": reliability(probs, truth)}


def fit_temperature(photo_logits: np.ndarray, group: np.ndarray, truth: np.ndarray) -> float:
    """The T minimising the NLL of the observation-averaged probabilities softmax(z / T).

    One parameter, optimised as log T with torch's L-BFGS (strong Wolfe line search) in float64,
    from T = 1; the result is clipped to [0.05, 20].
    """
    z = torch.as_tensor(np.asarray(photo_logits, dtype=np.float64))
    g = torch.as_tensor(np.asarray(group, dtype=np.int64))
    y = torch.as_tensor(np.asarray(truth, dtype=np.int64))
    n_obs = len(truth)
    counts = torch.bincount(g, minlength=n_obs).clamp(min=1).to(torch.float64)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=1.0, max_iter=200, tolerance_grad=1e-12, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")

    def loss_fn() -> torch.Tensor:
        opt.zero_grad()
        per_photo = torch.softmax(z / log_t.exp(), dim=-1).mean(dim=-2)
        sums = torch.zeros((n_obs, z.shape[-1]), dtype=torch.float64).index_add(0, g, per_photo)
        p = (sums / counts[:, None])[torch.arange(n_obs), y]
        loss = -torch.log(p.clamp(min=1e-12)).mean()
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    opt.step(loss_fn)  # type: ignore[no-untyped-call]
    t = float(log_t.detach().exp())
    if not math.isfinite(t):
        return 1.0
    return min(max(t, T_BOUNDS[0]), T_BOUNDS[1])


def group_index(observation_ids: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Each photo's observation row (in order of first appearance) and the observation ids."""
    order: dict[str, int] = {}
    rows = [order.setdefault(oid, len(order)) for oid in observation_ids]
    return np.asarray(rows, dtype=np.int64), list(order)
