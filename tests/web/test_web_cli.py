"""`plantbot serve`: refuses configs nobody could sign in with; run, it signs a moderator in on either flavor."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from click.testing import CliRunner

from bot.cli import main
from tests.web.review_ui_helpers import MODERATOR, PASSWORD


def write_config(tmp_path: Path, review: str, platform: str = "") -> Path:
    path = tmp_path / "plantbot.toml"
    path.write_text(f'[store]\ndatabase = "db.sqlite3"\n[review]\n{review}\n[platform]\n{platform}\n',
                    encoding="utf-8")
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


@pytest.mark.parametrize("flavor", ["inat-v1", "legacy"])
def test_serve_runs_the_app_and_a_moderator_signs_in(tmp_path: Path, sim: Any, flavor: str) -> None:
    """`plantbot serve` as a process, against either API flavor: the sign-in page, the platform's OAuth
    round trip and the (empty) queue of a signed-in moderator."""
    cfg = write_config(tmp_path, f'moderators = ["{MODERATOR}"]\noauth_client_id = "plantbot-review-test"',
                       platform=f'flavor = "{flavor}"\napi_url = "{sim.api_url}"\nsite_url = "{sim.url}"\n'
                                f'ratelimit_path = "{tmp_path / "ratelimit.sqlite3"}"')
    env = {**os.environ, "PLANTBOT_SECRET_KEY": "k" * 32}
    proc = subprocess.Popen([sys.executable, "-m", "bot", "--config", str(cfg), "serve", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert found, line + (proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        base = found.group(0)
        browser = requests.Session()
        page = browser.get(f"{base}signin", timeout=10)
        assert page.status_code == 200 and f"Sign in with {sim.url}" in page.text
        assert browser.get(base, timeout=10, allow_redirects=False).status_code == 302
        assert (tmp_path / "db.sqlite3").exists()
        authorize = browser.get(f"{base}login", timeout=10, allow_redirects=False).headers["Location"]
        assert authorize.startswith(f"{sim.url}/oauth/authorize?")
        fields = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
        answer = requests.post(authorize.split("?", 1)[0], timeout=10, allow_redirects=False,
                               data={**fields, "login": MODERATOR, "password": PASSWORD})
        assert answer.status_code == 302, answer.text
        back = urlsplit(answer.headers["Location"])
        signed_in = browser.get(f"{base}{back.path.lstrip('/')}?{back.query}", timeout=10)
        assert signed_in.status_code == 200 and MODERATOR in signed_in.text
        assert browser.get(base, timeout=10, allow_redirects=False).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
