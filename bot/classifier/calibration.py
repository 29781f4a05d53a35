"""Temperature scaling: the one place where logits become probabilities.

A calibrated bundle carries a temperature T (`plantbot calibrate`); every probability the bot uses
is softmax(logits / T), taken per photo (and per crop) before anything is averaged, so the daemon,
`evaluate` and `calibrate` cannot disagree on what a probability is.  No T (or T = 1) is the plain
softmax, exactly as before calibration existed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tomlkit


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


def write_calibration(folder: Path, *, temperature: float | None, info: dict[str, Any],
                      cutoffs: dict[str, float]) -> None:
    """Sets `temperature`, `[calibration]` and `[cutoffs]` in the bundle's model.toml, keeping the rest
    of the file (comments included) as it was; a rank without a cutoff is left out of `[cutoffs]`."""
    path = folder / "model.toml"
    doc = tomlkit.parse(path.read_text(encoding="utf-8"))
    for key in ("temperature", "calibration", "cutoffs"):
        doc.pop(key, None)
    if temperature is not None:
        doc["temperature"] = float(temperature)  # tomlkit keeps top-level keys above the tables
    table = tomlkit.table()
    for key, value in info.items():
        if value is not None:
            table[key] = value
    doc["calibration"] = table
    _put_cutoffs(doc, cutoffs)
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")


def write_cutoffs(folder: Path, *, info: dict[str, Any], cutoffs: dict[str, float]) -> None:
    """Replaces only `[cutoffs]` in the bundle's model.toml and merges `info` into `[calibration]`
    (`evaluate --write-cutoffs`: the temperature and how it was fitted stay as they were)."""
    path = folder / "model.toml"
    doc = tomlkit.parse(path.read_text(encoding="utf-8"))
    table = doc.get("calibration")
    if not isinstance(table, dict):
        doc.pop("calibration", None)
        table = tomlkit.table()
        doc["calibration"] = table
    for rank in ("species", "genus", "family"):  # a rank without a cutoff now promises nothing
        table.pop(f"{rank}_precision", None)
    for key, value in info.items():
        table.pop(key, None)
        if value is not None:
            table[key] = value
    doc.pop("cutoffs", None)
    _put_cutoffs(doc, cutoffs)
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")


def _put_cutoffs(doc: tomlkit.TOMLDocument, cutoffs: dict[str, float] | None) -> None:
    """Writes `[cutoffs]` as floats (a rank with no cutoff is absent, so the config's number applies)."""
    if cutoffs:
        cut = tomlkit.table()
        for rank, value in cutoffs.items():
            cut[rank] = float(value)
        doc["cutoffs"] = cut
