"""The iNaturalist simulator: a real HTTP server on loopback serving a World.

It answers the API v1 (`/v1/...`), the legacy Rails API (`/observations.json`...), OAuth and photo
routes of the site root, records every request it receives, and injects the faults of a FaultPlan.
Tests run it in-process on port 0; `plantbot sim` runs it from the command line (`serve_cli`).
"""

from __future__ import annotations

import ipaddress
import logging
import signal
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any

from bot.sim import legacy, oauth, v1
from bot.sim.faults import FaultPlan, FaultRule
from bot.sim.imagestore import PhotoStore
from bot.sim.model import SimObservation, World
from bot.sim.render import Ctx
from bot.sim.routing import BadRequest, Call, RecordedRequest, Reply, Route, SimHost, error_reply, html_reply, route
from bot.sim.tokens import TokenAuthority

logger = logging.getLogger(__name__)


def photo(srv: SimHost, call: Call) -> Reply:
    data = srv.photos.get(int(call.params["id"]), call.params["size"])
    if data is None:
        return error_reply(404, "Not found")
    return Reply(200, data, "image/jpeg", {"Cache-Control": "public, max-age=31536000"})


ROUTES: list[Route] = [
    *v1.ROUTES, *oauth.ROUTES, *legacy.ROUTES,
    route("GET", r"/photos/(?P<id>[0-9]+)/(?P<size>[a-z]+)\.(?:jpg|jpeg)", photo),
]


class SimServer:
    """The simulator; use as a context manager or call start()/stop()."""

    def __init__(self, world: World, host: str = "127.0.0.1", port: int = 0, faults: FaultPlan | None = None,
                 jwt_ttl: float = 86400.0, photo_url_base: str | None = None,
                 clock: Callable[[], float] = time.time, photo_latency: float = 0.0,
                 photo_bandwidth: float = 0.0) -> None:
        if not _is_loopback(host):
            raise ValueError(f"the simulator binds to loopback only, not {host!r}")
        self.world = world
        self.host = "127.0.0.1" if host == "localhost" else host
        self.port = port
        self.faults = faults
        self.photo_url_base = photo_url_base
        # A photo CDN's behaviour, for benchmarks: seconds before the first byte of each photo, and bytes
        # per second per photo response (0: as fast as loopback goes). Both apply to every photo request.
        self.photo_latency = photo_latency
        self.photo_bandwidth = photo_bandwidth
        self.clock = clock
        self.lock = threading.RLock()
        self.requests: list[RecordedRequest] = []
        self.tokens = TokenAuthority(clock, jwt_ttl)
        self.photos = PhotoStore(world)
        self.oauth_clients: dict[str, str] | None = None  # client_id -> secret; None accepts any client
        self.started_at = clock()
        self._log_lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> SimServer:
        httpd = ThreadingHTTPServer((self.host, self.port), _Handler)
        httpd.daemon_threads = True
        httpd.sim = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self.started_at = self.clock()
        self._stopping.clear()
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"sim-server:{self.port}", daemon=True)
        self._thread.start()
        logger.info("simulator listening on %s", self.url)
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # --- what tests use --------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def writes(self) -> list[RecordedRequest]:
        """POST/PUT/DELETE requests other than the OAuth sign-in ones (/oauth/...)."""
        with self._log_lock:
            return [r for r in self.requests
                    if r.method in ("POST", "PUT", "DELETE") and not r.path.startswith("/oauth/")]

    def issue_jwt(self, login: str) -> str:
        user = self._user(login)
        return self.tokens.jwt(user.id, user.login)

    def issue_access_token(self, login: str) -> str:
        return self.tokens.access_token(self._user(login).id)

    def max_requests_in_window(self, window: float = 1.0, path_prefix: str = "") -> int:
        """The most requests (path starting with the prefix) that arrived within any `window` seconds."""
        with self._log_lock:
            times = sorted(r.time for r in self.requests if r.path.startswith(path_prefix))
        best, first = 0, 0
        for last, stamp in enumerate(times):
            while stamp - times[first] >= window:
                first += 1
            best = max(best, last - first + 1)
        return best

    # --- what routes use -------------------------------------------------------------------------
    def visible(self, obs: SimObservation) -> bool:
        return not obs.deleted and obs.release_after_s <= self.clock() - self.started_at

    def render_ctx(self, call: Call) -> Ctx:
        return Ctx(self.world, self.url, call.photo_base, self.photos)

    def wait(self, seconds: float) -> None:
        """Sleeps for a fault, waking early when the server stops."""
        self._stopping.wait(seconds)

    def record(self, req: RecordedRequest) -> None:
        with self._log_lock:
            self.requests.append(req)

    def _user(self, login: str) -> Any:
        for user in self.world.users.values():
            if user.login == login:
                return user
        raise KeyError(f"no user {login!r} in the simulator's world")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.version == 4 and address.is_loopback


