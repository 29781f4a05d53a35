"""The torchvision decode path (nvjpeg on a GPU), run here on the CPU: same answers, same failures."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bot.classifier import Classifier, ModelBundle
from bot.classifier.tensor_decode import decode_batch, orient, read_header
from bot.domain import Label
from bot.imaging import ImageDecodeError, decode_image
from tests.support.designed_model import build_designed_bundle, make_prototypes

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelBundle, list[bytes], np.ndarray]:
    protos = make_prototypes(5, seed=21)
    targets = np.random.default_rng(2).dirichlet(np.ones(4), size=5)
    labels = [Label(index=i, taxon_id=i + 1, name=f"S{i}") for i in range(4)]
    return build_designed_bundle(tmp_path_factory.mktemp("d") / "b", labels, protos, targets), protos, targets


def _jpeg_with_orientation(orientation: int) -> bytes:
    img = Image.new("RGB", (40, 24), (200, 30, 30))
    img.paste((20, 200, 20), (0, 0, 10, 6))  # a marker in one corner shows any flip or turn
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, exif=exif.tobytes())
    return buf.getvalue()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow(orientation: int) -> None:
    data = _jpeg_with_orientation(orientation)
    header = read_header(data)
    assert header.is_jpeg and header.orientation == orientation
    ours = orient(decode_batch([data], torch.device("cpu"))[0], orientation)  # type: ignore[arg-type]
    pillow = torch.from_numpy(np.array(decode_image(data))).permute(2, 0, 1)
    assert ours.shape == pillow.shape
    assert (ours.int() - pillow.int()).abs().max() <= 2


def test_device_decode_gives_the_designed_answers(setup: tuple[ModelBundle, list[bytes], np.ndarray]) -> None:
    bundle, protos, targets = setup
    clf = Classifier(bundle, device="cpu", threads=1, batch_size=2, decode="torchvision")
    pillow = Classifier(bundle, device="cpu", threads=1, batch_size=2)
    probs = clf.predict_photos(protos)
    np.testing.assert_allclose(probs, pillow.predict_photos(protos), atol=2e-3)
    assert (probs.argmax(axis=1) == targets.argmax(axis=1)).all()


def test_device_decode_failures_and_other_formats(setup: tuple[ModelBundle, list[bytes], np.ndarray]) -> None:
    bundle, protos, _ = setup
    png = io.BytesIO()
    Image.open(io.BytesIO(protos[1])).save(png, "PNG")
    photos: dict[int, list[Image.Image | bytes]] = {
        1: [protos[0], protos[2][:200], png.getvalue()], 2: [b"nope"], 3: [decode_image(protos[3])]}
    clf = Classifier(bundle, device="cpu", threads=1, batch_size=8, decode="torchvision")
    preds = clf.predict_observations(photos)
    first = preds[1]
    assert first is not None and first.n_photos == 2  # the JPEG and the PNG; the truncated JPEG failed
    assert preds[2] is None
    assert preds[3] is not None and preds[3].n_photos == 1
    assert set(clf.last_errors) == {(1, 1), (2, 0)}
    expected = Classifier(bundle, device="cpu", threads=1).predict_photos([protos[0], protos[1]]).mean(axis=0)
    np.testing.assert_allclose(first.probs, expected, atol=2e-3)


def test_tencrop_on_device_path(setup: tuple[ModelBundle, list[bytes], np.ndarray]) -> None:
    bundle, protos, _ = setup
    a = Classifier(bundle, device="cpu", threads=1, batch_size=20, tencrop=True, decode="torchvision")
    b = Classifier(bundle, device="cpu", threads=1, batch_size=20, tencrop=True)
    np.testing.assert_allclose(a.predict_photos(protos[:3]), b.predict_photos(protos[:3]), atol=2e-3)


def test_header_refuses_bombs_and_junk(tmp_path: Path) -> None:
    with pytest.raises(ImageDecodeError) as info:
        read_header(_jpeg_with_orientation(1), max_pixels=100)
    assert info.value.kind == "too_large"
    with pytest.raises(ImageDecodeError):
        read_header(b"<html>")
