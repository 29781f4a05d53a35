"""Model bundles: a folder with model.toml, a state dict and labels.csv.

A bundle is checked completely when it is loaded (keys, label rows, and every tensor shape of the
weights against the named architecture, built on the `meta` device so nothing is allocated), so a
daemon with a bad bundle stops at start-up with one line instead of failing on its first batch.
"""

from __future__ import annotations

import csv
import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torchvision

from bot.domain import Label
from bot.errors import BundleError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LABELS_HEADER = ["index", "taxon_id", "name", "rank", "genus_taxon_id", "genus", "family_taxon_id", "family"]
_TOML_KEYS = {"name", "version", "arch", "weights", "input_size", "resize_size", "mean", "std", "meta",
              "temperature", "calibration", "cutoffs"}
CUTOFF_RANKS = ("species", "genus", "family")


@dataclass(frozen=True)
class ModelBundle:
    path: Path
    name: str
    version: str
    arch: str
    weights: str
    input_size: int
    resize_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    labels: list[Label]
    temperature: float | None = None  # logits are divided by it before the softmax (`plantbot calibrate`)
    calibration: dict[str, Any] | None = None  # how the temperature and cutoffs were found (set, size, date)
    cutoffs: dict[str, float] | None = None  # per-rank cutoffs for a target precision (`cutoffs = "bundle"`)

    @property
    def weights_path(self) -> Path:
        return self.path / self.weights

    @property
    def num_classes(self) -> int:
        return len(self.labels)


def classification_archs() -> list[str]:
    """Builder names of torchvision's image classification models (resnet50, ...)."""
    return list(torchvision.models.list_models(module=torchvision.models))


def build_model(arch: str, num_classes: int) -> torch.nn.Module:
    """A randomly initialised torchvision classifier with `num_classes` outputs (never downloads)."""
    if arch not in classification_archs():
        raise BundleError(f"unknown arch {arch!r}: not a torchvision classification model")
    return torchvision.models.get_model(arch, weights=None, num_classes=num_classes)


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from .pt (weights_only, memory-mapped) or .safetensors; BundleError otherwise."""
    name = path.name
    if not path.is_file():
        raise BundleError(f"{path}: weights file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = _torch_load(path)
    except Exception as exc:  # torch/safetensors raise many kinds; all mean "unreadable"
        raise BundleError(f"{path}: cannot read weights: {_one_line(exc)}") from None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BundleError(f"{path}: {name} is not a state dict (a mapping of names to tensors)")
    return dict(state)


def _torch_load(path: Path) -> Any:
    """weights_only always; memory-mapped (cheap to check, shared pages) unless the file predates zip format."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc):
            raise
        return torch.load(path, map_location="cpu", weights_only=True)


def check_state_dict(state: Mapping[str, torch.Tensor], arch: str, num_classes: int, where: Path) -> None:
    """Every key and shape must match `arch` with `num_classes` outputs (strict loading, checked early)."""
    with torch.device("meta"):
        expected = build_model(arch, num_classes).state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} keys (e.g. {unexpected[0]})")
        raise BundleError(f"{where}: weights do not match arch {arch}: {', '.join(parts)}")
    out_key = _output_key(expected, num_classes)
    if out_key is not None and state[out_key].shape != expected[out_key].shape:
        raise BundleError(f"{where}: the final layer has {state[out_key].shape[0]} outputs "
                          f"but labels.csv has {num_classes} rows")
    for key, tensor in expected.items():
        if state[key].shape != tensor.shape:
            raise BundleError(f"{where}: weights do not match arch {arch}: {key} has shape "
                              f"{tuple(state[key].shape)}, expected {tuple(tensor.shape)}")


def _output_key(expected: Mapping[str, torch.Tensor], num_classes: int) -> str | None:
    """The state-dict key of the final layer's weight (the last 2-D tensor with one row per class)."""
    keys = [k for k, t in expected.items() if k.endswith("weight") and t.dim() >= 2 and t.shape[0] == num_classes]
    return keys[-1] if keys else None


