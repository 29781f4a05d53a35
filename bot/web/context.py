"""What every request of the review app shares: config, store, the token vault and one Platform."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app

from bot.config import Config
from bot.domain import RunMode
from bot.platforms.base import Platform
from bot.store.db import Store
from bot.urls import safe_link
from bot.web.cards import Lineages
from bot.web.security import PendingSignIns, TokenVault

log = logging.getLogger(__name__)

EXTENSION = "plantbot"


@dataclass
class WebContext:
    cfg: Config
    store: Store
    mode: RunMode  # computed once by create_app; approvals post in `mode.for_moderator`
    platform_factory: Callable[[], Platform]
    client_secret: str | None = field(default=None, repr=False)
    vault: TokenVault = field(default_factory=TokenVault)
    pending: PendingSignIns = field(default_factory=PendingSignIns)  # OAuth sign-ins under way (PKCE verifiers)
    img_sources: list[str] = field(default_factory=list)  # the CSP's img-src: the allowed photo hosts
    # Approvals are posted one at a time: the platform adapter and its rate limit are shared.
    post_lock: threading.Lock = field(default_factory=threading.Lock)
    lineages: Lineages = field(default_factory=Lineages)
    _platform: Platform | None = None
    _platform_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def site_url(self) -> str:
        return self.cfg.platform.site_url.rstrip("/")

    @property
    def dry_run(self) -> bool:
        return self.mode.dry_run

    def platform_link(self, url: str | None) -> str | None:
        """`url` when it is an http(s) link to the platform's own site, else None (render text instead)."""
        return safe_link(url, self.cfg.platform_hosts)

    def photo_urls(self, urls: list[str]) -> list[str]:
        """Only photo URLs on the allowed photo hosts reach a page (the CSP's img-src allows no others)."""
        return [u for u in urls if safe_link(u, self.cfg.allowed_photo_hosts)]

    def platform(self) -> Platform:
        """The adapter is built on first use, so the app starts even while the platform is down."""
        with self._platform_lock:
            if self._platform is None:
                self._platform = self.platform_factory()
            return self._platform

    def platform_or_none(self) -> Platform | None:
        """The adapter, or None when it cannot be built (pages still show what is stored)."""
        try:
            return self.platform()
        except Exception as exc:  # a broken platform config must not take the stored queue down
            log.warning("the platform adapter could not be built: %s", exc)
            return None


def web_context() -> WebContext:
    ctx = current_app.extensions[EXTENSION]
    if not isinstance(ctx, WebContext):
        raise RuntimeError("the review app was not built by bot.web.create_app")
    return ctx
