"""`plantbot bench`: how close the classify stage gets to the machine's limit, on the same photos.

Figures: *bare* (the forward pass on preprocessed tensors already in memory, at the best batch size
found: the ceiling) and its GFLOP/s, *pipeline* (JPEG bytes to per-observation averaged
probabilities through `Classifier.predict_observations`) and its ratio to bare, both for float32 and
for the chosen dtype (`auto`: bfloat16 on a CPU with native bf16) side by side, with the precision
guard of `bench_compare` (largest probability difference, decisions that differ at the cutoff);
*seed-style* (one photo at a time with its ten crops as the batch, as the original paper's code
did), ten-crop pipeline crops/s, peak RSS, and on CUDA the device name and GPU memory.

Noise: other processes share the cores, so every figure comes from short interleaved chunks: each
round runs a bare chunk and a pipeline chunk for each dtype (alternating which dtype goes first), so
that a burst of load hits all of them. Rates are the median of the rounds, ratios the median of the
rounds' ratios, and the spread (lowest, highest) is printed with them. Weights are random unless
`bundle` names a real bundle (nothing is downloaded): speed does not depend on them.
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

from bot.bench_compare import compare_predictions
from bot.classifier import Classifier, ModelBundle, build_model, cpu_count, load_bundle, read_cpu_flags, save_bundle
from bot.config import DecisionConfig
from bot.domain import Label, ObservationPrediction

Progress = Callable[[str], None]
SIMD_FLAGS = frozenset({"avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16",
                        "amx_int8", "amx_tile", "asimd", "sve", "bf16"})  # what decides fp32/bf16 speed


@dataclass
class BenchOptions:
    arch: str = "resnet50"
    input_size: int = 224
    batch_size: int | None = None  # None: the best of a few sizes, found by the bare measurement
    threads: int = 0
    workers: int = 0
    dtype: str = "auto"  # measured side by side with float32
    device: str = "auto"
    photos: int = 64
    tencrop: bool = True  # also measure ten-crop (pipeline and seed-style)
    channels_last: bool | None = None
    decode: str = "pillow"  # or "torchvision": decode_jpeg on the device (nvjpeg on CUDA)
    repeats: int = 4  # interleaved rounds; each round's pipeline chunk is 1/repeats of the photos
    bundle: str | None = None  # a real bundle folder instead of a random one (meaningful decisions)
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


def flops_per_image(bundle: ModelBundle) -> float:
    """Multiply-adds of one forward pass at the bundle's input size (the convention of ResNet50's 4.1 G).

    Counted by torch's FlopCounterMode on the meta device (no compute); it counts a multiply-add as
    2 FLOPs, halved here so the figure matches the usual per-model numbers.
    """
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = build_model(bundle.arch, bundle.num_classes).eval()
        x = torch.empty(1, 3, bundle.input_size, bundle.input_size)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(x)
    return counter.get_total_flops() / 2


class _Bare:
    """The forward pass alone on tensors already on the device, cycled in batches of `batch`."""

    def __init__(self, clf: Classifier, x: torch.Tensor, batch: int) -> None:
        if x.shape[0] < batch:  # fewer photos than the batch: repeat them
            x = x.repeat(-(-batch // x.shape[0]), 1, 1, 1)
        x = x.to(clf.device)
        if clf.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        self.clf, self.batch, self.k = clf, batch, 0
        self.batches = [x[i:i + batch] for i in range(0, x.shape[0] - batch + 1, batch)]
        self.run(batch)  # warm-up (allocations, oneDNN primitive caches, cudnn autotuning)

    def run(self, min_images: int) -> tuple[float, float]:
        """(images/s, process CPU ms per image) over at least `min_images` images."""
        clf = self.clf
        with torch.inference_mode(), clf.autocast():
            _sync(clf.device)
            done, start, cpu = 0, time.perf_counter(), time.process_time()
            while done < min_images:
                batch = self.batches[self.k % len(self.batches)]
                torch.softmax(clf.model(batch).float(), dim=1)
                done += batch.shape[0]
                self.k += 1
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


def _pipeline_rate(clf: Classifier, groups: dict[int, list[bytes]]
                   ) -> tuple[float, float, dict[int, ObservationPrediction | None]]:
    """(images/s, process CPU ms per image, predictions) from JPEG bytes to averaged probabilities."""
    n = sum(len(v) for v in groups.values())
    start, cpu = time.perf_counter(), time.process_time()
    preds = clf.predict_observations(groups)
    _sync(clf.device)
    elapsed = time.perf_counter() - start
    if any(p is None for p in preds.values()):
        raise RuntimeError(f"bench photos failed to decode: {clf.last_errors}")
    return n / elapsed, 1000 * (time.process_time() - cpu) / n, preds


def _seed_style_rate(clf10: Classifier, photos: Sequence[bytes]) -> float:
    """One photo at a time, its ten crops as the batch; photos/s."""
    start = time.perf_counter()
    for data in photos:
        x = clf10.preprocess(clf10.decode(data))
        clf10.forward_probs(x).mean(axis=0)
    _sync(clf10.device)
    return len(photos) / (time.perf_counter() - start)


def _classifier(bundle: ModelBundle, opts: BenchOptions, dtype: str, batch: int | None = None,
                tencrop: bool = False) -> Classifier:
    return Classifier(bundle, device=opts.device, batch_size=batch or opts.batch_size or 64, threads=opts.threads,
                      workers=opts.workers, dtype=dtype, tencrop=tencrop, channels_last=opts.channels_last,
                      decode=opts.decode)


def _spread(values: Sequence[float]) -> dict[str, Any]:
    return {"median": statistics.median(values), "low": min(values), "high": max(values), "rounds": list(values)}


def _interleaved(clfs: dict[str, Classifier], x: torch.Tensor, groups: dict[int, list[bytes]], batch: int,
                 repeats: int, say: Progress) -> dict[str, dict[str, Any]]:
    """Per dtype: bare and pipeline rates round by round, in short chunks interleaved across dtypes."""
    items = list(groups.items())
    parts = [dict(items[r::repeats]) for r in range(repeats) if items[r::repeats]]
    bare = {name: _Bare(clf, x, batch) for name, clf in clfs.items()}
    for clf in clfs.values():
        _pipeline_rate(clf, dict(items[:2]))  # warm-up: thread pool, caches
    rounds: dict[str, dict[str, list[Any]]] = {n: {"bare": [], "pipe": [], "preds": []} for n in clfs}
    for r, part in enumerate(parts):
        say(f"round {r + 1}/{len(parts)}: bare and pipeline chunks for {', '.join(clfs)}")
        n_images = max(batch, sum(len(v) for v in part.values()))
        for name in (list(clfs) if r % 2 == 0 else list(clfs)[::-1]):  # alternate who goes first
            rounds[name]["bare"].append(bare[name].run(n_images))
            rate, cpu_ms, preds = _pipeline_rate(clfs[name], part)
            rounds[name]["pipe"].append((rate, cpu_ms))
            rounds[name]["preds"].append(preds)
    return {name: {"bare": v["bare"], "pipe": v["pipe"], "preds": {k: p for d in v["preds"] for k, p in d.items()}}
            for name, v in rounds.items()}


def _figures(rounds: dict[str, Any], gflop: float) -> dict[str, Any]:
    bare = [b[0] for b in rounds["bare"]]
    pipe = [p[0] for p in rounds["pipe"]]
    ratios = [p / b for p, b in zip(pipe, bare, strict=True)]
    return {
        "bare_images_per_s": statistics.median(bare),
        "bare_spread": _spread(bare),
        "bare_gflop_per_s": statistics.median(bare) * gflop,
        "pipeline_images_per_s": statistics.median(pipe),
        "pipeline_spread": _spread(pipe),
        "pipeline_ratio": statistics.median(ratios),
        "pipeline_ratio_rounds": ratios,
        "pipeline_ratio_spread": [min(ratios), max(ratios)],
        "bare_cpu_ms_per_image": statistics.median(b[1] for b in rounds["bare"]),
        "pipeline_cpu_ms_per_image": statistics.median(p[1] for p in rounds["pipe"]),
    }


def run_bench(opts: BenchOptions, progress: Progress | None = None, photo_bytes: Sequence[bytes] | None = None,
              decision: DecisionConfig | None = None) -> dict[str, Any]:
    """Runs every measurement and returns the figures (see the module docstring).

    `photo_bytes` replaces the rendered photos (cycled to `opts.photos`), e.g. to reuse them across runs;
    `decision` is the rule the precision guard applies (default: the default cutoff and ranks).
    """
    say = progress or (lambda _msg: None)
    if photo_bytes:
        photos = [photo_bytes[i % len(photo_bytes)] for i in range(opts.photos)]
    else:
        say(f"rendering {opts.photos} photos")
        photos = bench_photos(opts.photos)
    groups = observations_of(photos)
    with tempfile.TemporaryDirectory(prefix="plantbot-bench-") as tmp:
        say(f"loading {opts.bundle}" if opts.bundle else f"building a random {opts.arch} bundle")
        bundle = load_bundle(opts.bundle) if opts.bundle else _random_bundle(Path(tmp) / "bundle", opts)
        clf = _classifier(bundle, opts, opts.dtype)
        clfs = {"float32": clf if clf.dtype_name == "float32" else _classifier(bundle, opts, "float32")}
        clfs[clf.dtype_name] = clf
        if clf.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(clf.device)
        # Bare cycles through these batches; 1024 distinct inputs are plenty for any batch size tried.
        x = torch.stack([clf.preprocess(clf.decode(p)) for p in photos[:1024]])
        say(f"bare forward in {clf.dtype_name}: finding the best batch size")
        by_batch = {b: _Bare(clf, x, b).run(max(2 * b, len(photos) // 4))[0] for b in _candidates(clf, opts)}
        best = max(by_batch, key=lambda b: by_batch[b])
        for c in clfs.values():
            c.batch_size = best
        rounds = _interleaved(clfs, x, groups, best, max(1, opts.repeats), say)
        gflop = flops_per_image(bundle) / 1e9
        by_dtype = {name: _figures(r, gflop) for name, r in rounds.items()}
        result: dict[str, Any] = {**by_dtype[clf.dtype_name], "by_dtype": by_dtype, "gflop_per_image": gflop,
                                  "bare_by_batch": {str(b): v for b, v in by_batch.items()}, "batch_size": best}
        if clf.dtype_name != "float32":
            speedups = [a[0] / b[0] for a, b in zip(rounds[clf.dtype_name]["bare"], rounds["float32"]["bare"],
                                                     strict=True)]
            result["dtype_speedup"] = _spread(speedups)
        result["precision_check"] = compare_predictions(rounds["float32"]["preds"], rounds[clf.dtype_name]["preds"],
                                                        bundle.labels, decision or DecisionConfig())
        if opts.tencrop:
            result.update(_tencrop_figures(bundle, opts, photos, best, clf.dtype_name))
    result.update(_context(clf, opts, bundle))
    return result


def _tencrop_figures(bundle: ModelBundle, opts: BenchOptions, photos: Sequence[bytes],
                     best: int, dtype: str) -> dict[str, Any]:
    few = list(photos[: max(4, len(photos) // 8)])
    clf10 = _classifier(bundle, opts, dtype, batch=max(10, best - best % 10), tencrop=True)
    _seed_style_rate(clf10, few[:1])  # warm-up
    seed = _seed_style_rate(clf10, few)
    tencrop, _, _ = _pipeline_rate(clf10, observations_of(few))
    return {"seed_style_images_per_s": seed, "seed_style_crops_per_s": 10 * seed,
            "tencrop_images_per_s": tencrop, "tencrop_crops_per_s": 10 * tencrop, "tencrop_photos": len(few)}


def _context(clf: Classifier, opts: BenchOptions, bundle: ModelBundle) -> dict[str, Any]:
    """Where and how it ran: the figures mean little without these."""
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    info: dict[str, Any] = {
        "peak_rss_mb": rss_kb / 1024,
        "device": str(clf.device),
        "device_name": platform.processor() or platform.machine(),
        "dtype": clf.dtype_name,
        "cpu_simd_flags": sorted(f for f in read_cpu_flags() if f in SIMD_FLAGS),
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


FIGURES = ("bare_images_per_s", "bare_gflop_per_s", "pipeline_images_per_s", "pipeline_ratio",
           "seed_style_images_per_s", "seed_style_crops_per_s", "tencrop_crops_per_s", "peak_rss_mb")
