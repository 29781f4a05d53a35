"""`plantbot train --init BUNDLE`: a fine-tune keeps the bundle's labels, order and all, and its weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from bot.classifier import build_model, load_bundle, save_bundle
from bot.classifier.bundle import read_weights, write_labels
from bot.cli import main
from bot.domain import Label
from bot.sim.world import WorldSpec, labels_for, make_taxonomy, render_photo
from bot.training.train import TrainOptions, next_version, train

torch.set_num_threads(1)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, list[Label]]:
    _, species = make_taxonomy(WorldSpec(families=1, genera_per_family=1, species_per_genus=3, seed=2))
    labels = labels_for(species)[::-1]  # not in taxonomic order: the order must survive as it is
    labels = [Label(i, lab.taxon_id, lab.name, lab.rank, lab.genus_taxon_id, lab.genus, lab.family_taxon_id,
                    lab.family) for i, lab in enumerate(labels)]
    torch.manual_seed(0)
    save_bundle(tmp_path / "v1", name="fam", version="3", arch="resnet18", model=build_model("resnet18", 3),
                labels=labels, input_size=32, resize_size=36)
    import random

    rng = random.Random(0)
    (tmp_path / "photos").mkdir()
    lines = ["path,label,observation_id"]
    for i, sp in enumerate(species[:2]):  # only two of the three species reviewed
        (tmp_path / "photos" / f"{i}.jpg").write_bytes(render_photo(sp, rng, (48, 36)))
        lines.append(f"photos/{i}.jpg,{sp.name},{i}")
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    return tmp_path / "v1", tmp_path / "train.csv", labels


def test_fine_tune_keeps_labels_arch_and_size_and_starts_from_the_weights(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    v1, manifest, labels = setup
    result = CliRunner().invoke(main, ["train", str(manifest), "--init", str(v1), "--out", str(tmp_path / "v2"),
                                       "--epochs", "1", "--batch-size", "2", "--workers", "0", "--device", "cpu",
                                       "--no-progress", "--lr", "1e-9"])
    assert result.exit_code == 0, result.output
    v2 = load_bundle(tmp_path / "v2")
    assert (v2.name, v2.version, v2.arch, v2.input_size) == ("fam", "4", "resnet18", 32)
    assert v2.labels == labels
    old, new = read_weights(v1 / "weights.pt"), read_weights(tmp_path / "v2" / "weights.pt")
    head = "fc.weight"
    assert torch.allclose(old[head], new[head], atol=1e-5)  # started from v1's head, not a fresh one


def test_init_bundle_refuses_other_labels_and_its_own_version(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    v1, manifest, labels = setup
    other = tmp_path / "other.csv"
    write_labels(other, [*labels[1:], labels[0]])
    opts = TrainOptions(manifest=manifest, labels=other, out=tmp_path / "x", init=v1, epochs=1, workers=0,
                        device="cpu", progress=False, name="fam", version="9")
    with pytest.raises(Exception, match="differs from the labels of --init"):
        train(opts)
    same = TrainOptions(manifest=manifest, labels=v1 / "labels.csv", out=tmp_path / "x", init=v1, epochs=1,
                        workers=0, device="cpu", progress=False, name="fam", version="3")
    with pytest.raises(Exception, match="give a new one"):
        train(same)
    assert (next_version("3"), next_version("v1")) == ("4", "v1.1")
