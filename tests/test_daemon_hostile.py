"""SIGTERM stops the daemon promptly even while the API is dripping its answer one byte a second (both flavors)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from bot.sim.faults import FaultPlan, FaultRule
from bot.sim.server import SimServer
from tests.post_world import build_world, write_config
from tests.test_daemon_sim import bundle, child_env, start_daemon, wait_for  # noqa: F401 - bundle is a fixture

POLL_PATH = {"inat-v1": "/v1/observations", "legacy": "/observations.json"}
STOP_BOUND = 60.0  # generous for a loaded machine; without the fix the drip lasts for hours


@pytest.mark.parametrize("flavor", ["inat-v1", "legacy"])
def test_sigterm_stops_the_daemon_while_a_request_drips(bundle: Path, tmp_path: Path,  # noqa: F811
                                                        flavor: str) -> None:
    world, _ = build_world()
    faults = FaultPlan([FaultRule(f"GET {POLL_PATH[flavor]}", "drip", delay=1.0)])
    with SimServer(world, faults=faults) as sim:
        config = write_config(tmp_path / "c.toml", api_url=sim.api_url, site_url=sim.url, bundle=bundle,
                              mode="dry-run", tmp=tmp_path, extra="", flavor=flavor)
        text = config.read_text().replace("timeout_seconds = 10.0", "timeout_seconds = 3600.0")
        config.write_text(text)
        log = tmp_path / "daemon.log"
        proc = start_daemon(config, log, child_env())
        try:
            wait_for(lambda: any(r.path == POLL_PATH[flavor] for r in sim.requests), "the poll request", proc, log)
            time.sleep(1.0)  # the answer is dripping now
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=STOP_BOUND) == 0, log.read_text()[-3000:]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert "daemon stopped cleanly" in log.read_text()
