"""Platform adapters: the only code that talks HTTP to iNaturalist or its forks (photo hosts: `photo_host`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.config import Config, Secrets
from bot.platforms.base import ObservationPage, Platform, Rejected
from bot.platforms.session import NotFound

if TYPE_CHECKING:
    from bot.platforms.inat_v1 import InatV1Platform
    from bot.platforms.legacy import LegacyPlatform


def create_platform(cfg: Config, secrets: Secrets | None = None, *, dry_run: bool = False,
                    clock: Callable[[], float] = time.time) -> InatV1Platform | LegacyPlatform:
    """The adapter for `cfg.platform.flavor`; `secrets` default to the environment's."""
    from bot.platforms.inat_v1 import InatV1Platform
    from bot.platforms.legacy import LegacyPlatform

    secrets = secrets if secrets is not None else Secrets.from_env()
    cls = LegacyPlatform if cfg.platform.flavor == "legacy" else InatV1Platform
    return cls(cfg, secrets, dry_run=dry_run, clock=clock)


__all__ = ["NotFound", "ObservationPage", "Platform", "Rejected", "create_platform"]
