"""Which floating-point precision the forward pass runs in: `[model] dtype = "auto"` decided here.

bfloat16 autocast roughly doubles ResNet50 throughput on a CPU with native bf16 instructions
(AVX-512 BF16 or AMX) at a largest probability difference of about 0.005, but on a CPU without them
oneDNN emulates bf16 and it is *slower* than float32. So "auto" asks the CPU's flags, never the
model name or torch's build: bfloat16 where the silicon has it, float32 elsewhere. On CUDA "auto"
is bfloat16 where the GPU supports it (Ampere and later), else float16.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

log = logging.getLogger(__name__)

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
CHOICES = ("auto", *DTYPES)
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
CPUINFO = Path("/proc/cpuinfo")


def read_cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """The CPU feature flags the kernel reports (Linux); empty where there is no /proc/cpuinfo."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86 / ARM
            return frozenset(value.split())
    return frozenset()


def has_native_bf16(flags: Iterable[str] | None = None) -> bool:
    """True when the CPU executes bf16 dot products natively (AVX-512 BF16 or AMX-BF16)."""
    present = read_cpu_flags() if flags is None else frozenset(flags)
    return bool(present & NATIVE_BF16_FLAGS)


def resolve_dtype(requested: str, device: torch.device, cpu_flags: Iterable[str] | None = None,
                  cuda_bf16: Callable[[], bool] | None = None) -> str:
    """The dtype name to run in: `requested` unless it is "auto" (see the module docstring).

    `cpu_flags` and `cuda_bf16` replace what the machine reports, so the rule can be tested anywhere.
    """
    if requested not in CHOICES:
        raise ValueError(f"dtype {requested!r} is not one of {', '.join(CHOICES)}")
    if requested != "auto":
        return requested
    if device.type == "cuda":
        supported = cuda_bf16 if cuda_bf16 is not None else torch.cuda.is_bf16_supported
        return "bfloat16" if supported() else "float16"
    if device.type == "cpu" and has_native_bf16(cpu_flags):
        return "bfloat16"
    return "float32"
