"""`plantbot train` and `plantbot evaluate`: make a model bundle, then measure it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from bot.cli import State, pass_state
from bot.errors import UsageError
from bot.training.lines import cutoff_lines, num, pct, rule_lines

_path = click.Path(path_type=Path)
_file = click.Path(path_type=Path, exists=True, dir_okay=False)


@click.command("train")
@click.argument("manifest", type=_file)
@click.option("--labels", "labels", type=_file, default=None,
              help="labels.csv: the outputs, in order (default with --init BUNDLE: the bundle's).")
@click.option("--out", type=_path, required=True, help="Bundle folder to write (checkpoints go there too).")
@click.option("--arch", default="resnet50", show_default=True, help="Any torchvision classification builder.")
@click.option("--init", type=click.Path(path_type=Path, exists=True), default=None,
              help="Local torchvision state dict (e.g. ImageNet) to start from, its final layer dropped; or a "
                   "bundle folder to fine-tune into a new version (its labels, order and all, are kept).")
@click.option("--epochs", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True, help="Per process.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True)
@click.option("--weight-decay", type=click.FloatRange(min=0), default=0.0, show_default=True)
@click.option("--schedule", type=click.Choice(["cosine", "step"]), default="cosine", show_default=True,
              help="Learning-rate decay over the epochs.")
@click.option("--input-size", type=click.IntRange(min=16), default=224, show_default=True)
@click.option("--augment", type=click.Choice(["paper", "light"]), default="paper", show_default=True,
              help="The paper's augmentation, or light (mild crop, mirror) for a short run on rendered photos.")
@click.option("--workers", type=click.IntRange(min=0), default=4, show_default=True, help="Data loader processes.")
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoint.pt after its last finished epoch.")
@click.option("--val", type=_file, default=None, help="Validation manifest: photo top-1 after each epoch.")
@click.option("--name", default="plantbot", show_default=True, help="Bundle name (model.toml).")
@click.option("--version", "version", default=None,
              help="Bundle version (model.toml); default 1, or the next version of --init BUNDLE.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda (one per rank under torchrun).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-progress", is_flag=True, help="No progress bar (log lines per epoch only).")
def train_cmd(manifest: Path, labels: Path | None, out: Path, arch: str, init: Path | None, epochs: int,
              batch_size: int, lr: float, weight_decay: float, schedule: str, input_size: int, augment: str,
              workers: int,
              resume: bool, val: Path | None, name: str, version: str | None, device: str, seed: int,
              no_progress: bool) -> None:
    """Train a classifier on MANIFEST and write a model bundle to OUT.

    Multi-GPU: `torchrun --nproc_per_node N -m bot train ...` (DistributedDataParallel).
    """
    from bot.training.train import CHECKPOINT_NAME, TrainOptions, next_version, train

    if init is not None and init.is_dir():
        from bot.classifier import load_bundle

        bundle = load_bundle(init)
        labels = labels or bundle.path / "labels.csv"
        name = bundle.name if name == "plantbot" else name
        version = version or next_version(bundle.version)
    if labels is None:
        raise UsageError("--labels is required (unless --init names a bundle)")
    if resume and not (out / CHECKPOINT_NAME).is_file():
        click.echo(f"--resume: no checkpoint at {out / CHECKPOINT_NAME}; training from epoch 1")
    result = train(TrainOptions(
        manifest=manifest, labels=labels, out=out, arch=arch, init=init, epochs=epochs, batch_size=batch_size,
        lr=lr, weight_decay=weight_decay, schedule=schedule, input_size=input_size, augment=augment,
        workers=workers, resume=resume, val=val, name=name, version=version or "1", device=device, seed=seed,
        progress=not no_progress,
    ))
    if result.bundle is not None:
        last = result.history[-1] if result.history else {}
        val_text = f", val top-1 {last['val_top1']:.3f}" if last.get("val_top1") is not None else ""
        click.echo(f"bundle written to {result.bundle} ({len(result.labels)} labels, "
                   f"{len(result.history)} epochs{val_text})")


@click.command("evaluate")
@click.argument("bundle", type=click.Path(path_type=Path, exists=True, file_okay=False), required=False)
@click.argument("manifest", type=_file, required=False)
@click.option("--out", type=_path, required=True, help="Folder for metrics.json, the PNGs and index.html.")
@click.option("--predictions", type=_file, default=None,
              help="JSON Lines of another system's top-k per photo (instead of BUNDLE and MANIFEST).")
@click.option("--labels", "labels_csv", type=_file, default=None,
              help="labels.csv (name, genus, family) that --predictions names refer to.")
@click.option("--tencrop/--no-tencrop", default=None, help="Average ten crops per photo (default: config).")
@click.option("--cutoff", type=click.FloatRange(0, 1), default=None,
              help="The shared cutoff of the decision rule (default: the config's [decision] cutoff; "
                   "the config's per-rank cutoffs still apply).")
@click.option("--target-precision", "targets", type=click.FloatRange(0, 1), multiple=True,
              help="Report the lowest cutoff reaching this precision (repeatable; default 0.8 and 0.9).")
@click.option("--device", default=None, help="auto, cpu, cuda (default: the config's [model] device).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None)
@click.option("--dtype", type=click.Choice(["auto", "float32", "bfloat16", "float16"]), default=None,
              help="Precision of the forward pass (default: the config's [model] dtype); compare runs to "
                   "check that bfloat16 keeps your bundle's decisions.")
@click.option("--flora", type=_file, default=None,
              help="A flora file (CSV with taxon_id): also measure the rule with and without it.")
@click.option("--write-cutoffs", is_flag=True,
              help="Find the lowest cutoff per rank reaching [decision] target_precision on MANIFEST (held out "
                   "from training; at least [decision] min_decided decided observations), as calibrate does, "
                   "and store them in BUNDLE's model.toml (its temperature untouched).")
@click.option("--flora-weight", type=click.FloatRange(0, 1), default=None,
              help="Weight of species outside the flora (default: the config's [decision] flora_weight).")
@click.option("--no-progress", is_flag=True)
@pass_state
def evaluate_cmd(state: State, bundle: Path | None, manifest: Path | None, out: Path, predictions: Path | None,
                 labels_csv: Path | None, tencrop: bool | None, cutoff: float | None, targets: tuple[float, ...],
                 device: str | None, batch_size: int | None, dtype: str | None, flora: Path | None,
                 flora_weight: float | None, write_cutoffs: bool, no_progress: bool) -> None:
    """Measure BUNDLE on the labelled photos of MANIFEST; writes OUT/metrics.json and OUT/index.html.

    Or measure another system's predictions: `evaluate --predictions FILE --labels labels.csv --out DIR`.
    """
    from bot.errors import UsageError

    cfg = state.config
    if predictions is not None:
        if write_cutoffs:
            raise UsageError("--write-cutoffs needs a BUNDLE to write into (not --predictions)")
        if bundle is not None or manifest is not None or labels_csv is None:
            raise UsageError("--predictions takes --labels and no BUNDLE or MANIFEST")
        from bot.training.predictions import evaluate_predictions

        result = evaluate_predictions(predictions, labels_csv, out,
                                      cfg.decision.cutoff if cutoff is None else cutoff, targets or (0.8, 0.9))
        _echo_result(result, out)
        return
    if bundle is None or manifest is None:
        raise UsageError("give BUNDLE and MANIFEST, or --predictions FILE --labels labels.csv")
    from bot.training.evaluate import EvalOptions, evaluate

    decision = cfg.decision if cutoff is None else replace(cfg.decision, cutoff=cutoff)
    result = evaluate(EvalOptions(
        bundle=bundle, manifest=manifest, out=out,
        tencrop=cfg.model.tencrop if tencrop is None else tencrop,
        cutoff=decision.cutoff, decision=decision,
        targets=targets or (0.8, 0.9), device=device or cfg.model.device,
        batch_size=batch_size or cfg.model.batch_size, dtype=dtype or cfg.model.dtype, progress=not no_progress,
        flora=flora, flora_weight=cfg.decision.flora_weight if flora_weight is None else flora_weight,
        write_cutoffs=write_cutoffs,
    ))
    if "cutoffs_written" in result:
        for line in cutoff_lines(result["cutoffs_written"]):
            click.echo(line)
        click.echo(f"cutoffs written to {bundle / 'model.toml'}")
    _echo_result(result, out)


def _echo_result(result: dict[str, Any], out: Path) -> None:
    """The headline numbers, the rule's outcome, calibration, notes and where the report is."""
    precision = f", {result['dtype']}" if "dtype" in result else ""  # none for --predictions
    click.echo(f"{result['observations']} observations ({result['photos']} photos{precision}): "
               f"top-1 {pct(result['top1'])}, "
               f"top-5 {pct(result['top5'])}, genus {pct(result['genus_top1'])}, family {pct(result['family_top1'])}")
    if "rule" in result:
        for line in rule_lines(result["rule"]):
            click.echo(line)
    else:  # another system's predictions: the model-only view (no bundle, no daemon rule)
        rule = result["model_rule"]
        click.echo(f"model-only rule at cutoff {rule['cutoff']:.2f}: " + ", ".join(
            f"{k} {rule[k]['count']} ({pct(rule[k]['precision'])} right)" for k in ("species", "genus", "family"))
            + f", abstain {rule['abstain']['count']}")
    cal = result.get("calibration")
    if cal:
        text = (f"calibration: ECE {num(cal['uncalibrated']['ece'])}, NLL {num(cal['uncalibrated']['nll'])} "
                "uncalibrated")
        if "calibrated" in cal:
            text += (f"; ECE {num(cal['calibrated']['ece'])}, NLL {num(cal['calibrated']['nll'])} "
                     f"at the bundle's temperature {cal['temperature']:.3f}")
        click.echo(text)
    for note in result.get("notes", []):
        click.echo(f"note: {note}")
    if "flora" in result:
        click.echo(flora_text(result["flora"]))
    click.echo(f"report: {out / 'index.html'}")


