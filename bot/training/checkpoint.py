"""Per-epoch training checkpoints and `--init` weights: plain state dicts, loaded with weights_only=True."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bot.errors import UsageError

log = logging.getLogger(__name__)


def save_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                    epoch: int, arch: str, label_names: list[str], history: list[dict[str, Any]]) -> None:
    """Written to a temporary file first, so an interrupted save never leaves a broken checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "epoch": epoch, "arch": arch, "labels": label_names, "history": history,
    }, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                    arch: str, label_names: list[str]) -> dict[str, Any] | None:
    """Restores model, optimizer and scheduler in place; None (fresh start) when there is no checkpoint."""
    if not path.exists():
        log.warning("--resume: no checkpoint at %s, starting from epoch 1", path)
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise UsageError(f"cannot read checkpoint {path}: {exc}") from None
    if state.get("arch") != arch:
        raise UsageError(f"checkpoint {path} is for arch {state.get('arch')!r}, not {arch!r}")
    if list(state.get("labels", [])) != label_names:
        raise UsageError(f"checkpoint {path} was trained on other labels than the given labels.csv")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return state


def _unwrap_state(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in ("model", "state_dict", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict):
        raise UsageError(f"--init {path}: not a state dict")
    return {k.removeprefix("module."): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def load_init_weights(model: nn.Module, path: Path) -> list[str]:
    """Loads a local torchvision checkpoint (e.g. ImageNet) into `model`, dropping its final layer.

    Every other tensor must be there with the right shape, so a checkpoint of another architecture
    is refused instead of half-loaded.  Returns the names of the tensors left at their fresh values.
    """
    try:
        source = _unwrap_state(torch.load(path, map_location="cpu", weights_only=True), path)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"cannot read --init {path}: {exc}") from None
    target = model.state_dict()
    head = final_layer_keys(model)
    missing = [k for k in target if k not in source]
    if missing:
        raise UsageError(f"--init {path} does not fit this architecture (missing {missing[0]!r} and "
                         f"{len(missing) - 1} more)")
    wrong = [k for k, v in target.items() if k not in head and source[k].shape != v.shape]
    if wrong:
        raise UsageError(f"--init {path} does not fit this architecture ({wrong[0]!r} differs in shape)")
    model.load_state_dict({k: source[k] for k in target if k not in head}, strict=False)
    log.info("initialised from %s (final layer %s left fresh)", path, ", ".join(head))
    return head


def final_layer_keys(model: nn.Module) -> list[str]:
    """The state-dict keys of the last Linear layer: the classifier head sized to the labels."""
    name = ""
    for module_name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            name = module_name
    if not name:
        return []
    return [k for k in model.state_dict() if k.rsplit(".", 1)[0] == name]