def dispatch(srv: SimServer, req: RecordedRequest, photo_base: str) -> Reply:
    """Finds the route and runs it; unknown routes get the API's 404 JSON."""
    known_path = False
    for method, pattern, func in ROUTES:
        match = pattern.match(req.path)
        if match is None:
            continue
        known_path = True
        if method == req.method:
            try:
                return func(srv, Call(req, match.groupdict(), photo_base))
            except BadRequest as exc:
                return error_reply(422, "Unprocessable Entity", str(exc))
            except Exception:
                logger.exception("simulator route %s %s failed", req.method, req.path)
                return error_reply(500, "Internal Server Error")
    return error_reply(405 if known_path else 404, "Method Not Allowed" if known_path else "Not found")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "iNatSim/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _handle(self) -> None:
        srv: SimServer = self.server.sim  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        parts = urllib.parse.urlsplit(self.path)
        req = RecordedRequest(method=self.command, path=parts.path,
                              query=urllib.parse.parse_qs(parts.query, keep_blank_values=True),
                              headers={k.lower(): v for k, v in self.headers.items()}, body=body,
                              time=time.monotonic())
        srv.record(req)
        plan = srv.faults
        rule = plan.pick(req.method, req.path, req.query) if plan is not None else None
        req.fault = rule.kind if rule else None
        try:
            self._answer(srv, req, rule)
        except (BrokenPipeError, ConnectionResetError):  # the client left (killed, timed out)
            self.close_connection = True

    def _answer(self, srv: SimServer, req: RecordedRequest, rule: FaultRule | None) -> None:
        kind = rule.kind if rule else None
        base = (rule.target if rule and kind == "foreign_host" else srv.photo_url_base or srv.url).rstrip("/")
        if rule is None or kind in ("corrupt", "truncate", "foreign_host", "drip", "bloat"):
            self._send(srv, req, dispatch(srv, req, base), rule)
        elif kind == "reset":
            self._reset()
        elif kind == "slow":
            srv.wait(rule.delay)
            self._send(srv, req, dispatch(srv, req, base), None)
        elif kind in ("hold", "reset_after"):
            reply = dispatch(srv, req, base)
            if kind == "reset_after":
                self._reset()
                return
            srv.wait(rule.delay)
            self._send(srv, req, reply, None)
        elif kind == "status":
            headers = {"Retry-After": str(max(0, round(rule.retry_after)))} if rule.status == 429 else {}
            reply = error_reply(rule.status, "Too Many Requests" if rule.status == 429 else "Server error",
                                rule.message)
            reply.headers.update(headers)
            self._send(srv, req, reply, None)
        elif kind == "html":
            self._send(srv, req, html_reply("<html><body><h1>Service temporarily unavailable</h1>"
                                            "<p>Please try again later.</p></body></html>"), None)
        elif kind == "redirect":
            query = urllib.parse.urlsplit(self.path).query
            location = rule.target.rstrip("/") + req.path + (f"?{query}" if query else "")
            self._send(srv, req, Reply(302, b"", "text/html; charset=utf-8", {"Location": location}), None)

    def _send(self, srv: SimServer, req: RecordedRequest, reply: Reply, rule: FaultRule | None) -> None:
        body = reply.body
        paced = req.path.startswith("/photos/") and reply.status == 200
        if paced and srv.photo_latency > 0:
            srv.wait(srv.photo_latency)
        if rule is not None and rule.kind == "corrupt" and srv.faults is not None:
            body = srv.faults.garbage(len(body))
        if rule is not None and rule.kind == "bloat" and "json" in reply.content_type:
            body = body + b" " * max(0, rule.size - len(body))
        req.status = reply.status  # before the answer leaves: a client may read the log as soon as it has it
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if rule is not None and rule.kind == "drip":
            for i in range(len(body)):
                if srv._stopping.is_set():
                    break
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                srv.wait(rule.delay)
            self.close_connection = True
            return
        if rule is not None and rule.kind == "truncate":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if paced and srv.photo_bandwidth > 0:
            self._write_paced(srv, body)
        else:
            self.wfile.write(body)

    def _write_paced(self, srv: SimServer, body: bytes) -> None:
        """Writes at `photo_bandwidth` bytes/s: a chunk, then the time that chunk takes on such a link."""
        chunk = max(1024, int(srv.photo_bandwidth / 20))  # ~20 writes a second
        for start in range(0, len(body), chunk):
            part = body[start:start + chunk]
            self.wfile.write(part)
            self.wfile.flush()
            srv.wait(len(part) / srv.photo_bandwidth)

    def _reset(self) -> None:
        """Drops the connection without a response: an RST, not a clean close."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()
        except OSError:
            pass


def serve_cli(world_dir: str | None, host: str, port: int, fault_specs: list[str], seed: int,
              photo_latency: float = 0.0, photo_bandwidth: float = 0.0) -> None:
    """`plantbot sim`: serves a saved world (or the default synthetic one) until Ctrl-C or SIGTERM."""
    if world_dir:
        world = World.load(world_dir)
    else:
        from bot.sim.world import WorldSpec, make_world

        world, _ = make_world(WorldSpec(seed=seed))
    plan = FaultPlan.parse(fault_specs, seed=seed) if fault_specs else None
    server = SimServer(world, host=host, port=port, faults=plan, photo_latency=photo_latency,
                       photo_bandwidth=photo_bandwidth).start()
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_term)
    print(f"iNaturalist simulator on {server.url} (API {server.api_url}); "
          f"{len(world.observations)} observations, {len(world.users)} users. Ctrl-C stops.", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop()
