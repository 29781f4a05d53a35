"""`plantbot serve`: refuses configs nobody could sign in with, and serves the sign-in page when run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import requests
from click.testing import CliRunner

from bot.cli import main


def write_config(tmp_path: Path, review: str) -> Path:
    path = tmp_path / "plantbot.toml"
    path.write_text(f'[store]\ndatabase = "db.sqlite3"\n[review]\n{review}\n', encoding="utf-8")
    return path


def test_serve_refuses_a_config_without_moderators(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, 'oauth_client_id = "abc"')
    result = CliRunner().invoke(main, ["--config", str(cfg), "serve"])
    assert result.exit_code == 2
    assert "[review] moderators" in result.output and len(result.output.strip().splitlines()) == 1


def test_serve_refuses_a_config_without_an_oauth_client(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, 'moderators = ["moderator"]')
    result = CliRunner().invoke(main, ["--config", str(cfg), "serve"])
    assert result.exit_code == 2 and "[review] oauth_client_id" in result.output


def test_serve_runs_the_app(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, 'moderators = ["moderator"]\noauth_client_id = "abc"')
    env = {**os.environ, "PLANTBOT_SECRET_KEY": "k" * 32}
    proc = subprocess.Popen([sys.executable, "-m", "bot", "--config", str(cfg), "serve", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert found, line + (proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        base = found.group(0)
        page = requests.get(f"{base}signin", timeout=10)
        assert page.status_code == 200 and "Sign in with" in page.text
        assert requests.get(base, timeout=10, allow_redirects=False).status_code == 302
        assert (tmp_path / "db.sqlite3").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