def load_bundle(path: str | Path) -> ModelBundle:
    """Reads and validates a bundle folder; any problem is one BundleError line naming the file."""
    folder = Path(path)
    if not folder.is_dir():
        raise BundleError(f"{folder}: model bundle folder not found")
    meta = _read_toml(folder / "model.toml")
    labels = read_labels(folder / "labels.csv")
    bundle = ModelBundle(path=folder, labels=labels, **meta)
    state = read_weights(bundle.weights_path)
    check_state_dict(state, bundle.arch, len(labels), bundle.weights_path)
    return bundle


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{path}: not found (a bundle needs model.toml)") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: not valid TOML: {_one_line(exc)}") from None
    unknown = sorted(set(raw) - _TOML_KEYS)
    if unknown:
        raise BundleError(f"{path}: unknown key {unknown[0]!r}")
    out: dict[str, Any] = {}
    for key in ("name", "version"):
        value = raw.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and key == "version":
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise BundleError(f"{path}: {key} must be a non-empty string")
        out[key] = value
    out["arch"] = _typed(raw, "arch", str, "resnet50", path)
    if out["arch"] not in classification_archs():
        raise BundleError(f"{path}: arch {out['arch']!r} is not a torchvision classification model")
    out["weights"] = _typed(raw, "weights", str, "weights.pt", path)
    if Path(out["weights"]).name != out["weights"]:
        raise BundleError(f"{path}: weights must be a file name inside the bundle, got {out['weights']!r}")
    for key, default in (("input_size", 224), ("resize_size", 256)):
        out[key] = _typed(raw, key, int, default, path)
        if out[key] < 8:
            raise BundleError(f"{path}: {key} must be at least 8, got {out[key]}")
    if out["resize_size"] < out["input_size"]:
        raise BundleError(f"{path}: resize_size ({out['resize_size']}) is smaller than input_size")
    out["mean"] = _triple(raw, "mean", IMAGENET_MEAN, path, positive=False)
    out["std"] = _triple(raw, "std", IMAGENET_STD, path, positive=True)
    out.update(_calibration(raw, path))
    return out


def _calibration(raw: dict[str, Any], path: Path) -> dict[str, Any]:
    """The optional keys `plantbot calibrate` writes: temperature, [calibration], [cutoffs]."""
    out: dict[str, Any] = {}
    t = raw.get("temperature")
    if t is not None:
        if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t <= 0:
            raise BundleError(f"{path}: temperature must be a positive number, got {t!r}")
        out["temperature"] = float(t)
    info = raw.get("calibration")
    if info is not None:
        if not isinstance(info, dict):
            raise BundleError(f"{path}: [calibration] must be a table")
        out["calibration"] = dict(info)
    cutoffs = raw.get("cutoffs")
    if cutoffs is not None:
        if not isinstance(cutoffs, dict):
            raise BundleError(f"{path}: [cutoffs] must be a table")
        for rank, value in cutoffs.items():
            if rank not in CUTOFF_RANKS:
                raise BundleError(f"{path}: [cutoffs] {rank}: not one of {', '.join(CUTOFF_RANKS)}")
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
                raise BundleError(f"{path}: [cutoffs] {rank}: must be a number in (0, 1], got {value!r}")
        out["cutoffs"] = {rank: float(v) for rank, v in cutoffs.items()}
    return out


def _typed(raw: dict[str, Any], key: str, kind: type, default: Any, path: Path) -> Any:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise BundleError(f"{path}: {key} must be {'an integer' if kind is int else 'a string'}, got {value!r}")
    return value


def _triple(raw: dict[str, Any], key: str, default: tuple[float, ...], path: Path,
            positive: bool) -> tuple[float, float, float]:
    value = raw.get(key, list(default))
    ok = isinstance(value, list) and len(value) == 3 and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    if ok and positive:
        ok = all(v > 0 for v in value)
    if not ok:
        raise BundleError(f"{path}: {key} must be a list of 3 {'positive ' if positive else ''}numbers")
    return (float(value[0]), float(value[1]), float(value[2]))


