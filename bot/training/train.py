"""`plantbot train`: the paper's recipe on a torchvision classifier, one GPU or many.

Adam with learning-rate decay, the tag-aware augmentation of `augment.py`, a class-weighted loss
(works unchanged under DistributedSampler, unlike a weighted sampler), AMP on CUDA, a checkpoint
after every epoch, and a model bundle at the end.  Under `torchrun` (RANK/WORLD_SIZE in the
environment) it uses PyTorch's own DistributedDataParallel: gloo on CPU, nccl on CUDA.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from bot.classifier import build_model, load_bundle, save_bundle
from bot.classifier.bundle import read_weights
from bot.domain import Label
from bot.errors import UsageError
from bot.training.augment import IMAGENET_MEAN, IMAGENET_STD, PhotoDataset, resize_size_for
from bot.training.checkpoint import load_checkpoint, load_init_weights, save_checkpoint
from bot.training.data import read_labels, training_photos
from bot.training.progress import EpochProgress

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass
class TrainOptions:
    """Everything `plantbot train` takes; the defaults are the production recipe."""

    manifest: Path
    labels: Path
    out: Path
    arch: str = "resnet50"
    init: Path | None = None  # a torchvision state dict (head dropped), or a bundle folder (fine-tuned whole)
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "cosine"  # or "step": x0.1 every third of the run
    input_size: int = 224
    augment: str = "paper"  # or "light": see augment.build_train_transform
    workers: int = 4
    resume: bool = False
    val: Path | None = None
    name: str = "plantbot"
    version: str = "1"
    device: str = "auto"
    seed: int = 0
    max_steps: int | None = None  # per epoch; small smoke runs
    progress: bool = True


@dataclass
class EpochStats:
    epoch: int
    loss: float
    accuracy: float
    images_per_s: float
    seconds: float
    val_top1: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class TrainResult:
    model: nn.Module
    labels: list[Label]
    history: list[dict[str, Any]] = field(default_factory=list)
    bundle: Path | None = None
    rank: int = 0
    world_size: int = 1


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def dist_from_env() -> Dist:
    """torchrun (and torch.multiprocessing launchers) describe the process group in the environment."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    return Dist(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def pick_device(name: str, ddp: Dist) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("--device cuda asked for, but CUDA is not available")
        if ddp.enabled or device.index is None:
            device = torch.device("cuda", ddp.local_rank if ddp.enabled else torch.cuda.current_device())
        torch.cuda.set_device(device)
    return device


@contextmanager
def process_group(ddp: Dist, device: torch.device) -> Iterator[None]:
    """Joins (and leaves) the default process group when launched by torchrun."""
    if not ddp.enabled or dist.is_initialized():
        yield
        return
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    try:
        yield
    finally:
        dist.destroy_process_group()


def class_weights(targets: list[int], n_classes: int) -> torch.Tensor:
    """Inverse class frequency, mean 1 over the classes present; absent classes weigh nothing."""
    counts = torch.bincount(torch.tensor(targets, dtype=torch.long), minlength=n_classes).float()
    present = counts > 0
    weights = torch.zeros(n_classes)
    weights[present] = counts[present].sum() / (present.sum() * counts[present])
    return weights


def make_scheduler(optimizer: torch.optim.Optimizer, schedule: str, epochs: int) -> Any:
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
    if schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, math.ceil(epochs / 3)), gamma=0.1)
    raise UsageError(f"unknown --schedule {schedule!r} (cosine or step)")


def _stretch_schedule(scheduler: Any, epochs: int) -> None:
    """A resumed run may ask for more epochs than the checkpoint's schedule spanned: the decay then
    follows the new total instead of the saved one (cosine would otherwise climb back up)."""
    if isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
        scheduler.T_max = max(1, epochs)
    elif isinstance(scheduler, torch.optim.lr_scheduler.StepLR):
        scheduler.step_size = max(1, math.ceil(epochs / 3))


