"""`plantbot bench`: how close the classify stage gets to the machine's limit, on the same photos.

Figures (issue 6): *bare* (the forward pass on preprocessed tensors already in memory, at the best
batch size found: the ceiling), *pipeline* (JPEG bytes to per-observation averaged probabilities
through `Classifier.predict_observations`) and its ratio to bare, *seed-style* (one photo at a
time with its ten crops as the batch, as the original paper's code did), ten-crop pipeline crops/s,
peak RSS, and on CUDA the device name and GPU memory. Bare and pipeline are measured back to back
`repeats` times: the rates are the best of the rounds, the ratio is the median of the rounds' ratios,
so that a burst of load from other processes does not decide it. Weights are random (nothing is
downloaded): speed does not depend on them.
"""

from __future__ import annotations

import io
import os
import platform
import random
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from bot.classifier import Classifier, ModelBundle, build_model, cpu_count, save_bundle
from bot.domain import Label

Progress = Callable[[str], None]


@dataclass
class BenchOptions:
    arch: str = "resnet50"
    input_size: int = 224
    batch_size: int | None = None  # None: the best of a few sizes, found by the bare measurement
    threads: int = 0
    workers: int = 0
    dtype: str = "float32"
    device: str = "auto"
    photos: int = 64
    tencrop: bool = True  # also measure ten-crop (pipeline and seed-style)
    channels_last: bool | None = None
    decode: str = "pillow"  # or "torchvision": decode_jpeg on the device (nvjpeg on CUDA)
    repeats: int = 3
    num_classes: int = 1000
    quick: bool = False

    @classmethod
    def quick_mode(cls, **overrides: Any) -> BenchOptions:
        """A tiny run for CI: resnet18 at 64 px on 16 photos, seconds on a laptop CPU."""
        base: dict[str, Any] = {"arch": "resnet18", "input_size": 64, "photos": 16, "repeats": 2,
                                "num_classes": 10, "batch_size": None, "quick": True}
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)


def bench_photos(n: int, size: int = 500, seed: int = 0) -> list[bytes]:
    """The synthetic world's plant photos (medium size, ~500 px JPEGs)."""
    try:
        from bot.sim.world import render_photos
    except ImportError:  # the world generator is optional for the bench
        return _fallback_photos(n, size, seed)
    return render_photos(n, size=size, seed=seed)


