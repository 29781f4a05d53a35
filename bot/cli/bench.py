"""`plantbot bench`: classify-stage throughput on this machine (a command, never a timed test)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from bot.cli import State, pass_state
from bot.cli.console import make_console
from bot.errors import UsageError


def _batch_size(value: str) -> int | None:
    if value == "auto":
        return None
    try:
        n = int(value)
    except ValueError:
        raise UsageError(f"--batch-size: {value!r} is not a number or 'auto'") from None
    if n < 1:
        raise UsageError(f"--batch-size: must be >= 1, got {n}")
    return n


@click.command("bench")
@click.option("--arch", default=None, help="torchvision classification arch [default: resnet50; quick: resnet18].")
@click.option("--input-size", type=int, default=None, help="Model input size [default: 224; quick: 64].")
@click.option("--batch-size", default="auto", show_default=True, help="Batch size, or 'auto' to try a few.")
@click.option("--threads", type=int, default=0, show_default=True, help="torch threads (0: one per core).")
@click.option("--workers", type=int, default=0, show_default=True, help="Decode threads (0: chosen per device).")
@click.option("--dtype", type=click.Choice(["auto", "float32", "float16", "bfloat16"]), default="auto",
              show_default=True, help="Measured side by side with float32 (auto: bfloat16 on a CPU with native bf16).")
@click.option("--bundle", "bundle_path", type=click.Path(exists=True, file_okay=False), default=None,
              help="A real model bundle instead of random weights: the precision check then compares real decisions.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--photos", type=int, default=None, help="Number of photos [default: 64; quick: 16].")
@click.option("--tencrop/--no-tencrop", default=True, show_default=True,
              help="Also measure ten-crop inference (seed-style and batched).")
@click.option("--channels-last/--no-channels-last", default=None,
              help="NHWC memory format [default: on].")
@click.option("--decode", type=click.Choice(["pillow", "torchvision"]), default="pillow", show_default=True,
              help="Pillow in CPU threads, or torchvision's decode_jpeg on the device (nvjpeg on CUDA).")
@click.option("--repeats", type=int, default=None,
              help="Interleaved bare/pipeline rounds [default: 4; quick: 2].")
@click.option("--quick", is_flag=True, help="Tiny run for CI: resnet18 at 64 px on 16 photos.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the figures as JSON to PATH ('-' for stdout).")
@pass_state
def bench(state: State, arch: str | None, input_size: int | None, batch_size: str, threads: int, workers: int,
          dtype: str, bundle_path: str | None, device: str, photos: int | None, tencrop: bool,
          channels_last: bool | None, decode: str, repeats: int | None, quick: bool, json_path: str | None) -> None:
    """Measure bare forward vs the full classify pipeline, float32 and the chosen dtype side by side.

    The precision check applies the config's [decision] cutoff to both dtypes' probabilities.
    """
    from bot.bench import BenchOptions, run_bench

    if photos is not None and photos < 1:
        raise UsageError(f"--photos: must be >= 1, got {photos}")
    common: dict[str, Any] = {"arch": arch, "input_size": input_size, "batch_size": _batch_size(batch_size),
                              "threads": threads, "workers": workers, "dtype": dtype, "device": device,
                              "photos": photos, "tencrop": tencrop, "channels_last": channels_last,
                              "decode": decode, "repeats": repeats, "bundle": bundle_path}
    if quick:
        opts = BenchOptions.quick_mode(**common)
    else:
        opts = BenchOptions(**{k: v for k, v in common.items() if v is not None or k == "batch_size"})
    console = make_console(stderr=json_path == "-")
    with console.status("benchmarking") as status:
        result = run_bench(opts, progress=lambda msg: status.update(msg), decision=state.config.decision)
    console.print(_table(result))
    if json_path == "-":
        click.echo(json.dumps(result, indent=2))
    elif json_path:
        Path(json_path).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def _spread(d: dict[str, Any], key: str) -> str:
    sp = d[f"{key}_spread"]
    return f"{d[f'{key}_images_per_s']:.1f} ({sp['low']:.1f}-{sp['high']:.1f})"


def _table(r: dict[str, Any]) -> Table:
    """float32 and the chosen dtype in columns; medians of the interleaved rounds with (lowest-highest)."""
    table = Table(title=f"plantbot bench: {r['arch']} @ {r['input_size']} px on {r['device']} ({r['device_name']})")
    names = list(r["by_dtype"])
    table.add_column("figure", no_wrap=True)  # row names stay whole; values wrap instead
    for name in names:
        table.add_column(name, justify="right")
    cols = [r["by_dtype"][n] for n in names]

    def row(label: str, cell: Any) -> None:
        table.add_row(label, *(cell(d) for d in cols))

    row("bare forward images/s (low-high)", lambda d: _spread(d, "bare"))
    row(f"bare GFLOP/s ({r['gflop_per_image']:.2f}/image)", lambda d: f"{d['bare_gflop_per_s']:.0f}")
    row("pipeline images/s (low-high)", lambda d: _spread(d, "pipeline"))
    row("pipeline / bare (low-high)", lambda d: f"{d['pipeline_ratio']:.2f} "
        f"({d['pipeline_ratio_spread'][0]:.2f}-{d['pipeline_ratio_spread'][1]:.2f})")
    row("CPU ms/image bare / pipeline",
        lambda d: f"{d['bare_cpu_ms_per_image']:.1f} / {d['pipeline_cpu_ms_per_image']:.1f}")
    for name, value in _summary_rows(r):
        table.add_row(name, *([""] * (len(names) - 1)), value)
    return table


def _summary_rows(r: dict[str, Any]) -> list[tuple[str, str]]:
    pc = r["precision_check"]
    rows: list[tuple[str, str]] = []
    if "dtype_speedup" in r:
        sp = r["dtype_speedup"]
        rows.append((f"{r['dtype']} / float32 bare (low-high)",
                     f"{sp['median']:.2f}x ({sp['low']:.2f}-{sp['high']:.2f})"))
    rows += [
        (f"max prob diff vs float32 ({pc['observations_compared']} obs)",
         f"{pc['max_prob_diff']:.4f}"),
        (f"decisions differ at {pc['cutoff']:.2f} (+near it)",
         f"{pc['decisions_differ']} (+{pc['decisions_differ_near_cutoff']} of {pc['decisions_near_cutoff']})"),
    ]
    if "seed_style_images_per_s" in r:
        rows += [
            ("seed-style, one photo x ten crops (images/s)", f"{r['seed_style_images_per_s']:.1f}"),
            ("seed-style (crops/s)", f"{r['seed_style_crops_per_s']:.1f}"),
            ("ten-crop pipeline (crops/s)", f"{r['tencrop_crops_per_s']:.1f}"),
        ]
    rows += [
        ("batch size", str(r["batch_size"])),
        ("bare by batch size (images/s)", ", ".join(f"{b}: {v:.1f}" for b, v in r["bare_by_batch"].items())),
        ("chosen dtype / channels_last / decode", f"{r['dtype']} / {r['channels_last']} / {r['decode']}"),
        ("CPU flags (SIMD)", " ".join(r["cpu_simd_flags"]) or "unknown"),
        ("torch threads / decode workers / cores", f"{r['threads']} / {r['workers']} / {r['cpu_count']}"),
        ("photos", str(r["photos"])),
        ("peak RSS (MB)", f"{r['peak_rss_mb']:.0f}"),
        ("load average (1, 5, 15 min)", ", ".join(f"{v:.1f}" for v in r["load_average"])),
    ]
    if "gpu_memory_peak_mb" in r:
        rows.append(("GPU memory peak / total (MB)", f"{r['gpu_memory_peak_mb']:.0f} / {r['gpu_memory_total_mb']:.0f}"))
    return rows


def register(group: click.Group) -> None:
    """Adds this module's commands to the top-level group."""
    group.add_command(bench)
