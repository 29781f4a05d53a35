"""Every GPU check of issues 6 and 16 and the benchmarks, in one go; prints one JSON object.

Run through scripts/gpu_check.sh on a CUDA machine (about 3-5 minutes on one H100). Without CUDA it
prints {"cuda": false, ...} and exits 0, so it is safe anywhere. Sections, each timed, each failing
alone (its error is recorded, the rest still run):

  device     name, memory, torch/torchvision/cuDNN versions
  h2d        host-to-device copy of a uint8 batch, pinned + non_blocking vs pageable (GB/s)
  decode     JPEG bytes -> cropped uint8: Pillow in N CPU threads vs decode_jpeg on the GPU (nvjpeg)
  bare       forward on device tensors: fp32/fp16/bf16 x channels_last x batch, cudnn.benchmark on
             (and off once, to show its effect)
  autocast   fp16/bf16 probabilities against fp32 on the same inputs (max abs diff, top-1 agreement)
  pipeline   Classifier.predict_observations from JPEG bytes, both decoders, fp16/bf16: photos/s and
             the ratio to bare at the same dtype and batch
  auto_dtype [model] dtype = "auto" on this GPU (bf16 where supported, else fp16): the dtype chosen,
             probabilities and decisions against float32 on the same observations (issue 16)
  stream     the streaming cycle end to end against the simulator on loopback (benchmarks/bench_cycle.py:
             1,000 observations, obs/s vs download alone and classify alone, peak RSS at 200 and 50 a page)
  compile    torch.compile'd model, bare (skipped with GPU_CHECK_COMPILE=0 or when time runs short)
  oom        a real out-of-memory under a per-process memory cap: the batch halves, the run finishes
  bench      `plantbot bench` figures (fp16, the faster decoder) for the README's Performance section
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

START = time.monotonic()
SMOKE = os.environ.get("GPU_CHECK_SMOKE") == "1"  # on a CPU: tiny model, few photos, to catch script bugs
BUDGET_S = float(os.environ.get("GPU_CHECK_BUDGET_S", "500"))
N_PHOTOS = int(os.environ.get("GPU_CHECK_PHOTOS", "32" if SMOKE else "4096"))


BATCHES = (4, 8) if SMOKE else (128, 256, 512)


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - START:6.1f}s] {msg}", file=sys.stderr, flush=True)


def time_left() -> float:
    return BUDGET_S - (time.monotonic() - START)


class Ctx:
    """What the sections share: photos, a random ResNet50 bundle, preprocessed inputs, best settings."""

    def __init__(self, tmp: Path) -> None:
        from bot.bench import BenchOptions, _random_bundle, bench_photos
        from bot.classifier import Classifier

        unique = bench_photos(int(os.environ.get("GPU_CHECK_UNIQUE_PHOTOS", "8" if SMOKE else "128")))
        self.photos = [unique[i % len(unique)] for i in range(N_PHOTOS)]
        shape = {"num_classes": 10, "arch": "resnet18", "input_size": 64} if SMOKE else {"num_classes": 1000}
        self.bundle = _random_bundle(tmp / "bundle", BenchOptions(**shape))
        self.device = torch.device("cpu" if SMOKE else "cuda")
        cpu = Classifier(self.bundle, device="cpu", threads=1 if SMOKE else (os.cpu_count() or 1))
        self.x_cpu = torch.stack([cpu.preprocess(cpu.decode(p)) for p in unique])
        self.x_big = self.x_cpu.repeat(-(-512 // len(unique)), 1, 1, 1)  # at least 512 rows
        self.best: dict[str, Any] = {"dtype": "float16", "batch": BATCHES[1], "channels_last": True, "decode": "pillow"}
        self.bare: dict[str, float] = {}

    def classifier(self, **kw: Any) -> Any:
        from bot.classifier import Classifier

        args = {"device": str(self.device), "batch_size": self.best["batch"], "dtype": self.best["dtype"],
                "channels_last": self.best["channels_last"], "workers": os.cpu_count() or 8}
        args.update(kw)
        return Classifier(self.bundle, **args)


def device_info(ctx: Ctx) -> dict[str, Any]:
    import torchvision

    if SMOKE:
        return {"smoke": True, "torch": torch.__version__, "torchvision": torchvision.__version__}
    props = torch.cuda.get_device_properties(0)
    return {"name": props.name, "memory_gb": props.total_memory / 2**30, "capability": f"{props.major}.{props.minor}",
            "torch": torch.__version__, "torchvision": torchvision.__version__,
            "cudnn": torch.backends.cudnn.version(), "cpu_count": os.cpu_count(), "photos": len(ctx.photos)}


def h2d(ctx: Ctx) -> dict[str, Any]:
    if SMOKE:
        return {"skipped": "smoke run on CPU"}
    x = torch.randint(0, 255, (256, 3, 224, 224), dtype=torch.uint8)
    pinned = x.pin_memory()
    out = {}
    for name, src, nb in (("pageable", x, False), ("pinned_non_blocking", pinned, True)):
        src.to(ctx.device, non_blocking=nb)
        sync()
        t = time.perf_counter()
        for _ in range(20):
            src.to(ctx.device, non_blocking=nb)
        sync()
        out[f"{name}_gb_per_s"] = 20 * x.numel() / (time.perf_counter() - t) / 1e9
    return out


def decode(ctx: Ctx) -> dict[str, Any]:
    from bot.classifier import tensor_decode

    clf = ctx.classifier(device="cpu")
    photos = ctx.photos[:2048]
    out: dict[str, Any] = {}
    for threads in sorted({2 if SMOKE else 8, os.cpu_count() or 8}):
        with ThreadPoolExecutor(threads) as pool:
            t = time.perf_counter()
            list(pool.map(lambda d: clf._crops(clf.decode(d)), photos))
            out[f"pillow_{threads}_threads_per_s"] = len(photos) / (time.perf_counter() - t)
    for batch in BATCHES[:2]:
        t = time.perf_counter()
        for i in range(0, len(photos), batch):
            imgs = tensor_decode.decode_batch(photos[i:i + batch], ctx.device)
            tensor_decode.geometry_batch([m for m in imgs if isinstance(m, torch.Tensor)],
                                         ctx.bundle.resize_size, ctx.bundle.input_size, False)
        sync()
        out[f"nvjpeg_batch_{batch}_per_s"] = len(photos) / (time.perf_counter() - t)
    return out


def _bare_rate(clf: Any, x: torch.Tensor, batch: int, n: int) -> tuple[float, float]:
    from bot.bench import _Bare

    return _Bare(clf, x, batch).run(n)


def bare(ctx: Ctx) -> dict[str, Any]:
    torch.backends.cudnn.benchmark = True
    out: dict[str, Any] = {}
    for dtype in ("float32", "float16", "bfloat16"):
        for cl in (True, False):
            clf = ctx.classifier(dtype=dtype, channels_last=cl)
            for batch in BATCHES:
                rate = _bare_rate(clf, ctx.x_big, batch, 4 * batch)[0]
                key = f"{dtype}_{'nhwc' if cl else 'nchw'}_b{batch}"
                out[key] = rate
                ctx.bare[key] = rate
            del clf
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    best = max(ctx.bare, key=lambda k: ctx.bare[k])
    dtype, fmt, b = best.split("_")
    ctx.best.update(dtype=dtype, channels_last=fmt == "nhwc", batch=int(b[1:]))
    torch.backends.cudnn.benchmark = False
    clf = ctx.classifier()
    out["cudnn_benchmark_off_" + best] = _bare_rate(clf, ctx.x_big, ctx.best["batch"], 4 * ctx.best["batch"])[0]
    torch.backends.cudnn.benchmark = True
    out["best"] = best
    return out


def autocast(ctx: Ctx) -> dict[str, Any]:
    x = ctx.x_cpu[:64]
    ref = ctx.classifier(dtype="float32").forward_probs(x)
    out: dict[str, Any] = {}
    for dtype in ("float16", "bfloat16"):
        p = ctx.classifier(dtype=dtype).forward_probs(x)
        out[dtype] = {"max_abs_diff": float(abs(p - ref).max()),
                      "top1_agreement": float((p.argmax(1) == ref.argmax(1)).mean())}
    return out


def pipeline(ctx: Ctx) -> dict[str, Any]:
    from bot.bench import observations_of

    groups = observations_of(ctx.photos)
    out: dict[str, Any] = {}
    for dec in ("pillow", "torchvision"):
        for dtype in ("float16", "bfloat16"):
            clf = ctx.classifier(decode=dec, dtype=dtype)
            clf.predict_observations(dict(list(groups.items())[:64]))  # warm-up
            sync()
            t = time.perf_counter()
            preds = clf.predict_observations(groups)
            sync()
            rate = len(ctx.photos) / (time.perf_counter() - t)
            key = f"{dtype}_{'nhwc' if ctx.best['channels_last'] else 'nchw'}_b{ctx.best['batch']}"
            out[f"{dec}_{dtype}"] = {"photos_per_s": rate, "ratio_to_bare": rate / ctx.bare.get(key, float("nan")),
                                     "failed": sum(p is None for p in preds.values())}
    best = max((k for k in out if "photos_per_s" in out[k]), key=lambda k: out[k]["photos_per_s"])
    ctx.best["decode"] = best.split("_")[0]
    out["best"] = best
    return out


def auto_dtype(ctx: Ctx) -> dict[str, Any]:
    from bot.bench import observations_of
    from bot.bench_compare import compare_predictions
    from bot.config import DecisionConfig

    groups = dict(list(observations_of(ctx.photos[:64 if SMOKE else 512]).items()))
    auto = ctx.classifier(dtype="auto")
    ref = ctx.classifier(dtype="float32").predict_observations(groups)
    got = auto.predict_observations(groups)
    return {"chosen": auto.dtype_name, **compare_predictions(ref, got, ctx.bundle.labels, DecisionConfig())}


def stream(ctx: Ctx) -> dict[str, Any]:
    import subprocess

    out_json = Path(tempfile.mkdtemp()) / "bench_cycle.json"
    args = (["--observations", "40", "--pages", "20", "10", "--arch", "resnet18", "--input-size", "64",
             "--distinct-photos", "8"] if SMOKE else
            ["--observations", "1000", "--pages", "200", "50", "--arch", "resnet50", "--batch-size", "64",
             "--photo-latency", os.environ.get("GPU_CHECK_PHOTO_LATENCY", "0.05")])
    proc = subprocess.run([sys.executable, "benchmarks/bench_cycle.py", *args, "--json", str(out_json)],
                          capture_output=True, text=True, timeout=max(60, time_left() - 30), check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr[-800:]}
    return dict(json.loads(out_json.read_text()))


def compile_check(ctx: Ctx) -> dict[str, Any]:
    if os.environ.get("GPU_CHECK_COMPILE", "1") != "1" or time_left() < 150:
        return {"skipped": "GPU_CHECK_COMPILE=0 or too little time left"}
    clf = ctx.classifier()
    eager = _bare_rate(clf, ctx.x_big, ctx.best["batch"], 4 * ctx.best["batch"])[0]
    t = time.perf_counter()
    clf.model = torch.compile(clf.model)
    compiled = _bare_rate(clf, ctx.x_big, ctx.best["batch"], 8 * ctx.best["batch"])[0]
    return {"eager_per_s": eager, "compiled_per_s": compiled, "compile_and_run_s": time.perf_counter() - t}


def oom(ctx: Ctx) -> dict[str, Any]:
    if SMOKE:
        return {"skipped": "smoke run on CPU"}
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(min(1.0, 4 * 2**30 / total))  # a 4 GiB card
    try:
        clf = ctx.classifier(dtype="float32", batch_size=2048, decode="pillow")
        photos = ctx.photos[:2100]
        probs = clf.predict_photos(photos)
        return {"start_batch": 2048, "final_batch": clf.batch_size, "rows_ok": int((~torch.from_numpy(
            probs).isnan().any(1)).sum()), "rows": len(photos)}
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()


def bench(ctx: Ctx) -> dict[str, Any]:
    from bot.bench import BenchOptions, run_bench

    opts = BenchOptions(device=str(ctx.device), arch=ctx.bundle.arch, input_size=ctx.bundle.input_size,
                        num_classes=len(ctx.bundle.labels), dtype=ctx.best["dtype"],
                        channels_last=ctx.best["channels_last"],
                        decode=ctx.best["decode"], photos=min(len(ctx.photos), 4096), repeats=2,
                        batch_size=None, workers=os.cpu_count() or 8)
    return run_bench(opts, progress=log, photo_bytes=ctx.photos)


SECTIONS: list[tuple[str, Callable[[Ctx], dict[str, Any]]]] = [
    ("device", device_info), ("h2d", h2d), ("decode", decode), ("bare", bare), ("autocast", autocast),
    ("pipeline", pipeline), ("auto_dtype", auto_dtype), ("oom", oom), ("bench", bench), ("stream", stream),
    ("compile", compile_check),
]


def main() -> int:
    out: dict[str, Any] = {"cuda": torch.cuda.is_available(), "torch": torch.__version__}
    if not out["cuda"] and not SMOKE:
        out["note"] = "no CUDA device: nothing to check (run scripts/gpu_check.sh on a GPU machine)"
        print(json.dumps(out))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        log("preparing photos and a random resnet50 bundle")
        ctx = Ctx(Path(tmp))
        for name, fn in SECTIONS:
            if time_left() < 20:
                out[name] = {"skipped": "time budget spent"}
                continue
            log(f"section {name}")
            t = time.perf_counter()
            try:
                out[name] = fn(ctx)
            except Exception as exc:  # one broken section must not hide the others' figures
                out[name] = {"error": f"{type(exc).__name__}: {str(exc)[:400]}"}
            out[name + "_seconds"] = round(time.perf_counter() - t, 1)
            log(f"{name}: {json.dumps(out[name])[:300]}")
    out["best"] = ctx.best
    out["total_seconds"] = round(time.monotonic() - START, 1)
    text = json.dumps(out, indent=2, default=str)
    print(text)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_check.json").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