def _loader(dataset: PhotoDataset, opts: TrainOptions, ddp: Dist, device: torch.device, train: bool) -> DataLoader:
    sampler: DistributedSampler[Any] | None = None
    if train and ddp.enabled:
        sampler = DistributedSampler(dataset, num_replicas=ddp.world_size, rank=ddp.rank, shuffle=True,
                                     seed=opts.seed)
    return DataLoader(
        dataset, batch_size=opts.batch_size, shuffle=train and sampler is None, sampler=sampler,
        num_workers=opts.workers, pin_memory=device.type == "cuda", drop_last=False,
        persistent_workers=opts.workers > 0,
        generator=torch.Generator().manual_seed(opts.seed + ddp.rank) if sampler is None and train else None,
    )


def _autocast(device: torch.device) -> Any:
    """bf16 autocast on CUDA (no loss scaling needed); full precision on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def _reduce(ddp: Dist, device: torch.device, loss_sum: float, correct: int, seen: int,
            seconds: float) -> tuple[float, int, int, float]:
    """The epoch's figures over every rank (sums; the slowest rank's time), so the one line printed
    and the history agree; each rank alone saw only its shard."""
    if not ddp.enabled:
        return loss_sum, correct, seen, seconds
    sums = torch.tensor([loss_sum, float(correct), float(seen)], dtype=torch.float64, device=device)
    slowest = torch.tensor([seconds], dtype=torch.float64, device=device)
    dist.all_reduce(sums, op=dist.ReduceOp.SUM)
    dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
    return float(sums[0]), int(sums[1]), int(sums[2]), float(slowest[0])


def _run_epoch(model: nn.Module, loader: DataLoader, criterion: nn.Module, optimizer: torch.optim.Optimizer,
               device: torch.device, epoch: int, opts: TrainOptions, bar: EpochProgress,
               ddp: Dist = Dist()) -> EpochStats:
    model.train()
    start, loss_sum, correct, seen = time.perf_counter(), 0.0, 0, 0
    total = len(loader) if opts.max_steps is None else min(len(loader), opts.max_steps)
    bar.start_epoch(epoch, opts.epochs, total)
    for step, (images, targets) in enumerate(loader):
        if step >= total:
            break
        images = images.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        with _autocast(device):
            logits = model(images)
            loss = criterion(logits.float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        n = int(targets.numel())
        loss_sum += float(loss.detach()) * n
        correct += int((logits.argmax(1) == targets).sum())
        seen += n
        elapsed = time.perf_counter() - start
        bar.advance(loss_sum / seen, correct / seen, seen / max(elapsed, 1e-9))
    loss_sum, correct, seen, seconds = _reduce(ddp, device, loss_sum, correct, seen, time.perf_counter() - start)
    return EpochStats(epoch, loss_sum / max(seen, 1), correct / max(seen, 1), seen / max(seconds, 1e-9), seconds)


@torch.inference_mode()
def validate(model: nn.Module, loader: DataLoader, device: torch.device) -> float | None:
    """Photo top-1 on the validation manifest (centre crop, as inference sees photos)."""
    model.eval()
    correct = seen = 0
    for images, targets in loader:
        with _autocast(device):
            logits = model(images.to(device))
        correct += int((logits.argmax(1).cpu() == targets).sum())
        seen += int(targets.numel())
    return correct / seen if seen else None


def _sync_buffers(model: nn.Module, ddp: Dist) -> None:
    """BatchNorm running statistics drift apart per rank; rank 0's become everyone's."""
    if ddp.enabled:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def _barrier(ddp: Dist) -> None:
    if ddp.enabled:
        dist.barrier()


def from_bundle(opts: TrainOptions) -> tuple[TrainOptions, Path | None]:
    """`--init BUNDLE`: fine-tune an existing bundle into a new version.  Its architecture, input size
    and labels (order and all) are kept, so the new version's outputs mean what the old one's did;
    returns the options to train with and the weights to start from (None: not a bundle)."""
    if opts.init is None or not opts.init.is_dir():
        return opts, None
    bundle = load_bundle(opts.init)
    if read_labels(opts.labels) != bundle.labels:
        raise UsageError(f"--labels {opts.labels} differs from the labels of --init {opts.init}; a fine-tuned "
                         "bundle keeps its labels (leave --labels out)")
    if opts.version == bundle.version and opts.name == bundle.name:
        raise UsageError(f"--version {opts.version} is the version of --init {opts.init}; give a new one")
    return replace(opts, arch=bundle.arch, input_size=bundle.input_size), bundle.weights_path


def next_version(version: str) -> str:
    """The default version of a fine-tuned bundle: "3" -> "4", "v1" -> "v1.1"."""
    return str(int(version) + 1) if version.isdigit() else f"{version}.1"


def train(opts: TrainOptions) -> TrainResult:
    """Trains, checkpoints every epoch, and (on rank 0) writes the model bundle to `opts.out`."""
    opts, start_weights = from_bundle(opts)
    ddp = dist_from_env()
    device = pick_device(opts.device, ddp)
    labels = read_labels(opts.labels)
    paths, targets, tags = training_photos(opts.manifest, labels)
    val_data = training_photos(opts.val, labels) if opts.val else None
    with process_group(ddp, device):
        return _train(opts, ddp, device, labels, (paths, targets, tags), val_data, start_weights)


def _train(opts: TrainOptions, ddp: Dist, device: torch.device, labels: list[Label],
           data: tuple[list[Path], list[int], list[str]], val_data: tuple[list[Path], list[int], list[str]] | None,
           start_weights: Path | None = None) -> TrainResult:
    torch.manual_seed(opts.seed)
    model = build_model(opts.arch, len(labels))
    if start_weights is not None:
        model.load_state_dict(read_weights(start_weights))  # strict: every tensor, the head included
    elif opts.init:
        load_init_weights(model, opts.init)
    model.to(device)
    torch.manual_seed(opts.seed + ddp.rank)  # same initial weights everywhere, different crops per rank
    optimizer = torch.optim.Adam(model.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)
    scheduler = make_scheduler(optimizer, opts.schedule, opts.epochs)
    history: list[dict[str, Any]] = []
    start_epoch = 1
    ckpt_path = opts.out / CHECKPOINT_NAME
    if opts.resume:
        state = load_checkpoint(ckpt_path, model, optimizer, scheduler, opts.arch, [lab.name for lab in labels])
        if state is not None:
            start_epoch, history = state["epoch"] + 1, list(state["history"])
            _stretch_schedule(scheduler, opts.epochs)
            log.info("resuming from %s after epoch %d", ckpt_path, state["epoch"])
        else:
            log.warning("--resume: no checkpoint at %s; training from epoch 1", ckpt_path)
    net: nn.Module = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
        if ddp.enabled else model
    paths, targets, tags = data
    photos = PhotoDataset(paths, targets, tags, opts.input_size, train=True, augment=opts.augment)
    loader = _loader(photos, opts, ddp, device, True)
    val_loader = _loader(PhotoDataset(*val_data, opts.input_size, train=False), opts, Dist(), device, False) \
        if val_data and ddp.main else None
    criterion = nn.CrossEntropyLoss(weight=class_weights(targets, len(labels)).to(device))
    with EpochProgress(enabled=opts.progress and ddp.main, lines=ddp.main) as bar:
        for epoch in range(start_epoch, opts.epochs + 1):
            if isinstance(loader.sampler, DistributedSampler):
                loader.sampler.set_epoch(epoch)
            stats = _run_epoch(net, loader, criterion, optimizer, device, epoch, opts, bar, ddp)
            scheduler.step()
            if val_loader is not None:
                stats.val_top1 = validate(model, val_loader, device)
            history.append(stats.as_dict())
            bar.end_epoch(stats.as_dict())
            if ddp.main:
                save_checkpoint(ckpt_path, model, optimizer, scheduler, epoch, opts.arch,
                                [lab.name for lab in labels], history)
            _barrier(ddp)
    _sync_buffers(model, ddp)
    result = TrainResult(model=model, labels=labels, history=history, rank=ddp.rank, world_size=ddp.world_size)
    if ddp.main:
        result.bundle = _write_bundle(model, labels, opts)
    _barrier(ddp)
    return result


def _write_bundle(model: nn.Module, labels: list[Label], opts: TrainOptions) -> Path:
    cpu_model = model.to("cpu").eval()
    save_bundle(
        opts.out, name=opts.name, version=opts.version, arch=opts.arch, model=cpu_model, labels=labels,
        input_size=opts.input_size, resize_size=resize_size_for(opts.input_size),
        mean=IMAGENET_MEAN, std=IMAGENET_STD,
    )
    log.info("model bundle written to %s", opts.out)
    return opts.out
