"""Batched inference: known answers, per-observation averaging, batching invariance, failures, OOM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bot.classifier import Classifier, ModelBundle, decode_photo, reference_predict
from bot.domain import Label
from tests.support.designed_model import build_designed_bundle, make_prototypes

torch.set_num_threads(1)

N_LABELS = 5
N_PROTOS = 6


@pytest.fixture(scope="module")
def prototypes() -> list[bytes]:
    return make_prototypes(N_PROTOS, seed=3)


@pytest.fixture(scope="module")
def targets() -> np.ndarray:
    rng = np.random.default_rng(7)
    t = rng.dirichlet(np.full(N_LABELS, 0.7), size=N_PROTOS)
    t[0] = [0.9, 0.04, 0.03, 0.02, 0.01]  # a confident photo next to vaguer ones
    return t


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, prototypes: list[bytes], targets: np.ndarray) -> ModelBundle:
    labels = [Label(index=i, taxon_id=1000 + i, name=f"Plantus {i}") for i in range(N_LABELS)]
    return build_designed_bundle(tmp_path_factory.mktemp("designed") / "b", labels, prototypes, targets)


def _classifier(bundle: ModelBundle, **kw: object) -> Classifier:
    return Classifier(bundle, device="cpu", threads=1, **kw)  # type: ignore[arg-type]


def test_designed_bundle_gives_the_designed_answer(bundle: ModelBundle, prototypes: list[bytes],
                                                   targets: np.ndarray) -> None:
    probs = _classifier(bundle, batch_size=4, workers=2).predict_photos(prototypes)
    assert probs.shape == (N_PROTOS, N_LABELS)
    np.testing.assert_allclose(probs, targets, atol=1e-4)
    assert (probs.argmax(axis=1) == targets.argmax(axis=1)).all()


def test_designed_bundle_works_on_larger_photos_decoded_with_draft(tmp_path: Path) -> None:
    protos = make_prototypes(4, size=(500, 375), seed=11)  # 375 / 64 > 4: libjpeg decodes at 1/4 scale
    t = np.random.default_rng(0).dirichlet(np.ones(3), size=4)
    labels = [Label(index=i, taxon_id=i + 1, name=f"S{i}") for i in range(3)]
    b = build_designed_bundle(tmp_path / "b", labels, protos, t, seed=5)
    np.testing.assert_allclose(_classifier(b).predict_photos(protos), t, atol=1e-4)


def test_observation_average_is_the_mean_of_its_photos(bundle: ModelBundle, prototypes: list[bytes],
                                                       targets: np.ndarray) -> None:
    preds = _classifier(bundle).predict_observations({42: [prototypes[0], prototypes[1]]})
    pred = preds[42]
    assert pred is not None and pred.observation_id == 42 and pred.n_photos == 2
    reference = reference_predict(bundle, [decode_photo(p, bundle) for p in prototypes[:2]])
    np.testing.assert_allclose(pred.probs, reference.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(pred.probs, (targets[0] + targets[1]) / 2, atol=1e-4)
    assert sum(pred.probs) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_batching_across_observations_equals_the_reference(bundle: ModelBundle, prototypes: list[bytes],
                                                            batch_size: int) -> None:
    # Observations of 1-4 photos, some photos shared, batches that straddle observations.
    layout = {10: [0], 11: [1, 2, 3], 12: [4, 5], 13: [5, 0, 2, 1], 14: [3]}
    photos = {obs: [prototypes[k] for k in ks] for obs, ks in layout.items()}
    clf = _classifier(bundle, batch_size=batch_size, workers=2)
    preds = clf.predict_observations(photos)
    ref = reference_predict(bundle, [decode_photo(p, bundle) for p in prototypes])
    assert list(preds) == list(layout)
    for obs, ks in layout.items():
        pred = preds[obs]
        assert pred is not None and pred.n_photos == len(ks)
        np.testing.assert_allclose(pred.probs, ref[ks].mean(axis=0), atol=1e-5)
    assert clf.last_errors == {}


def test_pil_images_and_bytes_give_the_same_probabilities(bundle: ModelBundle, prototypes: list[bytes]) -> None:
    clf = _classifier(bundle)
    images = [decode_photo(p, bundle) for p in prototypes]
    np.testing.assert_allclose(clf.predict_photos(images), clf.predict_photos(prototypes), atol=1e-6)


def test_failed_photo_is_left_out_of_the_average(bundle: ModelBundle, prototypes: list[bytes]) -> None:
    corrupt = prototypes[2][: len(prototypes[2]) // 3]  # a truncated JPEG
    photos = {1: [prototypes[0], b"<html>not a photo</html>", prototypes[1]], 2: [corrupt, b""], 3: [prototypes[3]]}
    clf = _classifier(bundle, batch_size=2)
    preds = clf.predict_observations(photos)
    ref = reference_predict(bundle, [decode_photo(p, bundle) for p in prototypes[:4]])
    first = preds[1]
    assert first is not None and first.n_photos == 2
    np.testing.assert_allclose(first.probs, ref[[0, 1]].mean(axis=0), atol=1e-5)
    assert preds[2] is None  # no photo loaded: no prediction
    third = preds[3]
    assert third is not None
    np.testing.assert_allclose(third.probs, ref[3], atol=1e-5)
    assert set(clf.last_errors) == {(1, 1), (2, 0), (2, 1)}
    assert all(msg and "\n" not in msg for msg in clf.last_errors.values())


def test_predict_photos_marks_failed_rows(bundle: ModelBundle, prototypes: list[bytes]) -> None:
    clf = _classifier(bundle)
    probs = clf.predict_photos([prototypes[0], b"junk"])
    assert np.isnan(probs[1]).all() and not np.isnan(probs[0]).any()
    assert list(clf.last_errors) == [(0, 1)]


class OomAbove(torch.nn.Module):
    """Stands in for a GPU that runs out of memory on batches larger than `limit`."""

    def __init__(self, inner: torch.nn.Module, limit: int) -> None:
        super().__init__()
        self.inner, self.limit = inner, limit
        self.sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(x.shape[0])
        if x.shape[0] > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.inner(x)


def test_out_of_memory_halves_the_batch_and_goes_on(bundle: ModelBundle, prototypes: list[bytes]) -> None:
    clf = _classifier(bundle, batch_size=8)
    fake = OomAbove(clf.model, limit=3)  # type: ignore[arg-type]
    clf.model = fake
    photos = [prototypes[i % N_PROTOS] for i in range(11)]
    probs = clf.predict_photos(photos)
    ref = reference_predict(bundle, [decode_photo(p, bundle) for p in photos])
    np.testing.assert_allclose(probs, ref, atol=1e-5)
    assert clf.batch_size == 2  # 8 -> 4 -> 2, then kept for later batches
    assert fake.sizes[:3] == [8, 4, 2] and max(fake.sizes[3:]) <= 2


def test_out_of_memory_at_batch_one_is_raised(bundle: ModelBundle, prototypes: list[bytes]) -> None:
    clf = _classifier(bundle, batch_size=4)
    clf.model = OomAbove(clf.model, limit=0)  # type: ignore[arg-type]
    with pytest.raises(torch.cuda.OutOfMemoryError):
        clf.predict_photos(prototypes[:2])


def test_tencrop_preprocess_shape_and_average(bundle: ModelBundle, prototypes: list[bytes]) -> None:
    clf = _classifier(bundle, tencrop=True, batch_size=25)
    x = clf.preprocess(decode_photo(prototypes[0], bundle))
    assert x.shape == (10, 3, bundle.input_size, bundle.input_size)
    probs = clf.predict_photos(prototypes[:3])
    assert probs.shape == (3, N_LABELS)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    for k in range(3):  # each photo's row is the mean of its ten crops' softmax
        crops = clf.preprocess(decode_photo(prototypes[k], bundle))
        with torch.inference_mode():
            expected = torch.softmax(clf.model(crops), dim=1).mean(dim=0).numpy()
        np.testing.assert_allclose(probs[k], expected, atol=1e-5)


def test_preprocess_keeps_aspect_and_centre_crops(bundle: ModelBundle) -> None:
    from PIL import Image

    # A wide image, red but for a green middle band that the centre crop must see alone.
    img = Image.new("RGB", (300, 100), (255, 0, 0))
    img.paste((0, 255, 0), (90, 0, 210, 100))
    x = _classifier(bundle).preprocess(img)
    assert x.shape == (3, bundle.input_size, bundle.input_size)
    green = (1.0 - bundle.mean[1]) / bundle.std[1]
    no_red = (0.0 - bundle.mean[0]) / bundle.std[0]
    assert torch.allclose(x[1], torch.full_like(x[1], green), atol=0.05)
    assert torch.allclose(x[0], torch.full_like(x[0], no_red), atol=0.05)


def test_no_photos_at_all(bundle: ModelBundle) -> None:
    clf = _classifier(bundle)
    assert clf.predict_observations({}) == {}
    assert clf.predict_observations({5: []}) == {5: None}
    assert clf.predict_photos([]).shape == (0, N_LABELS)


def test_unexpected_error_in_one_photo_only_fails_that_photo(bundle: ModelBundle, prototypes: list[bytes],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    clf = _classifier(bundle, workers=2)
    crops = clf._crops
    bad = decode_photo(prototypes[1], bundle)

    def flaky(image: object) -> torch.Tensor:
        if image is bad:
            raise RuntimeError("odd\nphoto")
        return crops(image)  # type: ignore[arg-type]

    monkeypatch.setattr(clf, "_crops", flaky)
    preds = clf.predict_observations({1: [prototypes[0], bad]})
    assert preds[1] is not None and preds[1].n_photos == 1
    assert clf.last_errors == {(1, 1): "RuntimeError: odd photo"}
