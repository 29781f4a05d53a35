"""What every request of the review app shares: config, store, the token vault and one Platform."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app

from bot.config import Config
from bot.domain import RunMode
from bot.platforms.base import Platform
from bot.store.db import Store
from bot.web.security import TokenVault

EXTENSION = "plantbot"


@dataclass
class WebContext:
    cfg: Config
    store: Store
    mode: RunMode  # computed once by create_app; approvals post in `mode.for_moderator`
    platform_factory: Callable[[], Platform]
    client_secret: str | None = field(default=None, repr=False)
    vault: TokenVault = field(default_factory=TokenVault)
    # Approvals are posted one at a time: the platform adapter and its rate limit are shared.
    post_lock: threading.Lock = field(default_factory=threading.Lock)
    _platform: Platform | None = None
    _platform_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def site_url(self) -> str:
        return self.cfg.platform.site_url.rstrip("/")

    @property
    def dry_run(self) -> bool:
        return self.mode.dry_run

    def platform(self) -> Platform:
        """The adapter is built on first use, so the app starts even while the platform is down."""
        with self._platform_lock:
            if self._platform is None:
                self._platform = self.platform_factory()
            return self._platform


def web_context() -> WebContext:
    ctx = current_app.extensions[EXTENSION]
    if not isinstance(ctx, WebContext):
        raise RuntimeError("the review app was not built by bot.web.create_app")
    return ctx
