"""`plantbot whoami` checks the credentials from the environment."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from bot.cli import main
from bot.sim.server import SimServer
from tests.platforms.conftest import BOT_LOGIN, BOT_PASSWORD
from tests.support.simconfig import write_sim_config


def _config(tmp_path: Path, sim: SimServer, flavor: str = "inat-v1") -> str:
    return str(write_sim_config(tmp_path / "config.toml", api_url=sim.api_url, site_url=sim.url, state=tmp_path,
                                sections={"platform": {"flavor": flavor, "requests_per_second": 100.0,
                                                       "max_retries": 1}}))


def test_whoami_with_a_token_and_with_the_password_grant(sim: SimServer, tmp_path: Path) -> None:
    cfg = _config(tmp_path, sim)
    jwt = sim.issue_jwt(BOT_LOGIN)
    result = CliRunner().invoke(main, ["--config", cfg, "whoami"], env={"PLANTBOT_API_TOKEN": jwt})
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{BOT_LOGIN} (user id 2)") and jwt not in result.output
    env = {"PLANTBOT_API_TOKEN": "", "INAT_APP_ID": "app", "INAT_APP_SECRET": "s", "INAT_USERNAME": BOT_LOGIN,
           "INAT_PASSWORD": BOT_PASSWORD}
    legacy = CliRunner().invoke(main, ["--config", _config(tmp_path, sim, "legacy"), "whoami"], env=env)
    assert legacy.exit_code == 0 and legacy.output.startswith(BOT_LOGIN), legacy.output


def test_whoami_refused_is_one_line(sim: SimServer, tmp_path: Path) -> None:
    env = {"PLANTBOT_API_TOKEN": "", "INAT_APP_ID": "app", "INAT_APP_SECRET": "s", "INAT_USERNAME": BOT_LOGIN,
           "INAT_PASSWORD": "wrong-password"}
    result = CliRunner().invoke(main, ["--config", _config(tmp_path, sim), "whoami"], env=env)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("Error:") and "401" in lines[0]
    assert "wrong-password" not in result.output
