"""`plantbot init` and `plantbot status` on a community's first day (no database, maybe no model yet)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.classifier import build_model, save_bundle
from bot.cli import main
from bot.config import PRESETS, load_config
from bot.domain import Label
from bot.store import current_revision
from bot.store.db import alembic_config


def head_revision(tmp_path: Path) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(tmp_path / "probe.sqlite3")).get_current_head()


@pytest.mark.parametrize("preset", list(PRESETS))
def test_init_writes_a_config_for_the_preset_and_a_migrated_database(tmp_path: Path, preset: str) -> None:
    out = tmp_path / "community" / "config.toml"
    result = CliRunner().invoke(main, ["init", "--preset", preset, "--out", str(out)])
    assert result.exit_code == 0, result.output
    cfg = load_config(out)
    assert cfg.platform.preset == preset and cfg.platform.flavor == PRESETS[preset]["flavor"]
    for key in ("site_url", "site_id", "photo_hosts"):  # the preset's values are not overridden by the example's
        if key in PRESETS[preset]:
            assert getattr(cfg.platform, key) == PRESETS[preset][key]
    assert cfg.posting.language == PRESETS[preset].get("language", "en")
    assert (cfg.platform.start, cfg.platform.quality_grade, cfg.posting.mode) == ("now", "needs_id", "review")
    text = out.read_text()
    example = (Path(__file__).resolve().parents[1] / "config.example.toml").read_text()
    assert text.count("#") >= example.count("#")  # every key and its comment is still there
    assert current_revision(cfg.database_path) == head_revision(tmp_path)
    assert "no bundle at" in result.output  # the model is checked, and missing here
    for command in ("whoami", "once --dry-run", "run", "serve"):
        assert f"plantbot --config {out} {command}" in result.output
    again = CliRunner().invoke(main, ["init", "--preset", preset, "--out", str(out)])
    assert again.exit_code == 1 and "--force" in again.output and out.read_text() == text


def test_init_loads_the_model_bundle_when_there_is_one(tmp_path: Path) -> None:
    labels = [Label(0, 1, "Aa aa", "species", 2, "Aa", 3, "Aaceae"), Label(1, 4, "Bb bb", "species", 5, "Bb", 3,
                                                                            "Aaceae")]
    save_bundle(tmp_path / "model", name="tiny", version="7", arch="resnet18", model=build_model("resnet18", 2),
                labels=labels, input_size=32, resize_size=32)
    result = CliRunner().invoke(main, ["init", "--out", str(tmp_path / "config.toml")])
    assert result.exit_code == 0, result.output
    assert "model: tiny 7 (2 labels)" in result.output


def test_status_on_a_missing_database_says_so_and_creates_nothing(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[store]\ndatabase = "nothing-here.sqlite3"\n')
    result = CliRunner().invoke(main, ["--config", str(config), "status"])
    assert result.exit_code == 1
    assert "no database yet" in result.output and "plantbot init" in result.output
    assert not (tmp_path / "nothing-here.sqlite3").exists()


def test_status_prints_words_not_python_values(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[platform]\nratelimit_path = "{tmp_path / "rl.sqlite3"}"\n[store]\ndatabase = "db.sqlite3"\n')
    assert CliRunner().invoke(main, ["--config", str(config), "db", "upgrade"]).exit_code == 0
    result = CliRunner().invoke(main, ["--config", str(config), "status"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for repr_only in ("None", "False", "True", "[]", "{}"):
        assert repr_only not in result.output
    assert "never" in result.output and "no" in result.output.split()  # last cycle; budget paused
    assert "not yet chosen (start = now" in result.output
    assert "does not load" in result.output  # no model bundle at ./model


def test_init_for_a_service_keeps_its_state_in_the_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "var-lib-plantbot"
    out = tmp_path / "etc" / "config.toml"
    result = CliRunner().invoke(main, ["init", "--out", str(out), "--state-dir", str(state)])
    assert result.exit_code == 0, result.output
    cfg = load_config(out)
    assert cfg.database_path == state / "plantbot.sqlite3" and cfg.database_path.exists()
    assert cfg.model_path == state / "model" and cfg.platform.ratelimit_path == str(state / "ratelimit.sqlite3")
    assert not list(out.parent.glob("*.sqlite3"))  # nothing written next to the config (/etc is read-only there)
