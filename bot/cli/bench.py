"""`plantbot bench`: classify-stage throughput on this machine (a command, never a timed test)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

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
@click.option("--dtype", type=click.Choice(["float32", "float16", "bfloat16"]), default="float32",
              show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--photos", type=int, default=None, help="Number of photos [default: 64; quick: 16].")
@click.option("--tencrop/--no-tencrop", default=True, show_default=True,
              help="Also measure ten-crop inference (seed-style and batched).")
@click.option("--channels-last/--no-channels-last", default=None,
              help="NHWC memory format [default: on].")
@click.option("--decode", type=click.Choice(["pillow", "torchvision"]), default="pillow", show_default=True,
              help="Pillow in CPU threads, or torchvision's decode_jpeg on the device (nvjpeg on CUDA).")
@click.option("--repeats", type=int, default=None, help="Bare/pipeline rounds [default: 3; quick: 2].")
@click.option("--quick", is_flag=True, help="Tiny run for CI: resnet18 at 64 px on 16 photos.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the figures as JSON to PATH ('-' for stdout).")
def bench(arch: str | None, input_size: int | None, batch_size: str, threads: int, workers: int, dtype: str,
          device: str, photos: int | None, tencrop: bool, channels_last: bool | None, decode: str, repeats: int | None,
          quick: bool, json_path: str | None) -> None:
    """Measure bare forward vs the full classify pipeline (JPEG bytes to averaged probabilities)."""
    from bot.bench import BenchOptions, run_bench

    if photos is not None and photos < 1:
        raise UsageError(f"--photos: must be >= 1, got {photos}")
    common: dict[str, Any] = {"arch": arch, "input_size": input_size, "batch_size": _batch_size(batch_size),
                              "threads": threads, "workers": workers, "dtype": dtype, "device": device,
                              "photos": photos, "tencrop": tencrop, "channels_last": channels_last,
                              "decode": decode, "repeats": repeats}
    if quick:
        opts = BenchOptions.quick_mode(**common)
    else:
        opts = BenchOptions(**{k: v for k, v in common.items() if v is not None or k == "batch_size"})
    console = Console(stderr=json_path == "-")
    with console.status("benchmarking") as status:
        result = run_bench(opts, progress=lambda msg: status.update(msg))
    console.print(_table(result))
    if json_path == "-":
        click.echo(json.dumps(result, indent=2))
    elif json_path:
        Path(json_path).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def _table(r: dict[str, Any]) -> Table:
    table = Table(title=f"plantbot bench: {r['arch']} @ {r['input_size']} px on {r['device']} ({r['device_name']})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows: list[tuple[str, str]] = [
        ("bare forward (images/s)", f"{r['bare_images_per_s']:.1f}"),
        ("pipeline, JPEG bytes to observation probabilities (images/s)", f"{r['pipeline_images_per_s']:.1f}"),
        ("pipeline / bare (median of rounds: " + ", ".join(f"{v:.2f}" for v in r["pipeline_ratio_rounds"]) + ")",
         f"{r['pipeline_ratio']:.2f}"),
        ("CPU ms per image, bare / pipeline (all threads)",
         f"{r['bare_cpu_ms_per_image']:.1f} / {r['pipeline_cpu_ms_per_image']:.1f}"),
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
        ("dtype / channels_last / decode", f"{r['dtype']} / {r['channels_last']} / {r['decode']}"),
        ("torch threads / decode workers / cores", f"{r['threads']} / {r['workers']} / {r['cpu_count']}"),
        ("photos", str(r["photos"])),
        ("peak RSS (MB)", f"{r['peak_rss_mb']:.0f}"),
        ("load average (1, 5, 15 min)", ", ".join(f"{v:.1f}" for v in r["load_average"])),
    ]
    if "gpu_memory_peak_mb" in r:
        rows.append(("GPU memory peak / total (MB)", f"{r['gpu_memory_peak_mb']:.0f} / {r['gpu_memory_total_mb']:.0f}"))
    for name, value in rows:
        table.add_row(name, value)
    return table


def register(group: click.Group) -> None:
    """Adds this module's commands to the top-level group."""
    group.add_command(bench)
