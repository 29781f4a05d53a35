"""A model bundle whose answer for each test photo is known in advance.

A randomly initialised (seeded) torchvision network gives each prototype photo a penultimate
feature vector f_k, computed through the Classifier's own decoding and preprocessing. The final
Linear layer W (bias 0) is then solved by least squares so that W f_k = log(target_k); hence
softmax(model(prototype_k)) == target_k. It needs distinct prototypes, no more of them than the
feature dimension (512 for resnet18).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bot.classifier import ModelBundle, build_model, decode_photo, make_transform, save_bundle
from bot.classifier.bundle import IMAGENET_MEAN, IMAGENET_STD
from bot.domain import Label
from bot.sim.model import SimTaxon, World


def final_linear(model: torch.nn.Module) -> tuple[torch.nn.Module, str, torch.nn.Linear]:
    """(parent module, attribute name, layer) of the network's last Linear layer."""
    name = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)][-1]
    parent_name, _, attr = name.rpartition(".")
    layer = model.get_submodule(name)
    assert isinstance(layer, torch.nn.Linear)
    return model.get_submodule(parent_name), attr, layer


def _set_child(parent: torch.nn.Module, attr: str, module: torch.nn.Module) -> None:
    setattr(parent, attr, module)  # also replaces numbered children of nn.Sequential


def build_designed_bundle(out_dir: Path, labels: list[Label], prototypes: Sequence[bytes], targets: np.ndarray,
                          arch: str = "resnet18", input_size: int = 64, resize_size: int = 64,
                          name: str = "designed", version: str = "1", seed: int = 0) -> ModelBundle:
    """Saves a bundle at `out_dir` with softmax(model(prototypes[k])) == targets[k] (to ~1e-4)."""
    targets = np.asarray(targets, dtype=np.float64)
    if targets.shape != (len(prototypes), len(labels)):
        raise ValueError(f"targets must be [{len(prototypes)}, {len(labels)}], got {targets.shape}")
    torch.manual_seed(seed)
    model = build_model(arch, len(labels)).eval()
    parent, attr, layer = final_linear(model)
    if layer.in_features < len(prototypes):
        raise ValueError(f"{arch} has {layer.in_features} features, fewer than {len(prototypes)} prototypes")
    _set_child(parent, attr, torch.nn.Identity())
    features = _features(model, prototypes, arch, input_size, resize_size, labels)
    logits = np.log(np.clip(targets, 1e-6, None))
    # Minimum-norm least squares in float64: F W^T = log(T), exact when F has full row rank.
    w_t, *_ = np.linalg.lstsq(features, logits, rcond=None)
    head = torch.nn.Linear(layer.in_features, len(labels))
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(w_t.T.astype(np.float32)))
        head.bias.zero_()
    _set_child(parent, attr, head)
    return save_bundle(out_dir, name=name, version=version, arch=arch, model=model, labels=labels,
                       input_size=input_size, resize_size=resize_size)


def _features(model: torch.nn.Module, prototypes: Sequence[bytes], arch: str, input_size: int,
              resize_size: int, labels: list[Label]) -> np.ndarray:
    """Penultimate features through exactly the Classifier's decode and preprocessing."""
    probe = ModelBundle(path=Path("."), name="probe", version="0", arch=arch, weights="weights.pt",
                        input_size=input_size, resize_size=resize_size, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                        labels=labels)
    transform = make_transform(probe)
    x = torch.stack([transform(decode_photo(data, probe)) for data in prototypes])
    with torch.inference_mode():
        return model(x).double().numpy()


def make_prototypes(n: int, size: tuple[int, int] = (96, 72), seed: int = 0, quality: int = 90) -> list[bytes]:
    """`n` distinct JPEGs: smooth random colour patterns (a seeded 8x6 grid upscaled)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        grid = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
        img = Image.fromarray(grid, "RGB").resize(size, Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=quality)
        out.append(buf.getvalue())
    return out


def plant_world(species: dict[int, tuple[str, int]], genera: dict[int, tuple[str, int]],
                families: dict[int, str]) -> World:
    """A simulator world holding Plantae and the given families, genera and species (no observations)."""
    world = World()
    world.taxa[47126] = SimTaxon(47126, "Plantae", "kingdom", None, "Plantae")
    for fid, fname in families.items():
        world.taxa[fid] = SimTaxon(fid, fname, "family", 47126, "Plantae")
    for gid, (gname, fid) in genera.items():
        world.taxa[gid] = SimTaxon(gid, gname, "genus", fid, "Plantae")
    for sid, (sname, gid) in species.items():
        world.taxa[sid] = SimTaxon(sid, sname, "species", gid, "Plantae")
    return world


def taxonomy_labels(species: dict[int, tuple[str, int]], genera: dict[int, tuple[str, int]],
                    families: dict[int, str]) -> list[Label]:
    """Labels in `species` order, from {species id: (name, genus id)}, {genus id: (name, family id)}
    and {family id: name}."""
    out = []
    for i, (sid, (name, gid)) in enumerate(species.items()):
        gname, fid = genera[gid]
        out.append(Label(i, sid, name, "species", gid, gname, fid, families[fid]))
    return out


def spread_target(weights: dict[int, float], species_ids: Sequence[int]) -> np.ndarray:
    """A probability vector: the given species weights, the rest of the mass spread evenly over the others."""
    v = np.array([weights.get(sid, 0.0) for sid in species_ids])
    free = [i for i in range(len(v)) if v[i] == 0]
    if free:
        v[free] = (1.0 - v.sum()) / len(free)
    return v