def flora_text(fl: dict[str, Any]) -> str:
    """One line per variant: species precision and coverage at the same cutoff."""
    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{100 * v:.1f}%"

    head = (f"flora {fl['source']} ({fl['taxa']} taxa, {fl['labels_outside']} labels outside, weight "
            f"{fl['weight']:g}, cutoff {fl['cutoff']:.2f}):")
    rows = [f"  {name:<13} species precision {pct(fl[key]['species_precision'])}, "
            f"coverage {pct(fl[key]['species_coverage'])}, top-1 {pct(fl[key]['top1'])}"
            for key, name in (("off", "off"), ("on", "on"), ("renormalised", "renormalised"))]
    return "\n".join([head, *rows])



@click.command("calibrate")
@click.argument("bundle", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.argument("manifest", type=_file)
@click.option("--out", type=_path, default=None, help="Write a calibrated copy here (default: BUNDLE in place).")
@click.option("--target-precision", "target", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=None, help="Precision the per-rank cutoffs aim at (default: [decision] target_precision).")
@click.option("--min-decided", type=click.IntRange(min=1), default=None,
              help="Fewest decided observations of a rank to set its cutoff (default: [decision] min_decided).")
@click.option("--tencrop/--no-tencrop", default=None, help="Average ten crops per photo (default: config).")
@click.option("--device", default=None, help="auto, cpu, cuda (default: the config's [model] device).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None)
@click.option("--dtype", type=click.Choice(["auto", "float32", "bfloat16", "float16"]), default=None,
              help="Precision of the forward pass (default: the config's [model] dtype, as the daemon runs).")
@click.option("--no-progress", is_flag=True)
@pass_state
def calibrate_cmd(state: State, bundle: Path, manifest: Path, out: Path | None, target: float | None,
                  min_decided: int | None, tencrop: bool | None, device: str | None, batch_size: int | None,
                  dtype: str | None, no_progress: bool) -> None:
    """Fit a temperature and per-rank cutoffs on MANIFEST (labelled, held out from training).

    Writes `temperature`, [calibration] and [cutoffs] into BUNDLE's model.toml (or a copy at --out);
    the daemon uses the cutoffs with `[decision] cutoffs = "bundle"`.
    """
    from bot.training.calibrate import CalibrateOptions, calibrate

    cfg = state.config
    result = calibrate(CalibrateOptions(
        bundle=bundle, manifest=manifest, out=out, decision=cfg.decision,
        target=cfg.decision.target_precision if target is None else target,
        min_decided=cfg.decision.min_decided if min_decided is None else min_decided,
        tencrop=cfg.model.tencrop if tencrop is None else tencrop, device=device or cfg.model.device,
        batch_size=batch_size or cfg.model.batch_size, dtype=dtype or cfg.model.dtype, progress=not no_progress,
    ))
    b, a = result["before"], result["after"]
    click.echo(f"{result['observations']} observations ({result['photos']} photos): temperature "
               f"{result['temperature']:.4f}; NLL {num(b['nll'])} -> {num(a['nll'])}, "
               f"ECE {num(b['ece'])} -> {num(a['ece'])}")
    for line in cutoff_lines(result["cutoffs"]):
        click.echo(line)
    click.echo(f"written to {result['bundle']}/model.toml")


def register(group: click.Group) -> None:
    """Adds `train`, `evaluate` and `calibrate` to the top-level group."""
    group.add_command(train_cmd)
    group.add_command(evaluate_cmd)
    group.add_command(calibrate_cmd)
