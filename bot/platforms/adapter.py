"""What both platform adapters share: the session, the bot's token, authed writes, budget status."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.config import Config, Secrets
from bot.domain import Comment, Identification
from bot.errors import PlatformError
from bot.platforms.auth import TokenProvider, exchange_code
from bot.platforms.parse_v1 import parse_each
from bot.platforms.session import Http, PlantBotSession, Unauthorized, default_ratelimit_path

log = logging.getLogger(__name__)

DAY = 86400.0
BACKOFF_FACTOR = 1.0  # seconds; retries wait about 0, 2, 4, 8 s (plus jitter), each also rate-limited
DRY_RUN_ID = 0  # the "remote id" a dry-run write returns (nothing was created)


@dataclass(frozen=True)
class Readers:
    """How a platform's JSON for an identification and a comment becomes the domain's records."""

    identification: Callable[[Any, str], Identification]
    comment: Callable[[Any, str], Comment]


class AdapterBase:
    """Session, token and error handling; subclasses add the platform's URLs and JSON shapes."""

    flavor = ""

    def __init__(self, cfg: Config, secrets: Secrets | None = None, *, dry_run: bool = False,
                 clock: Callable[[], float]) -> None:
        self.cfg = cfg
        self.pcfg = cfg.platform
        self.dry_run = dry_run
        self.clock = clock
        path = cfg.resolve_path(self.pcfg.ratelimit_path) if self.pcfg.ratelimit_path else default_ratelimit_path()
        self.session = PlantBotSession(self.pcfg, ratelimit_path=path, clock=clock, dry_run=dry_run,
                                       backoff_factor=BACKOFF_FACTOR)
        self.http = Http(self.session, dry_run=dry_run)
        self.tokens = TokenProvider(self.http, secrets or Secrets(), self.pcfg.site_url, self.flavor, clock)
        self.name = self._name()

    def _name(self) -> str:
        """A key for cursors: the flavor and the endpoint polled."""
        url = self.pcfg.site_url if self.flavor == "legacy" else self.pcfg.api_url
        return f"{self.flavor}:{url.rstrip('/')}"

    @property
    def requests_sent(self) -> int:
        """How many requests this adapter has sent so far (what a summary's request count reports)."""
        return self.session.requests_sent

    readers: Readers  # each adapter's own parsers of an identification and a comment

    def _raw_observation(self, observation_id: int) -> dict[str, Any]:
        """One observation as the platform sends it (subclasses know the URL and the envelope)."""
        raise NotImplementedError

    def get_identifications(self, observation_id: int) -> list[Identification]:
        raw = self._raw_observation(observation_id)
        return parse_each(raw.get("identifications"), self.readers.identification, "identification")

    def get_comments(self, observation_id: int) -> list[Comment]:
        raw = self._raw_observation(observation_id)
        return parse_each(raw.get("comments"), self.readers.comment, "comment")

    def get_token(self) -> str:
        """The bot account's own token (renewed when near its end)."""
        return self.tokens.get()

    def exchange_code(self, code: str, verifier: str, *, client_id: str, client_secret: str | None,
                      redirect_uri: str) -> str:
        """A moderator's API token for an OAuth authorization code (see `auth.exchange_code`)."""
        return exchange_code(self.http, self.pcfg.site_url, self.flavor, client_id=client_id,
                             client_secret=client_secret, code=code, verifier=verifier, redirect_uri=redirect_uri)

    def close(self) -> None:
        self.session.close()

    def abort(self) -> None:
        """Abandons every API request under way and refuses new ones: the daemon is stopping."""
        self.session.adapter.abort()

    def _authed(self, method: str, url: str, token: str | None, *, json: Any = None,
                data: Mapping[str, Any] | None = None, params: Mapping[str, Any] | None = None) -> Any:
        """A request with `token`; when it is the bot's own and gets a 401, renew it once and resend.

        Resending is safe: a 401 means the server did nothing with the first request.
        """
        own = token is None or self.tokens.is_current(token)
        current = token if token is not None else self.get_token()
        try:
            return self.http.request(method, url, token=current, json=json, data=data, params=params)
        except Unauthorized:
            if not own:
                raise
            log.info("the API token was refused; renewing it once")
            fresh = self.tokens.renew_after_refusal(current)
            return self.http.request(method, url, token=fresh, json=json, data=data, params=params)

    def _created_id(self, doc: Any, what: str) -> int:
        """The remote id in a create answer ({...}, {"results": [...]} or [...])."""
        if self.dry_run:
            return DRY_RUN_ID
        if isinstance(doc, dict) and isinstance(doc.get("results"), list) and doc["results"]:
            doc = doc["results"][0]
        if isinstance(doc, list) and doc:
            doc = doc[0]
        value = doc.get("id") if isinstance(doc, dict) else None
        if isinstance(value, bool) or not isinstance(value, int):
            raise PlatformError(f"creating the {what} gave no id in the answer")
        return value

    def budget_status(self) -> dict[str, Any]:
        """The API request budget as `plantbot status` shows it (shared by every PlantBot process)."""
        now = self.clock()
        times = self.session.request_times_since(now - DAY)
        cap = self.pcfg.requests_per_day
        paused = cap > 0 and len(times) >= cap
        resumes = times[len(times) - cap] + DAY if paused else None
        return {
            "platform": self.flavor,
            "requests_last_24h": len(times),
            "daily_cap": cap,
            "paused": paused,
            "resumes_at": datetime.fromtimestamp(resumes, UTC).isoformat(timespec="seconds") if resumes else None,
            "requests_per_second": self.pcfg.requests_per_second,
            "requests_per_minute": self.pcfg.requests_per_minute,
            "ratelimit_path": str(self.session.ratelimit_path),
        }
