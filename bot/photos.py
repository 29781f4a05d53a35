"""Safe photo download: every photo of an observation, once, at the configured size.

Photo URLs come from JSON written by strangers, so each one (and each redirect hop) is checked before
any connection: https on an allowed host only (plain http only for loopback), and a host resolving to
a private, link-local or reserved address is refused.  Bytes are capped while streaming, the media
budget (iNaturalist's 5 GB/h, 24 GB/day) is counted from bytes actually received, and content is
judged by decoding (bot.imaging), never by extension or Content-Type.
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
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit, urlunsplit

import PIL.Image
import requests
import urllib3
from requests.adapters import HTTPAdapter

from bot import urls
from bot.config import Config, user_agent
from bot.domain import Observation, Photo, PhotoStatus
from bot.errors import BudgetExhausted
from bot.imaging import ImageDecodeError, decode_image

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
CHUNK = 64 * 1024
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


class Refused(Exception):
    """A URL we will not fetch (scheme, host or address); the message says which rule."""


def rewrite_size(url: str, size: str) -> str:
    """Swap the size word of `.../photos/<id>/<word>.<ext>[?query]`; any other shape is left alone."""
    parts = urlsplit(url)
    m = _SHAPE.match(parts.path)
    if m is None or m.group("word").lower() not in SIZE_WORDS:
        return url
    return urlunsplit(parts._replace(path=f"{m.group('head')}{size}{m.group('ext')}"))


# --- the SSRF guard -----------------------------------------------------------------------------------


def _default_resolver(host: str) -> list[str]:
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, None)})


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    return not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast
                or ip.is_unspecified)


def check_url(url: str, allowed_hosts: Sequence[str], resolver: Callable[[str], list[str]]) -> list[str]:
    """Raise Refused unless `url` may be fetched; runs before every connection, redirects included.

    Returns the checked addresses, so the connection can be pinned to them (no second DNS answer).
    An empty list means loopback or a literal address: nothing to pin.
    """
    problem = urls.host_allowed(url, allowed_hosts)
    if problem is not None:
        raise Refused(problem)
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
            raise Refused(f"cannot resolve {host}: {exc}") from None
    if not addresses:
        raise Refused(f"{host} resolves to no address")
    bad = [a for a in addresses if not _public(a)]
    if bad:
        raise Refused(f"{host} resolves to a non-public address ({bad[0]})")
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


class PinnedAdapter(HTTPAdapter):
    """Connects to the address the SSRF guard checked, never to a second DNS answer (no DNS rebinding).

    The URL keeps its host name, so the Host header, TLS SNI and certificate checks still use it; only
    the TCP connection goes to the pinned address.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pins: dict[str, str] = {}  # host name -> a checked address

    def pin(self, host: str, address: str) -> None:
        self.pins[host.lower().rstrip(".")] = address

    def _pinned(self, url: str) -> tuple[str, str] | None:
        host = (urlsplit(url).hostname or "").lower().rstrip(".")
        address = self.pins.get(host)
        return (host, address) if address else None

    def build_connection_pool_key_attributes(  # type: ignore[override]
            self, request: requests.PreparedRequest, verify: bool | str,
            cert: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        base_params, base_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        host_params: dict[str, Any] = dict(base_params)
        pool_kwargs: dict[str, Any] = dict(base_kwargs)
        pinned = self._pinned(str(request.url))
        if pinned is not None:
            host, address = pinned
            host_params = {**host_params, "host": address}
            if host_params.get("scheme") == "https":
                pool_kwargs = {**pool_kwargs, "server_hostname": host, "assert_hostname": host}
        return host_params, pool_kwargs

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if self._pinned(str(request.url)) is not None and "Host" not in request.headers:
            request.headers["Host"] = urlsplit(str(request.url)).netloc.rpartition("@")[2]
        return super().send(request, *args, **kwargs)


def photo_session(cfg: Config) -> requests.Session:
    """A plain requests session (never pyinaturalist's cache) with PlantBot's User-Agent."""
    s = requests.Session()
    s.trust_env = False  # no proxies from the environment: the checked host is the host we connect to
    s.headers["User-Agent"] = user_agent(cfg.platform)
    adapter = PinnedAdapter(pool_connections=4, pool_maxsize=max(4, cfg.photos.parallel), max_retries=0)
    s.mount("https://", adapter)
    s.mount("http://", adapter)
    return s


class _TooLarge(Exception):
    pass


class _Fetcher:
    def __init__(self, cfg: Config, session: requests.Session, resolver: Callable[[str], list[str]],
                 budget: MediaBudget | None, decode_size: int | None) -> None:
        self.cfg = cfg
        self.session = session
        self.resolver = resolver
        self.budget = budget
        self.decode_size = decode_size
        self.hosts = cfg.allowed_photo_hosts

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
            data = self._download(url)
        except (Refused, ValueError) as exc:  # ValueError: a redirect to a URL that does not parse
            return result(PhotoStatus.REFUSED, str(exc))
        except BudgetExhausted as exc:  # not the photo's fault: the cycle leaves it for later
            return result(PhotoStatus.BUDGET, str(exc))
        except _TooLarge as exc:
            return result(PhotoStatus.TOO_LARGE, str(exc.args[0]), int(exc.args[1]) if len(exc.args) > 1 else 0)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, _HttpStatus) as exc:
            return result(PhotoStatus.FAILED, _one_line(exc))
        try:
            image = decode_image(data, self.cfg.photos.max_pixels, self.decode_size)
        except ImageDecodeError as exc:
            return result(PhotoStatus(exc.kind), str(exc), len(data))
        return result(PhotoStatus.OK, None, len(data), image)

    def _download(self, url: str) -> bytes:
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            addresses = check_url(current, self.hosts, self.resolver)
            adapter = self.session.get_adapter(current)
            if addresses and isinstance(adapter, PinnedAdapter):
                adapter.pin(urlsplit(current).hostname or "", addresses[0])
            if self.budget is not None:
                self.budget.check()
            timeout = self.cfg.photos.timeout_seconds
            resp = self.session.get(current, stream=True, allow_redirects=False, timeout=(min(5.0, timeout), timeout))
            with resp:
                if resp.is_redirect:
                    location = resp.headers.get("Location", "")
                    current = urljoin(current, location)
                    continue
                if resp.status_code != 200:
                    raise _HttpStatus(f"HTTP {resp.status_code} from {urlsplit(current).hostname}")
                return self._read(resp)
        raise Refused(f"more than {MAX_REDIRECTS} redirects")

    def _read(self, resp: requests.Response) -> bytes:
        limit = self.cfg.photos.max_bytes
        declared = resp.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _TooLarge(f"{int(declared):,} bytes declared, over the limit of {limit:,}", 0)
        deadline = time.monotonic() + self.cfg.photos.timeout_seconds
        chunks: list[bytes] = []
        total = 0
        try:
            # read1 returns whatever has arrived, so a server dripping bytes still meets the deadline
            while chunk := resp.raw.read1(CHUNK, decode_content=True):
                total += len(chunk)
                if total > limit:
                    raise _TooLarge(f"more than {limit:,} bytes, over the limit", total)
                if time.monotonic() > deadline:
                    raise _HttpStatus(f"download took longer than {self.cfg.photos.timeout_seconds:g} s")
                chunks.append(chunk)
        finally:
            if self.budget is not None:
                self.budget.record(total)
        return b"".join(chunks)


