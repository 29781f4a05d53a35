"""Model bundles: a good one loads; each malformed one fails with one line naming the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from bot.classifier import LABELS_HEADER, Classifier, build_model, load_bundle, save_bundle
from bot.domain import Label
from bot.errors import BundleError

ARCH = "shufflenet_v2_x0_5"  # the smallest torchvision classifier: bundles of ~1.4 MB


def _labels(n: int = 3) -> list[Label]:
    return [Label(index=i, taxon_id=None if i == 2 else 100 + i, name=f"Species {i}", rank="species",
                  genus_taxon_id=10, genus="Genus", family_taxon_id=1, family="Family") for i in range(n)]


@pytest.fixture(scope="module")
def good_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("bundle") / "good"
    save_bundle(path, name="tiny", version="3", arch=ARCH, model=build_model(ARCH, 3), labels=_labels(),
                input_size=32, resize_size=40)
    return path


@pytest.fixture
def bundle_copy(good_bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(good_bundle, tmp_path / "b"))


def test_good_bundle_loads_with_its_metadata_and_labels(good_bundle: Path) -> None:
    b = load_bundle(good_bundle)
    assert (b.name, b.version, b.arch, b.weights) == ("tiny", "3", ARCH, "weights.pt")
    assert (b.input_size, b.resize_size) == (32, 40)
    assert b.mean == pytest.approx((0.485, 0.456, 0.406)) and b.std == pytest.approx((0.229, 0.224, 0.225))
    assert b.labels == _labels()
    assert b.labels[2].taxon_id is None  # an empty taxon_id cell is allowed
    assert (good_bundle / "labels.csv").read_text().splitlines()[0] == ",".join(LABELS_HEADER)


def test_safetensors_weights_are_accepted(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = build_model(ARCH, 3)
    b = save_bundle(tmp_path / "st", name="st", version="1", arch=ARCH, model=model, labels=_labels(),
                    input_size=32, resize_size=32, weights="weights.safetensors")
    clf = Classifier(b, device="cpu", threads=1)
    loaded = clf.model.state_dict()  # type: ignore[attr-defined]
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())


def _fails(path: Path, *fragments: str) -> str:
    with pytest.raises(BundleError) as info:
        load_bundle(path)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_missing_folder(tmp_path: Path) -> None:
    _fails(tmp_path / "nope", "nope", "not found")


@pytest.mark.parametrize("name", ["model.toml", "labels.csv", "weights.pt"])
def test_missing_file(bundle_copy: Path, name: str) -> None:
    (bundle_copy / name).unlink()
    _fails(bundle_copy, name, "not found")


def _edit_toml(path: Path, old: str, new: str) -> None:
    toml = path / "model.toml"
    text = toml.read_text()
    assert old in text
    toml.write_text(text.replace(old, new))


@pytest.mark.parametrize(("old", "new", "fragment"), [
    ('name = "tiny"', 'name = "tiny', "not valid TOML"),
    (f'arch = "{ARCH}"', 'arch = "resnet9000"', "resnet9000"),
    ("input_size = 32", 'input_size = "big"', "input_size"),
    ("mean = [", "mean = [1.0, ", "mean"),
    ("std = [", "std = [0.0, ", "std"),
    ('name = "tiny"', 'name = "tiny"\ncolour = "green"', "colour"),
    ('weights = "weights.pt"', 'weights = "../weights.pt"', "weights"),
])
def test_bad_model_toml(bundle_copy: Path, old: str, new: str, fragment: str) -> None:
    _edit_toml(bundle_copy, old, new)
    _fails(bundle_copy, "model.toml", fragment)


def test_weights_of_another_arch(bundle_copy: Path) -> None:
    _edit_toml(bundle_copy, f'arch = "{ARCH}"', 'arch = "resnet18"')
    _fails(bundle_copy, "weights.pt", "resnet18")


def test_wrong_number_of_outputs(bundle_copy: Path) -> None:
    csv = bundle_copy / "labels.csv"
    csv.write_text(csv.read_text() + "3,,Extra,species,,,,\n")
    _fails(bundle_copy, "weights.pt", "3 outputs", "4 rows")


def test_weights_file_that_is_not_a_state_dict(bundle_copy: Path) -> None:
    (bundle_copy / "weights.pt").write_bytes(b"definitely not a pickle")
    _fails(bundle_copy, "weights.pt", "cannot read weights")


def test_pickled_code_is_refused(bundle_copy: Path) -> None:
    torch.save({"fc.weight": torch.zeros(3, 3), "extra": Path("x")}, bundle_copy / "weights.pt")
    _fails(bundle_copy, "weights.pt")  # weights_only=True: arbitrary objects never unpickle


def _rewrite_labels(path: Path, lines: list[str]) -> None:
    (path / "labels.csv").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(("lines", "fragment"), [
    (["index,taxon,name,rank,genus_taxon_id,genus,family_taxon_id,family", "0,1,A,species,,,,"], "header"),
    ([",".join(LABELS_HEADER), "0,1,A,species,,,,", "1,2,B,species,,,", "2,3,C,species,,,,"], "line 3"),
    ([",".join(LABELS_HEADER), "0,x1,A,species,,,,", "1,2,B,species,,,,", "2,3,C,species,,,,"], "taxon_id"),
    ([",".join(LABELS_HEADER), "0,1,A,species,,,,", "2,2,B,species,,,,", "1,3,C,species,,,,"], "index 2"),
    ([",".join(LABELS_HEADER), "0,1,A,species,,,,", "1,2,,species,,,,", "2,3,C,species,,,,"], "name is empty"),
    ([",".join(LABELS_HEADER)], "no label rows"),
])
def test_bad_labels_csv(bundle_copy: Path, lines: list[str], fragment: str) -> None:
    _rewrite_labels(bundle_copy, lines)
    _fails(bundle_copy, "labels.csv", fragment)


def test_unknown_arch_in_build_model() -> None:
    with pytest.raises(BundleError, match="resnet9000"):
        build_model("resnet9000", 3)


def test_weights_in_the_legacy_torch_save_format_load(bundle_copy: Path) -> None:
    state = torch.load(bundle_copy / "weights.pt", weights_only=True)
    torch.save(state, bundle_copy / "weights.pt", _use_new_zipfile_serialization=False)
    assert load_bundle(bundle_copy).name == "tiny"
