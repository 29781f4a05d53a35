"""Text from the platform reaches the operator's terminal as text: never as rich markup, links or control codes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from bot.classifier import build_model, save_bundle
from bot.cli import main
from bot.sim.faults import FaultPlan
from bot.sim.server import SimServer
from bot.sim.world import WorldSpec, labels_for, make_world

HOSTILE = "[/] [link=https://evil.example/x]click me[/link] \x1b[2J\x1b]8;;https://evil.example\x07"


@pytest.mark.parametrize(("flavor", "poll"), [("inat-v1", "/v1/observations"), ("legacy", "/observations.json")])
def test_a_platform_error_with_markup_is_printed_as_text_by_once_and_status(tmp_path: Path, flavor: str,
                                                                            poll: str) -> None:
    torch.manual_seed(0)
    world, species = make_world(WorldSpec(families=1, genera_per_family=1, species_per_genus=2, observations=3,
                                          photo_size=(48, 36), seed=1))
    labels = labels_for(species)
    bundle = save_bundle(tmp_path / "bundle", name="t", version="1", arch="resnet18",
                         model=build_model("resnet18", len(labels)), labels=labels, input_size=32, resize_size=32)
    plan = FaultPlan.parse([f"GET {poll}=status:422::{HOSTILE}"])
    with SimServer(world, faults=plan) as sim:
        config = tmp_path / "c.toml"
        config.write_text(f'[platform]\nflavor = "{flavor}"\napi_url = "{sim.api_url}"\nsite_url = "{sim.url}"\n'
                          f'requests_per_second = 50.0\nratelimit_path = "{tmp_path / "rl.sqlite3"}"\n'
                          f'[model]\npath = "{bundle.path}"\n[posting]\nmode = "dry-run"\n'
                          f'[store]\ndatabase = "{tmp_path / "db.sqlite3"}"\n')
        once = CliRunner().invoke(main, ["--config", str(config), "once"])
    assert once.exception is None or isinstance(once.exception, SystemExit), once.exception
    assert once.exit_code == 1  # the cycle failed (HTTP 422): said so, not a crash
    assert "[/] [link=https://evil.example/x]click me[/link]" in " ".join(once.output.split())
    status = CliRunner().invoke(main, ["--config", str(config), "status"])
    assert status.exit_code == 0, status.output
    assert "[link=https://evil.example/x]click me[/link]" in " ".join(status.output.split())
    for output in (once.output, status.output):
        assert "\x1b" not in output and "\x07" not in output
