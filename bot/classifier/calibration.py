"""Temperature scaling: the one place where logits become probabilities.

A calibrated bundle carries a temperature T (`plantbot calibrate`); every probability the bot uses
is softmax(logits / T), taken per photo (and per crop) before anything is averaged, so the daemon,
`evaluate` and `calibrate` cannot disagree on what a probability is.  No T (or T = 1) is the plain
softmax, exactly as before calibration existed.
"""

from __future__ import annotations

import numpy as np


def probabilities(logits: np.ndarray, temperature: float | None = None) -> np.ndarray:
    """softmax(logits / temperature) over the last axis, in float64 (rows of NaN stay NaN)."""
    z = np.asarray(logits, dtype=np.float64)
    if temperature is not None and temperature != 1.0:
        z = z / float(temperature)
    z = z - np.max(z, axis=-1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / np.sum(e, axis=-1, keepdims=True)
    return out


def photo_probabilities(crop_logits: np.ndarray, temperature: float | None = None) -> np.ndarray:
    """[..., crops, labels] logits -> [..., labels]: each crop's softmax, then the mean over crops."""
    out: np.ndarray = probabilities(crop_logits, temperature).mean(axis=-2)
    return out
