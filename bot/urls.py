"""Which URLs from the platform PlantBot may fetch, link to or let a browser load: one set of rules.

A URL in platform JSON is written by strangers, so everything that fetches, renders or links one asks
here first (the photo downloader, the review UI's cards and CSP, the audit report). Nothing here touches
the network: the downloader adds the DNS check on top (bot.photos).

An allowed-host entry is `host` or `host:port`. A bare host allows only the scheme's default port (443
for https), except a loopback host (the simulator, a local mirror), which allows any port. Plain http is
only ever allowed on loopback.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from urllib.parse import SplitResult, urlsplit

LOOPBACK_NAMES = ("localhost", "localhost.localdomain")
DEFAULT_PORTS = {"https": 443, "http": 80}


def is_loopback_host(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _entry(entry: str) -> tuple[str, int | None]:
    """("host", port or None) from an allowed-host entry ("host", "host:port", "[::1]:8080")."""
    text = entry.strip().lower().rstrip(".")
    try:
        parts = urlsplit(f"//{text}")
        return (parts.hostname or "").rstrip("."), parts.port
    except ValueError:
        return text, None


def _split(url: str) -> SplitResult | None:
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url) or "\\" in url:
        return None  # whitespace, control characters or backslashes: browsers and servers disagree on them
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return None
    return parts


def host_allowed(url: str, allowed_hosts: Iterable[str]) -> str | None:
    """Why `url` is refused (scheme, host or port), or None when it names an allowed host and port."""
    parts = _split(url)
    if parts is None:
        return f"unusable URL {url!r:.80}"
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        return f"no host in {url!r:.80}"
    if parts.username is not None or parts.password is not None:
        return f"credentials in the URL for {host} refused"
    loopback = is_loopback_host(host)
    if scheme != "https" and not (scheme == "http" and loopback):
        return f"{scheme or 'no'} scheme refused for {host} (https only; http only on loopback)"
    port = parts.port or DEFAULT_PORTS[scheme]
    for allowed_host, allowed_port in map(_entry, allowed_hosts):
        if allowed_host != host:
            continue
        if allowed_port == port or (allowed_port is None and (loopback or port == DEFAULT_PORTS[scheme])):
            return None
        return f"port {port} of {host} is not allowed"
    return f"host {host} is not an allowed photo host"


def safe_link(url: str | None, allowed_hosts: Iterable[str]) -> str | None:
    """`url` when it may be rendered as a link or an image source, else None (show it as text)."""
    if not url or host_allowed(url, allowed_hosts) is not None:
        return None
    return url


def csp_sources(allowed_hosts: Sequence[str]) -> list[str]:
    """CSP source expressions naming exactly these hosts (for `img-src` and the like)."""
    sources: list[str] = []
    for entry in allowed_hosts:
        host, port = _entry(entry)
        if not host:
            continue
        name = f"[{host}]" if ":" in host else host
        if is_loopback_host(host):
            suffix = f":{port}" if port else ":*"
            sources += [f"http://{name}{suffix}", f"https://{name}{suffix}"]
        else:
            sources.append(f"https://{name}" + (f":{port}" if port and port != 443 else ""))
    return list(dict.fromkeys(sources))
