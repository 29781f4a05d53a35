"""Safe photo download: every photo of an observation, once, at the configured size.

Photo URLs come from JSON written by strangers, so each one (and each redirect hop) is checked before
any connection: https on an allowed host only (plain http only for loopback), and a host resolving to
a private, link-local or reserved address is refused.  Bytes are capped while streaming, the media
budget (iNaturalist's 5 GB/h, 24 GB/day) is counted from bytes actually received, and content is
judged by decoding (bot.imaging), never by extension or Content-Type.  The HTTP itself (redirect hops,
address pinning, reading, transport errors) is `bot.platforms.photo_host`'s: this module decides what
may be fetched and what the bytes are worth.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import PIL.Image

from bot import urls
from bot.config import Config
from bot.domain import Observation, Photo, PhotoStatus
from bot.errors import BudgetExhausted, PhotoHostError, PhotoRefused
from bot.imaging import ImageDecodeError, decode_image
from bot.platforms.photo_host import PhotoHost

log = logging.getLogger(__name__)

SIZE_WORDS = ("square", "thumb", "small", "medium", "large", "original")
_SHAPE = re.compile(r"^(?P<head>.*/photos/\d+/)(?P<word>[a-z]+)(?P<ext>\.(?:jpe?g|png|gif|webp))$", re.IGNORECASE)


@dataclass(frozen=True)
class PhotoResult:
    observation_id: int
    photo: Photo
    status: PhotoStatus
    image: PIL.Image.Image | None
    nbytes: int
    error: str | None
    url: str  # the URL actually requested (after the size rewrite)


def rewrite_size(url: str, size: str) -> str:
    """Swap the size word of `.../photos/<id>/<word>.<ext>[?query]`; any other shape is left alone."""
    parts = urlsplit(url)
    m = _SHAPE.match(parts.path)
    if m is None or m.group("word").lower() not in SIZE_WORDS:
        return url
    return urlunsplit(parts._replace(path=f"{m.group('head')}{size}{m.group('ext')}"))


# --- the SSRF guard -----------------------------------------------------------------------------------


def resolve_addresses(host: str) -> list[str]:
    """Every address `host` resolves to (the SSRF guard checks them all, then pins one)."""
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, None)})


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    return not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast
                or ip.is_unspecified)


def check_url(url: str, allowed_hosts: Sequence[str], resolver: Callable[[str], list[str]]) -> list[str]:
    """Raise PhotoRefused unless `url` may be fetched; runs before every connection, redirects included.

    Returns the checked addresses, so the connection can be pinned to them (no second DNS answer).
    An empty list means loopback or a literal address: nothing to pin.
    """
    problem = urls.host_allowed(url, allowed_hosts)
    if problem is not None:
        raise PhotoRefused(problem)
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    if urls.is_loopback_host(host):
        return []  # the simulator and local mirrors: an explicit, allowed loopback host
    try:
        ipaddress.ip_address(host)
        addresses = [host]
    except ValueError:
        try:
            addresses = resolver(host)
        except OSError as exc:
            raise PhotoRefused(f"cannot resolve {host}: {exc}") from None
    if not addresses:
        raise PhotoRefused(f"{host} resolves to no address")
    bad = [a for a in addresses if not _public(a)]
    if bad:
        raise PhotoRefused(f"{host} resolves to a non-public address ({bad[0]})")
    return [] if addresses == [host] else addresses


# --- the media budget ---------------------------------------------------------------------------------


class MediaLedger(Protocol):
    """Where bytes per hour are persisted (the store's media_usage table, or memory in tests)."""

    def usage_since(self, since: datetime) -> int: ...

    def add(self, hour: datetime, nbytes: int) -> None: ...


class MemoryLedger:
    def __init__(self) -> None:
        self.hours: dict[datetime, int] = {}

    def usage_since(self, since: datetime) -> int:
        return sum(n for h, n in self.hours.items() if h >= since)

    def add(self, hour: datetime, nbytes: int) -> None:
        self.hours[hour] = self.hours.get(hour, 0) + nbytes


class MediaBudget:
    """Bytes downloaded in the current hour and the last 24 hours, against the configured caps."""

    def __init__(self, per_hour: int, per_day: int, ledger: MediaLedger | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.per_hour = per_hour
        self.per_day = per_day
        self.ledger: MediaLedger = ledger if ledger is not None else MemoryLedger()
        self.clock = clock
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, cfg: Config, ledger: MediaLedger | None = None,
                    clock: Callable[[], float] = time.time) -> MediaBudget:
        return cls(cfg.photos.media_bytes_per_hour, cfg.photos.media_bytes_per_day, ledger, clock)

    def _hour(self) -> datetime:
        now = datetime.fromtimestamp(self.clock(), UTC).replace(tzinfo=None)
        return now.replace(minute=0, second=0, microsecond=0)

    def check(self) -> None:
        """Raise BudgetExhausted when the hour's or the day's media budget is spent."""
        hour = self._hour()
        with self._lock:
            used_hour = self.ledger.usage_since(hour)
            used_day = self.ledger.usage_since(hour - timedelta(hours=23))
        if used_hour >= self.per_hour:
            raise BudgetExhausted(f"media budget for this hour spent ({used_hour:,} of {self.per_hour:,} bytes); "
                                  "photos wait for the next hour")
        if used_day >= self.per_day:
            raise BudgetExhausted(f"media budget for 24 h spent ({used_day:,} of {self.per_day:,} bytes); "
                                  "photos wait until it refills")

    def record(self, nbytes: int) -> None:
        if nbytes > 0:
            with self._lock:
                self.ledger.add(self._hour(), nbytes)

    def status(self) -> dict[str, int]:
        hour = self._hour()
        return {"bytes_this_hour": self.ledger.usage_since(hour), "bytes_per_hour_cap": self.per_hour,
                "bytes_last_24h": self.ledger.usage_since(hour - timedelta(hours=23)),
                "bytes_per_day_cap": self.per_day}


# --- downloading ----------------------------------------------------------------------------------------


class TooLarge(ValueError):
    """More bytes than `[photos] max_bytes`, declared or received (`received`: what arrived before we stopped)."""

    def __init__(self, message: str, received: int = 0) -> None:
        super().__init__(message)
        self.received = received


def fetch_photo_bytes(host: PhotoHost, url: str, cfg: Config, resolver: Callable[[str], list[str]],
                      budget: MediaBudget | None = None) -> bytes:
    """The photo at `url`, each hop checked by the SSRF guard and the media budget, capped at
    `[photos] max_bytes` while streaming (TooLarge); every byte received counts against the budget.
    Raises PhotoRefused, TooLarge, BudgetExhausted or PhotoHostError (and ValueError for a URL that
    does not parse)."""
    limit = cfg.photos.max_bytes
    hosts = cfg.allowed_photo_hosts
    with host.open(url, lambda u: check_url(u, hosts, resolver), budget.check if budget else None) as resp:
        if resp.declared_length is not None and resp.declared_length > limit:
            raise TooLarge(f"{resp.declared_length:,} bytes declared, over the limit of {limit:,}")
        chunks: list[bytes] = []
        total = 0
        try:
            for chunk in resp.chunks():
                total += len(chunk)
                if total > limit:
                    raise TooLarge(f"more than {limit:,} bytes, over the limit", total)
                chunks.append(chunk)
        finally:
            if budget is not None:
                budget.record(total)
    return b"".join(chunks)


class _Fetcher:
    def __init__(self, cfg: Config, host: PhotoHost, resolver: Callable[[str], list[str]],
                 budget: MediaBudget | None, decode_size: int | None) -> None:
        self.cfg = cfg
        self.host = host
        self.resolver = resolver
        self.budget = budget
        self.decode_size = decode_size

    def __call__(self, job: tuple[int, Photo]) -> PhotoResult:
        obs_id, photo = job
        try:
            url = rewrite_size(photo.url, self.cfg.photos.size)
        except ValueError as exc:  # a URL that does not even parse: never fetched
            log.info("photo %s of observation %s: unusable URL (%s)", photo.id, obs_id, exc)
            return PhotoResult(obs_id, photo, PhotoStatus.REFUSED, None, 0, f"unusable URL: {exc}", photo.url)

        def result(status: PhotoStatus, error: str | None, nbytes: int = 0,
                   image: PIL.Image.Image | None = None) -> PhotoResult:
            if error:
                log.info("photo %s of observation %s: %s", photo.id, obs_id, error)
            return PhotoResult(obs_id, photo, status, image, nbytes, error, url)

        try:
            data = fetch_photo_bytes(self.host, url, self.cfg, self.resolver, self.budget)
        except TooLarge as exc:
            return result(PhotoStatus.TOO_LARGE, str(exc), exc.received)
        except (PhotoRefused, ValueError) as exc:  # ValueError: a redirect to a URL that does not parse
            return result(PhotoStatus.REFUSED, str(exc))
        except BudgetExhausted as exc:  # not the photo's fault: the cycle leaves it for later
            return result(PhotoStatus.BUDGET, str(exc))
        except PhotoHostError as exc:
            return result(PhotoStatus.FAILED, str(exc))
        try:
            image = decode_image(data, self.cfg.photos.max_pixels, self.decode_size)
        except ImageDecodeError as exc:
            return result(PhotoStatus(exc.kind), str(exc), len(data))
        return result(PhotoStatus.OK, None, len(data), image)


def photo_jobs(observations: Sequence[Observation], cfg: Config) -> list[tuple[int, Photo]]:
    """(observation id, photo) for every photo to fetch, up to the configured maximum, in position order."""
    return [(o.id, p) for o in observations
            for p in sorted(o.photos, key=lambda p: p.position)[: cfg.photos.max_photos_per_observation]]


def make_fetcher(cfg: Config, host: PhotoHost, *, decode_size: int | None = None,
                 resolver: Callable[[str], list[str]] | None = None,
                 media_budget: MediaBudget | None = None) -> Callable[[tuple[int, Photo]], PhotoResult]:
    """One photo job to its PhotoResult (never raises for the photo's own faults); thread-safe."""
    return _Fetcher(cfg, host, resolver or resolve_addresses, media_budget, decode_size)


def download_photos(observations: Sequence[Observation], cfg: Config, *, decode_size: int | None = None,
                    host: PhotoHost | None = None, resolver: Callable[[str], list[str]] | None = None,
                    media_budget: MediaBudget | None = None) -> dict[int, list[PhotoResult]]:
    """Every photo of each observation (up to the configured maximum), by observation id, in position order."""
    jobs = photo_jobs(observations, cfg)
    http = host if host is not None else PhotoHost(cfg)
    fetch = make_fetcher(cfg, http, decode_size=decode_size, resolver=resolver, media_budget=media_budget)
    try:
        if cfg.photos.parallel <= 1 or len(jobs) <= 1:
            results = [fetch(job) for job in jobs]
        else:
            with ThreadPoolExecutor(max_workers=cfg.photos.parallel, thread_name_prefix="photo") as pool:
                results = list(pool.map(fetch, jobs))
    finally:
        if host is None:
            http.close()
    out: dict[int, list[PhotoResult]] = {o.id: [] for o in observations}
    for r in results:
        out[r.observation_id].append(r)
    return out
