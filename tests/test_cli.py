"""The CLI layer: every command documents itself, and bad input is one line with exit status 2."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from bot.cli import main


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
