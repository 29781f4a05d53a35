"""Custom post templates are rendered in Jinja's sandbox: one that reaches for Python internals is refused
at start-up (`config check`, exit 2, one line) and never runs anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.config import load_config
from bot.errors import UsageError
from bot.texts import check_templates
from tests.test_cli import _good_bundle

ESCAPES = {
    "globals": "{{ cycler.__init__.__globals__.os.system('touch ' ~ marker) }}",
    "mro": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "format": "{{ '{0.__class__}'.format(taxon_name) }}",
}


def write(tmp_path: Path, body: str) -> Path:
    templates = tmp_path / "templates" / "en"
    templates.mkdir(parents=True)
    (templates / "comment.j2").write_text(body.replace("marker", repr(str(tmp_path / "pwned"))), encoding="utf-8")
    bundle = _good_bundle(tmp_path / "bundle")
    config = tmp_path / "c.toml"
    config.write_text(f'[model]\npath = "{bundle}"\n[posting]\ntemplates_dir = "templates"\n'
                      f'[store]\ndatabase = "{tmp_path / "db.sqlite3"}"\n')
    return config


@pytest.mark.parametrize("name", list(ESCAPES))
def test_a_template_breaking_the_sandbox_is_refused_by_config_check(tmp_path: Path, name: str) -> None:
    config = write(tmp_path, ESCAPES[name])
    result = CliRunner().invoke(main, ["--config", str(config), "config", "check"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "comment.j2" in lines[0], result.output
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(UsageError):
        check_templates(load_config(config))


def test_an_ordinary_custom_template_still_works(tmp_path: Path) -> None:
    config = write(tmp_path, "{{ taxon_name }} ({{ percent }}) {{ 'reviewed' if reviewed else 'auto' }}")
    result = CliRunner().invoke(main, ["--config", str(config), "config", "check"])
    assert result.exit_code == 0, result.output
