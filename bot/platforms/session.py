"""The one HTTP session every iNaturalist request goes through: pyinaturalist's `ClientSession`, tuned.

What we keep from pyinaturalist: its rate limiter (a file-locked SQLite bucket shared by every PlantBot
process on the machine), its retries and timeouts, its dry-run mock responses.  What we change, and why:

* the response cache is off: a poll must see what the API has now, and a cache file is one more thing
  to grow on disk (photos never go through this session at all);
* one limiter bucket for all hosts, with exactly the configured rates (no burst), and every *retry*
  takes a token from it too, so the request rate stays within 1/s even while the API is failing;
* retries on http:// as well (the simulator on loopback), 429 honoured via `Retry-After`, exponential
  backoff with jitter, and writes retried only when the server refused them before doing anything (429);
* the daily cap surfaces as `BudgetExhausted` instead of a library exception;
* in dry-run no write request leaves the process, whatever the caller passes.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from pyinaturalist.session import ClientSession, FileLockSQLiteBucket, MockResponse
from pyrate_limiter import BucketFullException, Duration, Limiter, RequestRate
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from bot.config import PlatformConfig, user_agent
from bot.errors import AuthError, BudgetExhausted, PlatformError

log = logging.getLogger(__name__)

BUCKET = "plantbot-api"  # one bucket for every host: iNaturalist counts requests per client, not per host
RETRY_STATUSES = (429, 500, 502, 503, 504)
READ_CHUNK = 64 * 1024
MAX_RETRY_AFTER = 120  # seconds; a longer Retry-After is waited for only this long per retry
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
TOKEN_PATH = "/oauth/token"
# Stretch the per-second window by 25%: the limiter counts a request when it lets it go, the server when it
# arrives, and on a loaded machine connection set-up can separate the two by a few hundred milliseconds.
SAFETY = Fraction(5, 4)


class Unauthorized(AuthError):
    """HTTP 401: the token is missing, expired or revoked (a renewable condition for our own token)."""


class NotFound(PlatformError):
    """HTTP 404: callers that look things up by id turn it into None or an empty list."""



def default_ratelimit_path() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("plantbot")) / "ratelimit.sqlite3"


def build_rates(per_second: float, per_minute: float, per_day: float) -> list[RequestRate]:
    """Rates for pyrate_limiter, which wants them strictly growing in limit and interval.

    A rate made redundant by a tighter longer one is left out (a tiny daily cap in a test must not
    clash with a larger per-second rate).
    """
    candidates: list[tuple[Fraction, Fraction]] = []
    if per_second > 0:
        frac = Fraction(per_second).limit_denominator(1000)
        candidates.append((Fraction(frac.numerator), Fraction(frac.denominator) * SAFETY))
    if per_minute > 0:
        candidates.append((Fraction(int(per_minute)), Fraction(Duration.MINUTE)))
    if per_day > 0:
        candidates.append((Fraction(int(per_day)), Fraction(Duration.DAY)))
    kept: list[tuple[Fraction, Fraction]] = []
    for limit, interval in candidates:
        while kept and kept[-1][0] >= limit:
            kept.pop()  # a longer window allows no more requests: the shorter one adds nothing
        kept.append((limit, interval))
    return [RequestRate(int(limit), float(interval)) for limit, interval in kept]  # type: ignore[arg-type]


class PoliteRetry(Retry):
    """urllib3 retries that also take a rate-limiter token before each retry attempt."""

    acquire: Callable[[], None] | None = None
    stopping: threading.Event | None = None  # set when the daemon stops: no retry is attempted

    def new(self, **kw: Any) -> PoliteRetry:
        retry = super().new(**kw)
        retry.acquire = self.acquire
        retry.stopping = self.stopping
        return retry

    def is_exhausted(self) -> bool:
        return bool(self.stopping is not None and self.stopping.is_set()) or super().is_exhausted()

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        # A 429 means the server refused before doing anything: safe to resend even a POST.
        if method.upper() in WRITE_METHODS and status_code == 429:
            return bool(self.total)
        return super().is_retry(method, status_code, has_retry_after)

    def sleep(self, response: Any = None) -> None:
        super().sleep(response)
        if self.acquire is not None:
            self.acquire()


class ResponseTooLarge(requests.RequestException):
    """The answer is larger than `[platform] max_response_bytes`; it is not read any further."""


class RequestStopped(requests.RequestException):
    """The daemon is stopping: a request under way is abandoned and no new one is sent."""


def _tracked(base: type[Any], live: weakref.WeakSet[Any]) -> type[Any]:
    """`base` (a urllib3 connection class) that registers each connection it opens in `live`."""

    class Tracked(base):  # type: ignore[misc, valid-type]
        def connect(self) -> None:
            super().connect()
            live.add(self)

    return Tracked


class BoundedAdapter(HTTPAdapter):
    """The transport under pyinaturalist's ClientSession: a whole-answer deadline and a size cap, and a
    way to abandon every request at once when the daemon is told to stop.

    `timeout_seconds` alone limits each socket read, so a server sending one byte a second keeps a request
    (and the cycle, and SIGTERM) waiting forever; and a huge answer was read whole into memory. Here the body
    is read as it arrives (`read1`), against a deadline (`timeout_seconds` once the headers are in; each
    read before that has the same timeout) and a byte cap;
    `abort()` shuts down the sockets under way, so even a read blocked on a silent server returns at once.
    """

    def __init__(self, *, deadline_s: float, max_bytes: int, **kwargs: Any) -> None:
        self.deadline_s = deadline_s
        self.max_bytes = max_bytes
        self.stopping = threading.Event()
        self._live: weakref.WeakSet[Any] = weakref.WeakSet()
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)

        class HttpPool(urllib3.HTTPConnectionPool):
            ConnectionCls = _tracked(urllib3.connection.HTTPConnection, self._live)

        class HttpsPool(urllib3.HTTPSConnectionPool):
            ConnectionCls = _tracked(urllib3.connection.HTTPSConnection, self._live)

        self.poolmanager.pool_classes_by_scheme = {"http": HttpPool, "https": HttpsPool}  # type: ignore[assignment]

    def abort(self) -> None:
        """Abandons every request under way and refuses new ones (the daemon is stopping)."""
        self.stopping.set()
        for conn in list(self._live):
            sock = getattr(conn, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,  # type: ignore[override]
             verify: bool | str = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        if self.stopping.is_set():
            raise RequestStopped("PlantBot is stopping; request not sent", request=request)
        try:
            resp = super().send(request, stream=True, timeout=timeout, verify=verify, cert=cert, proxies=proxies)
        except requests.RequestException:
            if self.stopping.is_set():
                raise RequestStopped("PlantBot is stopping; request abandoned", request=request) from None
            raise
        if stream:
            return resp
        started = time.monotonic()  # after the headers: a Retry-After wait inside urllib3 must not count
        try:
            resp._content = self._read(resp, started)
        finally:
            resp.close()
        return resp

    def _read(self, resp: requests.Response, started: float) -> bytes:
        declared = resp.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise ResponseTooLarge(f"the answer declares {int(declared):,} bytes, over the limit of "
                                   f"{self.max_bytes:,} ([platform] max_response_bytes)", response=resp)
        chunks: list[bytes] = []
        total = 0
        try:
            while chunk := resp.raw.read1(READ_CHUNK, decode_content=True):
                total += len(chunk)
                if total > self.max_bytes:
                    raise ResponseTooLarge(f"the answer is larger than {self.max_bytes:,} bytes "
                                           "([platform] max_response_bytes)", response=resp)
                if self.stopping.is_set():
                    raise RequestStopped("PlantBot is stopping; answer abandoned", response=resp)
                if time.monotonic() - started > self.deadline_s:
                    raise requests.exceptions.ReadTimeout(
                        f"the whole answer took longer than {self.deadline_s:g} s (timeout_seconds)", response=resp)
                chunks.append(chunk)
        except (urllib3.exceptions.ProtocolError, urllib3.exceptions.DecodeError, OSError) as exc:
            if self.stopping.is_set():
                raise RequestStopped("PlantBot is stopping; answer abandoned", response=resp) from None
            raise requests.exceptions.ChunkedEncodingError(exc, response=resp) from None
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise requests.exceptions.ReadTimeout(exc, response=resp) from None
        return b"".join(chunks)


class PlantBotSession(ClientSession):
    """pyinaturalist's ClientSession with PlantBot's limits, retries, User-Agent and dry-run guard."""

    def __init__(self, pcfg: PlatformConfig, *, ratelimit_path: Path, clock: Callable[[], float],
                 dry_run: bool = False, backoff_factor: float = 1.0) -> None:
        ratelimit_path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = str(ratelimit_path) + ".lock"
        bucket_kwargs = {"path": str(ratelimit_path), "lock_path": lock_path}
        self.rates = build_rates(pcfg.requests_per_second, pcfg.requests_per_minute, pcfg.requests_per_day)
        limiter = Limiter(*self.rates, bucket_class=FileLockSQLiteBucket, bucket_kwargs=bucket_kwargs,
                          time_function=clock)
        super().__init__(
            cache_file=str(ratelimit_path.with_name("http-cache.sqlite3")), use_memory=True,
            per_second=pcfg.requests_per_second, per_minute=pcfg.requests_per_minute,
            per_day=pcfg.requests_per_day, burst=1, bucket_class=FileLockSQLiteBucket,
            ratelimit_path=str(ratelimit_path), lock_path=lock_path, max_retries=pcfg.max_retries,
            timeout=pcfg.timeout_seconds, write_timeout=pcfg.timeout_seconds,  # type: ignore[arg-type]
            limiter=limiter,
            bucket_name=BUCKET, time_function=clock,
        )
        self.settings.disabled = True  # no response cache, for reads or writes
        self.ratelimit_path = ratelimit_path
        self.lock_path = lock_path
        self.clock = clock
        self.dry_run = dry_run
        self.requests_sent = 0  # requests that went out on the wire (retries included, dry-run writes not)
        retry = PoliteRetry(total=pcfg.max_retries, backoff_factor=backoff_factor,
                            backoff_jitter=backoff_factor / 2, backoff_max=60.0,
                            status_forcelist=RETRY_STATUSES, respect_retry_after_header=True,
                            retry_after_max=MAX_RETRY_AFTER, raise_on_status=False)
        retry.acquire = self._acquire
        self.retries = retry
        adapter = BoundedAdapter(max_retries=retry, deadline_s=pcfg.timeout_seconds,
                                 max_bytes=pcfg.max_response_bytes)
        retry.stopping = adapter.stopping
        self.adapter = adapter
        self.mount("https://", adapter)
        self.mount("http://", adapter)  # loopback simulator; urls are checked by the adapters
        self.headers["User-Agent"] = user_agent(pcfg)

    def _acquire(self) -> None:
        """Wait for a token (a retry is a request too)."""
        self.requests_sent += 1
        with self.limiter.ratelimit(BUCKET, delay=True, max_delay=self.max_delay or 60):
            pass

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        # A dry-run session holds every write but a moderator's OAuth code exchange (`Http.request(sign_in=True)`
        # passes dry_run=False for it): the token endpoint creates nothing on the platform.
        sign_in = urlsplit(str(request.url)).path.endswith(TOKEN_PATH) and not kwargs.get("dry_run")
        if (kwargs.get("dry_run") or (self.dry_run and not sign_in)) and str(request.method).upper() in WRITE_METHODS:
            log.info("dry-run: not sending %s %s", request.method, request.url)
            prepared = request if isinstance(request, requests.PreparedRequest) else self.prepare_request(request)
            return MockResponse(prepared)
        retry = kwargs.pop("retries", None) or self.retries
        self.requests_sent += 1
        while True:
            try:
                return super().send(request, retries=retry, **kwargs)
            except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError) as exc:
                # A body cut short (the connection dropped mid-answer): as retryable as a reset, for reads.
                if str(request.method).upper() in WRITE_METHODS:
                    raise
                retry = retry.increment(request.method, request.url, error=exc)  # MaxRetryError when spent
                retry.sleep()

    def _validate_json(self, request: Any, response: Any, retries: Any = None, **kwargs: Any) -> Any:
        """pyinaturalist re-sends a request whose JSON answer does not parse; never a write, which may
        already have been stored: the post ledger reconciles it instead of sending it twice.

        pyinaturalist offers no public hook for this, so this private override is the one place we use
        one; tests/platforms/test_faults.py fails if the library stops calling it (or starts re-sending
        writes another way)."""
        if str(request.method).upper() in WRITE_METHODS:
            return response
        return super()._validate_json(request, response, retries=retries, **kwargs)

    def request_times_since(self, since: float) -> list[float]:
        """When the requests (of every PlantBot process) since `since` were made, from the shared bucket."""
        bucket = FileLockSQLiteBucket(lock_path=self.lock_path, maxsize=max(r.limit for r in self.rates),
                                      identity=BUCKET, path=str(self.ratelimit_path))
        try:
            return sorted(t for t in bucket.all_items() if t > since)
        finally:
            bucket.close()


def _short(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _budget_error(exc: BucketFullException) -> PlatformError:
    info = exc.meta_info
    remaining = float(info.get("remaining_time", 0))
    rate: Any = info.get("rate")
    if remaining >= Duration.HOUR or getattr(rate, "interval", 0) >= Duration.HOUR:
        return BudgetExhausted(f"the daily API request budget is spent; polling pauses for about "
                               f"{remaining / 3600:.1f} h", retry_after=remaining)
    return PlatformError(f"request rate limit would need a {remaining:.0f} s wait; trying again next cycle",
                         retry_after=remaining)


class Http:
    """Requests through the session, answers as JSON, failures as one-line PlatformErrors."""

    def __init__(self, session: PlantBotSession, dry_run: bool = False) -> None:
        self.session = session
        self.dry_run = dry_run

    def request(self, method: str, url: str, *, params: Mapping[str, Any] | None = None,
                json: Any = None, data: Mapping[str, Any] | None = None, token: str | None = None,
                sign_in: bool = False) -> Any:
        """`sign_in`: a POST that creates nothing on the platform (an OAuth code exchange), sent even in dry-run."""
        method = method.upper()
        held = self.dry_run and method in WRITE_METHODS and not sign_in
        if held:
            log.info("dry-run: %s %s not sent", method, _short(url))
        try:
            resp = self.session.request(method, url, access_token=token, json=json, data=dict(data or {}) or None,
                                        raise_for_status=False, dry_run=held, **dict(params or {}))
        except BucketFullException as exc:
            raise _budget_error(exc) from None
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            reason = str(exc.__cause__ or exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise PlatformError(f"{method} {_short(url)} failed after retries: {reason}") from None
        return self._json(method, url, resp)

    def _json(self, method: str, url: str, resp: requests.Response) -> Any:
        where = f"{method} {_short(url)}"
        status = resp.status_code
        if status == 401:
            raise Unauthorized(f"{where}: HTTP 401 ({_error_text(resp)})", status=status)
        if status == 403:
            raise AuthError(f"{where}: HTTP {status} ({_error_text(resp)})", status=status)
        if status == 404:
            raise NotFound(f"{where}: not found (HTTP 404)", status=status)
        if status == 429:
            raise PlatformError(f"{where}: HTTP {status} after retries; left for the next cycle", status=status,
                                retry_after=_retry_after(resp))
        if status >= 500:
            raise PlatformError(f"{where}: HTTP {status} after retries; left for the next cycle", status=status)
        if status >= 400:
            raise PlatformError(f"{where}: HTTP {status} ({_error_text(resp)})", status=status)
        ctype = resp.headers.get("Content-Type", "")
        if "json" not in ctype.lower() and not getattr(resp, "from_cache", False):
            raise PlatformError(f"{where}: expected JSON, got {ctype.split(';')[0] or 'no content type'} "
                                f"({resp.text[:60].strip()!r})")
        try:
            return resp.json()
        except ValueError:
            raise PlatformError(f"{where}: the answer is not valid JSON") from None


def _retry_after(resp: requests.Response) -> float | None:
    """The Retry-After header in seconds (the delay form; an HTTP date or garbage gives None)."""
    try:
        return max(0.0, float(resp.headers.get("Retry-After", "")))
    except ValueError:
        return None


def _error_text(resp: requests.Response) -> str:
    try:
        doc = resp.json()
    except ValueError:
        return resp.text[:80].strip() or resp.reason
    if isinstance(doc, dict):
        for key in ("error_description", "error", "message", "errors"):
            if doc.get(key):
                return str(doc[key])[:160]
    return str(doc)[:160]