def _fallback_photos(n: int, size: int, seed: int) -> list[bytes]:
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    out = []
    for _ in range(n):
        img = Image.new("RGB", (size, size * 3 // 4), tuple(rng.randrange(256) for _ in range(3)))
        draw = ImageDraw.Draw(img)
        for _ in range(40):
            x, y = rng.randrange(size), rng.randrange(size * 3 // 4)
            r = rng.randrange(5, size // 6)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rng.randrange(256) for _ in range(3)))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=85)
        out.append(buf.getvalue())
    return out


def observations_of(photos: Sequence[bytes]) -> dict[int, list[bytes]]:
    """Groups photos into observations of 1-4 photos (a fixed pattern), as the daemon sees them."""
    groups: dict[int, list[bytes]] = {}
    i, obs = 0, 1
    while i < len(photos):
        k = 1 + (obs * 7) % 4
        groups[obs] = list(photos[i:i + k])
        i += k
        obs += 1
    return groups


def _random_bundle(folder: Path, opts: BenchOptions) -> ModelBundle:
    torch.manual_seed(0)
    labels = [Label(index=i, taxon_id=100000 + i, name=f"Species {i}") for i in range(opts.num_classes)]
    model = build_model(opts.arch, opts.num_classes)
    resize = round(opts.input_size * 256 / 224)
    return save_bundle(folder, name="bench", version="random", arch=opts.arch, model=model, labels=labels,
                       input_size=opts.input_size, resize_size=resize)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _bare_rate(clf: Classifier, x: torch.Tensor, batch: int, min_images: int) -> tuple[float, float]:
    """(images/s, process CPU ms per image) of the forward pass alone on tensors already on the device."""
    if x.shape[0] < batch:  # fewer photos than the batch: repeat them
        x = x.repeat(-(-batch // x.shape[0]), 1, 1, 1)
    x = x.to(clf.device)
    if clf.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    batches = [x[i:i + batch] for i in range(0, x.shape[0] - batch + 1, batch)]
    with torch.inference_mode(), clf.autocast():
        clf.model(batches[0])  # warm-up (allocations, cudnn autotuning)
        _sync(clf.device)
        done, start, cpu, k = 0, time.perf_counter(), time.process_time(), 0
        while done < min_images:
            out = clf.model(batches[k % len(batches)])
            torch.softmax(out.float(), dim=1)
            done += batches[k % len(batches)].shape[0]
            k += 1
        _sync(clf.device)
    return done / (time.perf_counter() - start), 1000 * (time.process_time() - cpu) / done


def _candidates(clf: Classifier, opts: BenchOptions) -> list[int]:
    if opts.batch_size:
        return [opts.batch_size]
    if opts.quick:
        return [4, 8]
    if clf.device.type == "cuda":
        return [64, 128, 256, 512]
    return [8, 16, 32]


def _pipeline_rate(clf: Classifier, groups: dict[int, list[bytes]]) -> tuple[float, float]:
    """(images/s, process CPU ms per image) from JPEG bytes to averaged observation probabilities."""
    n = sum(len(v) for v in groups.values())
    start, cpu = time.perf_counter(), time.process_time()
    preds = clf.predict_observations(groups)
    _sync(clf.device)
    elapsed = time.perf_counter() - start
    if any(p is None for p in preds.values()):
        raise RuntimeError(f"bench photos failed to decode: {clf.last_errors}")
    return n / elapsed, 1000 * (time.process_time() - cpu) / n


def _seed_style_rate(clf10: Classifier, photos: Sequence[bytes]) -> float:
    """One photo at a time, its ten crops as the batch; photos/s."""
    start = time.perf_counter()
    for data in photos:
        x = clf10.preprocess(clf10.decode(data))
        clf10.forward_probs(x).mean(axis=0)
    _sync(clf10.device)
    return len(photos) / (time.perf_counter() - start)


def run_bench(opts: BenchOptions, progress: Progress | None = None,
              photo_bytes: Sequence[bytes] | None = None) -> dict[str, Any]:
    """Runs every measurement and returns the figures (see the module docstring).

    `photo_bytes` replaces the rendered photos (cycled to `opts.photos`), e.g. to reuse them across runs.
    """
    say = progress or (lambda _msg: None)
    if photo_bytes:
        photos = [photo_bytes[i % len(photo_bytes)] for i in range(opts.photos)]
    else:
        say(f"rendering {opts.photos} photos")
        photos = bench_photos(opts.photos)
    groups = observations_of(photos)
    with tempfile.TemporaryDirectory(prefix="plantbot-bench-") as tmp:
        say(f"building a random {opts.arch} bundle")
        bundle = _random_bundle(Path(tmp) / "bundle", opts)
        clf = Classifier(bundle, device=opts.device, batch_size=opts.batch_size or 64, threads=opts.threads,
                         workers=opts.workers, dtype=opts.dtype, channels_last=opts.channels_last,
                         decode=opts.decode)
        if clf.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(clf.device)
        # Bare cycles through these batches; 1024 distinct inputs are plenty for any batch size tried.
        x = torch.stack([clf.preprocess(clf.decode(p)) for p in photos[:1024]])
        say("bare forward: finding the best batch size")
        by_batch = {b: _bare_rate(clf, x, b, max(2 * b, len(photos) // 2))[0] for b in _candidates(clf, opts)}
        best = max(by_batch, key=lambda b: by_batch[b])
        clf.batch_size = best
        _pipeline_rate(clf, dict(list(groups.items())[:2]))  # warm-up: thread pool, caches
        bare, pipeline, ratios = (0.0, 0.0), (0.0, 0.0), []
        for r in range(max(1, opts.repeats)):
            say(f"bare and pipeline at batch {best} ({r + 1}/{max(1, opts.repeats)})")
            this_bare = _bare_rate(clf, x, best, max(len(photos), 2 * best))
            this_pipeline = _pipeline_rate(clf, groups)
            ratios.append(this_pipeline[0] / this_bare[0])  # back to back: the same load on both
            bare, pipeline = max(bare, this_bare), max(pipeline, this_pipeline)
        result: dict[str, Any] = {
            "bare_images_per_s": bare[0],
            "bare_by_batch": {str(b): v for b, v in by_batch.items()},
            "pipeline_images_per_s": pipeline[0],
            "pipeline_ratio": statistics.median(ratios),
            "pipeline_ratio_rounds": ratios,
            "bare_cpu_ms_per_image": bare[1],
            "pipeline_cpu_ms_per_image": pipeline[1],
            "batch_size": clf.batch_size,
        }
        if opts.tencrop:
            result.update(_tencrop_figures(bundle, opts, photos, best))
    result.update(_context(clf, opts, bundle))
    return result


def _tencrop_figures(bundle: ModelBundle, opts: BenchOptions, photos: Sequence[bytes],
                     best: int) -> dict[str, Any]:
    few = list(photos[: max(4, len(photos) // 4)])
    clf10 = Classifier(bundle, device=opts.device, batch_size=max(10, best - best % 10), threads=opts.threads,
                       workers=opts.workers, dtype=opts.dtype, tencrop=True, channels_last=opts.channels_last,
                       decode=opts.decode)
    _seed_style_rate(clf10, few[:1])  # warm-up
    seed = _seed_style_rate(clf10, few)
    tencrop, _ = _pipeline_rate(clf10, observations_of(few))
    return {"seed_style_images_per_s": seed, "seed_style_crops_per_s": 10 * seed,
            "tencrop_images_per_s": tencrop, "tencrop_crops_per_s": 10 * tencrop, "tencrop_photos": len(few)}


def _context(clf: Classifier, opts: BenchOptions, bundle: ModelBundle) -> dict[str, Any]:
    """Where and how it ran: the figures mean little without these."""
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    info: dict[str, Any] = {
        "peak_rss_mb": rss_kb / 1024,
        "device": str(clf.device),
        "device_name": platform.processor() or platform.machine(),
        "dtype": str(clf.dtype).removeprefix("torch."),
        "arch": bundle.arch,
        "input_size": bundle.input_size,
        "resize_size": bundle.resize_size,
        "photos": opts.photos,
        "threads": torch.get_num_threads(),
        "workers": clf.workers,
        "channels_last": clf.channels_last,
        "decode": clf.decode_with,
        "cpu_count": cpu_count(),
        "load_average": list(os.getloadavg()),
        "torch": torch.__version__,
        "options": asdict(opts),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }
    if clf.device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(clf.device)
        info["gpu_memory_peak_mb"] = torch.cuda.max_memory_allocated(clf.device) / 2**20
        info["gpu_memory_total_mb"] = torch.cuda.get_device_properties(clf.device).total_memory / 2**20
    return info


FIGURES = ("bare_images_per_s", "pipeline_images_per_s", "pipeline_ratio", "seed_style_images_per_s",
           "seed_style_crops_per_s", "tencrop_crops_per_s", "peak_rss_mb")