def read_labels(path: Path) -> list[Label]:
    """labels.csv, one row per output in output order; errors name the line."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:  # -sig: spreadsheets add a BOM
            rows = list(csv.reader(fh))
    except FileNotFoundError:
        raise BundleError(f"{path}: not found (a bundle needs labels.csv)") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise BundleError(f"{path}: unreadable CSV: {_one_line(exc)}") from None
    if not rows or [c.strip() for c in rows[0]] != LABELS_HEADER:
        raise BundleError(f"{path}: header must be exactly {','.join(LABELS_HEADER)}")
    labels = [_label(row, n, path) for n, row in enumerate(rows[1:], start=2) if any(c.strip() for c in row)]
    if not labels:
        raise BundleError(f"{path}: no label rows")
    for expected, label in enumerate(labels):
        if label.index != expected:
            raise BundleError(f"{path}: index {label.index} where {expected} was expected "
                              "(rows must be in output order 0, 1, 2, ...)")
    return labels


def _label(row: list[str], line: int, path: Path) -> Label:
    where = f"{path} line {line}"
    if len(row) != len(LABELS_HEADER):
        raise BundleError(f"{where}: expected {len(LABELS_HEADER)} columns, got {len(row)}")
    cells = dict(zip(LABELS_HEADER, (c.strip() for c in row), strict=True))
    index = _int_cell(cells, "index", where)
    if index is None:
        raise BundleError(f"{where}: index is empty")
    if not cells["name"]:
        raise BundleError(f"{where}: name is empty")
    if not cells["rank"]:
        raise BundleError(f"{where}: rank is empty")
    return Label(index=index, taxon_id=_int_cell(cells, "taxon_id", where), name=cells["name"],
                 rank=cells["rank"], genus_taxon_id=_int_cell(cells, "genus_taxon_id", where),
                 genus=cells["genus"], family_taxon_id=_int_cell(cells, "family_taxon_id", where),
                 family=cells["family"])


def _int_cell(cells: dict[str, str], key: str, where: str) -> int | None:
    value = cells[key]
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise BundleError(f"{where}: {key} {value!r} is not an integer") from None


def save_bundle(path: str | Path, *, name: str, version: str, arch: str, model: torch.nn.Module,
                labels: list[Label], input_size: int = 224, resize_size: int = 256,
                mean: tuple[float, float, float] = IMAGENET_MEAN, std: tuple[float, float, float] = IMAGENET_STD,
                weights: str = "weights.pt") -> ModelBundle:
    """Writes a bundle folder (model.toml, the state dict, labels.csv) and loads it back to check it."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    if weights.endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file(state, str(folder / weights))
    else:
        torch.save(state, folder / weights)
    write_labels(folder / "labels.csv", labels)
    toml = "\n".join([
        f"name = {json.dumps(name)}",
        f"version = {json.dumps(str(version))}",
        f"arch = {json.dumps(arch)}",
        f"weights = {json.dumps(weights)}",
        f"input_size = {int(input_size)}",
        f"resize_size = {int(resize_size)}",
        f"mean = [{', '.join(repr(float(v)) for v in mean)}]",
        f"std = [{', '.join(repr(float(v)) for v in std)}]",
        "",
    ])
    (folder / "model.toml").write_text(toml, encoding="utf-8")
    return load_bundle(folder)


def write_labels(path: Path, labels: list[Label]) -> None:
    def cell(v: int | None) -> str:
        return "" if v is None else str(v)

    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(LABELS_HEADER)
        for i, lab in enumerate(labels):
            writer.writerow([i, cell(lab.taxon_id), lab.name, lab.rank, cell(lab.genus_taxon_id), lab.genus,
                             cell(lab.family_taxon_id), lab.family])


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
