"""Training and evaluation transforms, and the photo dataset that applies them.

The paper's augmentation: random resized crop, mirror, small shear/translation and colour jitter for
every photo, plus rotations and upside-down flips for close-ups only.  The jitter leaves hue alone:
flower colour is often what tells two species of a genus apart.  A photo tagged `habit` shows
the whole plant standing on the ground, so turning it upside down would teach the model a view that
never occurs; those photos get a second pipeline without rotation or vertical flip.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2

from bot.classifier import IMAGENET_MEAN, IMAGENET_STD
from bot.imaging import decode_image

HABIT = "habit"


def is_habit(tag: str | None) -> bool:
    return (tag or "").strip().lower() == HABIT


def resize_size_for(input_size: int) -> int:
    """The classic 256-for-224 ratio, so evaluation crops keep the border the model was trained on."""
    return int(round(input_size * 256 / 224))


def _normalize(mean: Sequence[float], std: Sequence[float]) -> list[v2.Transform]:
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(mean), std=list(std))]


AUGMENTATIONS = ("paper", "light")


def build_train_transform(
    input_size: int,
    tag: str | None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    augment: str = "paper",
) -> v2.Compose:
    """The augmentation for one photo; `habit` photos never get a rotation or vertical flip.

    The crop comes first so that the black borders of translation/rotation stay at the output's edges.
    `light` (a mild crop and the mirror only) is for a short run on rendered photos that already vary
    pose, scale, colour and background, like the demo's synthetic world: the paper's full set makes a
    few epochs on a few hundred photos underfit (the demo's top-1 per observation was 0.15 with it).
    """
    if augment not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {augment!r} (expected one of {', '.join(AUGMENTATIONS)})")
    if augment == "light":
        return v2.Compose([v2.ToImage(), v2.RandomResizedCrop(input_size, scale=(0.7, 1.0), antialias=True),
                           v2.RandomHorizontalFlip(p=0.5), *_normalize(mean, std)])
    steps: list[v2.Transform] = [
        v2.ToImage(),
        v2.RandomResizedCrop(input_size, scale=(0.35, 1.0), antialias=True),
        v2.RandomHorizontalFlip(p=0.5),
        v2.RandomAffine(degrees=0.0, translate=(0.08, 0.08), shear=(-8.0, 8.0)),
    ]
    if not is_habit(tag):
        steps += [v2.RandomVerticalFlip(p=0.5), v2.RandomRotation(degrees=(-180.0, 180.0))]
    steps += [v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.2)]
    return v2.Compose(steps + _normalize(mean, std))


def build_eval_transform(
    input_size: int,
    resize_size: int | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> v2.Compose:
    """What inference does: shorter side to `resize_size`, centre crop, normalise."""
    return v2.Compose([
        v2.ToImage(),
        v2.Resize(resize_size or resize_size_for(input_size), antialias=True),
        v2.CenterCrop(input_size),
        *_normalize(mean, std),
    ])


def load_rgb(path: Path) -> Image.Image:
    """Decoded with the bot's own safe decoder, so training sees photos exactly as inference does."""
    return decode_image(path.read_bytes())


class PhotoDataset(Dataset[tuple[torch.Tensor, int]]):
    """(image tensor, label index) for each photo; the transform is chosen per photo by its tag."""

    def __init__(
        self,
        paths: Sequence[Path],
        targets: Sequence[int],
        tags: Sequence[str],
        input_size: int,
        train: bool,
        augment: str = "paper",
    ) -> None:
        if not len(paths) == len(targets) == len(tags):
            raise ValueError("paths, targets and tags differ in length")
        self.paths = list(paths)
        self.targets = list(targets)
        self.tags = list(tags)
        if train:
            self._habit = build_train_transform(input_size, HABIT, augment=augment)
            self._other = build_train_transform(input_size, None, augment=augment)
        else:
            self._habit = self._other = build_eval_transform(input_size)

    def __len__(self) -> int:
        return len(self.paths)

    def transform_for(self, index: int) -> v2.Compose:
        return self._habit if is_habit(self.tags[index]) else self._other

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = load_rgb(self.paths[index])
        return self.transform_for(index)(image), self.targets[index]
