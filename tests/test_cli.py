"""The CLI layer: every command documents itself, and bad input is one line with exit status 2."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from bot.cli import log_level, main


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        path = (*prefix, name)
        found.append(path)
        if isinstance(command, click.Group):
            found.extend(all_commands(command, path))
    return found


COMMANDS = all_commands(main)


def test_the_core_commands_exist() -> None:
    for path in [("db", "upgrade"), ("once",), ("sim",), ("config", "check")]:
        assert path in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    assert command.help and command.help.strip(), f"{' '.join(path)} has no help text"


def test_bad_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[decision]\ncutoff = 'x'\n")
    result = CliRunner().invoke(main, ["--config", str(config), "once", "--dry-run"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "[decision] cutoff" in lines[0]


def test_missing_model_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[model]\npath = "absent"\n[store]\ndatabase = "{tmp_path / "db.sqlite3"}"\n')
    result = CliRunner().invoke(main, ["--config", str(config), "once", "--dry-run"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "[model] path" in lines[0]


def test_db_upgrade_creates_the_database(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[store]\ndatabase = "data/pb.sqlite3"\n')
    result = CliRunner().invoke(main, ["--config", str(config), "db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "data" / "pb.sqlite3").exists()
    result = CliRunner().invoke(main, ["--config", str(config), "db", "current"])
    assert result.output.strip() != "base (empty)"


def _bundle_config(tmp_path: Path, bundle: Path) -> Path:
    config = tmp_path / "c.toml"
    config.write_text(f'[model]\npath = "{bundle}"\n[store]\ndatabase = "{tmp_path / "db.sqlite3"}"\n')
    return config


def _good_bundle(folder: Path) -> Path:
    import torch

    from bot.classifier import build_model, save_bundle
    from bot.domain import Label

    torch.manual_seed(0)
    labels = [Label(0, 1, "A a", "species", 10, "A", 100, "Aceae"),
              Label(1, 2, "B b", "species", 20, "B", 100, "Aceae")]
    save_bundle(folder, name="t", version="1", arch="resnet18", model=build_model("resnet18", 2), labels=labels,
                input_size=32, resize_size=32)
    return folder


BUNDLE_BREAKERS = {
    "no model.toml": lambda b: (b / "model.toml").unlink(),
    "no labels.csv": lambda b: (b / "labels.csv").unlink(),
    "no weights": lambda b: (b / "weights.pt").unlink(),
    "bad toml": lambda b: (b / "model.toml").write_text("name = [\n"),
    "unknown arch": lambda b: (b / "model.toml").write_text(
        (b / "model.toml").read_text().replace('"resnet18"', '"resnet9000"')),
    "bad labels header": lambda b: (b / "labels.csv").write_text("idx,name\n0,A a\n1,B b\n"),
    "wrong output count": lambda b: (b / "labels.csv").write_text(
        (b / "labels.csv").read_text() + "2,3,C c,species,30,C,100,Aceae\n"),
    "weights not a state dict": lambda b: (b / "weights.pt").write_bytes(b"not a torch file"),
}


@pytest.mark.parametrize("case", list(BUNDLE_BREAKERS))
def test_bad_bundle_is_one_line_and_exit_2(tmp_path: Path, case: str) -> None:
    bundle = _good_bundle(tmp_path / "bundle")
    config = _bundle_config(tmp_path, bundle)
    ok = CliRunner().invoke(main, ["--config", str(config), "config", "check"])
    assert ok.exit_code == 0, ok.output
    BUNDLE_BREAKERS[case](bundle)
    result = CliRunner().invoke(main, ["--config", str(config), "config", "check"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output


def test_auto_mode_without_opt_in_refuses_before_recording_anything(tmp_path: Path) -> None:
    bundle = _good_bundle(tmp_path / "bundle")
    config = tmp_path / "c.toml"
    config.write_text(f'[model]\npath = "{bundle}"\n[posting]\nmode = "auto"\n'
                      f'[store]\ndatabase = "{tmp_path / "db.sqlite3"}"\n')
    result = CliRunner().invoke(main, ["--config", str(config), "once"])
    assert result.exit_code == 2
    assert "allow_unreviewed" in result.output
    assert not (tmp_path / "db.sqlite3").exists()


def test_quiet_shows_errors_only_and_verbose_adds_detail() -> None:
    import logging

    assert log_level(0, False) == logging.WARNING
    assert log_level(0, True) == logging.ERROR and log_level(2, True) == logging.ERROR
    assert log_level(1, False) == logging.INFO and log_level(2, False) == logging.DEBUG
