"""`[model] dtype = "auto"`: bfloat16 only where the CPU has native bf16, and the choice is on record."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sqlalchemy import select

from bot.classifier import Classifier, build_model, has_native_bf16, read_cpu_flags, resolve_dtype, save_bundle
from bot.config import ConfigError, config_from_dict
from bot.cycle import run_cycle
from bot.domain import RunMode
from bot.platforms import create_platform
from bot.sim.server import SimServer
from bot.sim.world import WorldSpec, labels_for, make_world
from bot.store import Store
from bot.store.models import CycleRow
from tests.support.designed_model import make_prototypes
from tests.support.simconfig import sim_config

CPU = torch.device("cpu")
SAPPHIRE_RAPIDS = {"fpu", "avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile"}
SKYLAKE = {"fpu", "avx2", "avx512f", "avx512bw", "avx512_vnni"}


def test_auto_is_bfloat16_only_on_a_cpu_with_native_bf16() -> None:
    assert resolve_dtype("auto", CPU, SAPPHIRE_RAPIDS) == "bfloat16"
    assert resolve_dtype("auto", CPU, {"avx512_bf16"}) == "bfloat16"
    assert resolve_dtype("auto", CPU, {"amx_bf16"}) == "bfloat16"
    assert resolve_dtype("auto", CPU, SKYLAKE) == "float32"  # AVX-512 alone only emulates bf16: slower
    assert resolve_dtype("auto", CPU, set()) == "float32"
    assert resolve_dtype("auto", torch.device("mps"), SAPPHIRE_RAPIDS) == "float32"


def test_an_explicit_dtype_is_kept_whatever_the_cpu() -> None:
    assert resolve_dtype("float32", CPU, SAPPHIRE_RAPIDS) == "float32"
    assert resolve_dtype("bfloat16", CPU, SKYLAKE) == "bfloat16"
    with pytest.raises(ValueError, match="half"):
        resolve_dtype("half", CPU, SKYLAKE)


def test_auto_on_cuda_follows_the_gpu() -> None:
    cuda = torch.device("cuda")
    assert resolve_dtype("auto", cuda, cuda_bf16=lambda: True) == "bfloat16"
    assert resolve_dtype("auto", cuda, cuda_bf16=lambda: False) == "float16"


def test_cpu_flags_come_from_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\n"
                    "flags\t\t: fpu avx512f avx512_bf16 amx_tile\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert read_cpu_flags(info) == {"fpu", "avx512f", "avx512_bf16", "amx_tile"}
    assert has_native_bf16(read_cpu_flags(info))
    assert read_cpu_flags(tmp_path / "missing") == frozenset()  # not Linux: no flags, so float32
    info.write_text("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+ (Sapphire Rapids)\n"
                    "flags\t\t: fpu avx2\n")
    assert not has_native_bf16(read_cpu_flags(info))  # the model name is never trusted


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    world, species = make_world(WorldSpec(families=2, genera_per_family=1, species_per_genus=2, observations=12,
                                          photos_per_observation=(1, 2), photo_size=(64, 48), seed=4))
    labels = labels_for(species)
    return save_bundle(tmp_path_factory.mktemp("b") / "bundle", name="tiny", version="1", arch="resnet18",
                       model=build_model("resnet18", len(labels)), labels=labels, input_size=32, resize_size=32)


def test_the_classifier_runs_in_the_chosen_dtype_close_to_float32(bundle) -> None:  # type: ignore[no-untyped-def]
    fp32 = Classifier(bundle, device="cpu", threads=1, dtype="auto", cpu_flags=frozenset(SKYLAKE))
    bf16 = Classifier(bundle, device="cpu", threads=1, dtype="auto", cpu_flags=frozenset(SAPPHIRE_RAPIDS))
    assert (fp32.dtype_name, fp32.dtype) == ("float32", torch.float32)
    assert (bf16.dtype_name, bf16.dtype) == ("bfloat16", torch.bfloat16)
    photos = make_prototypes(6, size=(64, 48))
    a, b = fp32.predict_photos(photos), bf16.predict_photos(photos)
    assert b.dtype == np.float64 and np.allclose(b.sum(axis=1), 1.0)
    assert 0 < np.abs(a - b).max() < 0.05  # bf16 really ran (not bit-equal), and stays close


def test_config_defaults_to_auto_and_rejects_unknown_dtypes() -> None:
    assert config_from_dict({}).model.dtype == "auto"
    assert config_from_dict({"model": {"dtype": "bfloat16"}}).model.dtype == "bfloat16"
    with pytest.raises(ConfigError, match=r"\[model\] dtype: 'int8' is not auto, float32, bfloat16 or float16"):
        config_from_dict({"model": {"dtype": "int8"}})


def test_each_cycle_records_the_classifier_dtype(bundle, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    world, _ = make_world(WorldSpec(families=2, genera_per_family=1, species_per_genus=2, observations=4,
                                    photos_per_observation=(1, 1), photo_size=(64, 48), seed=4))
    with SimServer(world) as sim:
        cfg = sim_config(tmp_path, sim, bundle.path)
        store = Store(cfg.database_path)
        try:
            for flags in (SAPPHIRE_RAPIDS, SKYLAKE):
                clf = Classifier(bundle, device="cpu", threads=1, dtype=cfg.model.dtype, cpu_flags=frozenset(flags))
                platform = create_platform(cfg, dry_run=True)
                try:
                    summary = run_cycle(cfg, store, platform, clf, mode=RunMode.DRY_RUN)
                finally:
                    platform.close()
                assert summary.dtype == clf.dtype_name
            with store.session() as s:
                assert list(s.scalars(select(CycleRow.dtype).order_by(CycleRow.id))) == ["bfloat16", "float32"]
        finally:
            store.close()