class _HttpStatus(Exception):
    pass


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300] if not isinstance(exc, _HttpStatus) else text


def photo_jobs(observations: Sequence[Observation], cfg: Config) -> list[tuple[int, Photo]]:
    """(observation id, photo) for every photo to fetch, up to the configured maximum, in position order."""
    return [(o.id, p) for o in observations
            for p in sorted(o.photos, key=lambda p: p.position)[: cfg.photos.max_photos_per_observation]]


def make_fetcher(cfg: Config, session: requests.Session, *, decode_size: int | None = None,
                 resolver: Callable[[str], list[str]] | None = None,
                 media_budget: MediaBudget | None = None) -> Callable[[tuple[int, Photo]], PhotoResult]:
    """One photo job to its PhotoResult (never raises for the photo's own faults); thread-safe."""
    return _Fetcher(cfg, session, resolver or _default_resolver, media_budget, decode_size)


def download_photos(observations: Sequence[Observation], cfg: Config, *, decode_size: int | None = None,
                    session: requests.Session | None = None, resolver: Callable[[str], list[str]] | None = None,
                    media_budget: MediaBudget | None = None) -> dict[int, list[PhotoResult]]:
    """Every photo of each observation (up to the configured maximum), by observation id, in position order."""
    jobs = photo_jobs(observations, cfg)
    own = session is None
    http = session if session is not None else photo_session(cfg)
    fetch = make_fetcher(cfg, http, decode_size=decode_size, resolver=resolver, media_budget=media_budget)
    try:
        if cfg.photos.parallel <= 1 or len(jobs) <= 1:
            results = [fetch(job) for job in jobs]
        else:
            with ThreadPoolExecutor(max_workers=cfg.photos.parallel, thread_name_prefix="photo") as pool:
                results = list(pool.map(fetch, jobs))
    finally:
        if own:
            http.close()
    out: dict[int, list[PhotoResult]] = {o.id: [] for o in observations}
    for r in results:
        out[r.observation_id].append(r)
    return out
