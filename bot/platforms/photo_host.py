"""The photo hosts' HTTP: the one place photo bytes travel through `requests`.

Photos come from CDNs, not from the API, so they get a plain requests session of their own: never
pyinaturalist's (whose cache must never hold a photo, and whose rate limiter counts API calls, not
media), no proxies from the environment, PlantBot's User-Agent.  What may be fetched is decided by
the caller (`bot.photos`: allowed hosts, the DNS check, size caps, decoding); this module follows
redirects one hop at a time through the caller's guard, connects to the address the guard checked,
and turns every transport failure into a `PhotoHostError` carrying the HTTP status (and Retry-After),
so nothing above `bot/platforms/` meets a `requests` exception.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from bot.config import Config, user_agent
from bot.errors import PhotoHostError, PhotoRefused

MAX_REDIRECTS = 5
CHUNK = 64 * 1024
# What a failing connection or read raises below us: requests', urllib3's and the socket's errors.
TRANSPORT_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)


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


def one_line(exc: BaseException) -> str:
    """A transport failure in one line: its kind and the first line of what it says."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def _retry_after(resp: requests.Response) -> float | None:
    try:
        return max(0.0, float(resp.headers.get("Retry-After", "")))
    except ValueError:
        return None


class PhotoResponse:
    """A photo host's 200 answer, read chunk by chunk within the download deadline."""

    def __init__(self, resp: requests.Response, url: str, timeout: float) -> None:
        self._resp = resp
        self.url = url
        self.timeout = timeout
        self._deadline = time.monotonic() + timeout
        declared = resp.headers.get("Content-Length", "")
        self.declared_length = int(declared) if declared.isdigit() else None

    def chunks(self) -> Iterator[bytes]:
        """The body as it arrives; a stall or a broken connection is a PhotoHostError."""
        try:
            # read1 returns whatever has arrived, so a server dripping bytes still meets the deadline
            while chunk := self._resp.raw.read1(CHUNK, decode_content=True):
                if time.monotonic() > self._deadline:
                    raise PhotoHostError(f"download took longer than {self.timeout:g} s")
                yield chunk
        except TRANSPORT_ERRORS as exc:
            raise PhotoHostError(one_line(exc)) from None


class PhotoHost:
    """GETs photos one redirect hop at a time, each hop cleared by the caller's guard first."""

    def __init__(self, cfg: Config, session: requests.Session | None = None) -> None:
        self.session = session if session is not None else photo_session(cfg)
        self._own = session is None
        self.timeout = cfg.photos.timeout_seconds

    def close(self) -> None:
        if self._own:
            self.session.close()

    @contextmanager
    def open(self, url: str, guard: Callable[[str], list[str]],
             before_each: Callable[[], None] | None = None) -> Iterator[PhotoResponse]:
        """The final answer for `url`.  `guard(url)` runs before every connection (redirects too) and
        returns the addresses to pin (raising whatever refuses the URL); `before_each` runs next (a
        budget check).  A non-200 answer is a PhotoHostError with its status; more than MAX_REDIRECTS
        hops is a PhotoRefused."""
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            addresses = guard(current)
            adapter = self.session.get_adapter(current)
            if addresses and isinstance(adapter, PinnedAdapter):
                adapter.pin(urlsplit(current).hostname or "", addresses[0])
            if before_each is not None:
                before_each()
            try:
                resp = self.session.get(current, stream=True, allow_redirects=False,
                                        timeout=(min(5.0, self.timeout), self.timeout))
            except TRANSPORT_ERRORS as exc:
                raise PhotoHostError(one_line(exc)) from None
            with resp:
                if resp.is_redirect:
                    current = urljoin(current, resp.headers.get("Location", ""))
                    continue
                if resp.status_code != 200:
                    raise PhotoHostError(f"HTTP {resp.status_code} from {urlsplit(current).hostname}",
                                         status=resp.status_code, retry_after=_retry_after(resp))
                yield PhotoResponse(resp, current, self.timeout)
                return
        raise PhotoRefused(f"more than {MAX_REDIRECTS} redirects")
