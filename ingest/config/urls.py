"""WebSocket and REST URL checks: encrypted unless the server is on this machine."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def is_loopback_host(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_ws_url(url: str) -> str:
    """Return `url` if it is wss://, or ws:// to a loopback host; raise ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError("a ws:// or wss:// URL with a host")
    try:
        _ = parts.port
    except ValueError:
        raise ValueError("a URL with a numeric port") from None
    if parts.scheme == "ws" and not is_loopback_host(parts.hostname):
        raise ValueError("wss:// (plain ws:// is only allowed to 127.0.0.0/8, ::1 or localhost)")
    return url


def check_http_url(url: str) -> str:
    """Return `url` if it is https://, or http:// to a loopback host; raise ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("an http:// or https:// URL with a host")
    try:
        _ = parts.port
    except ValueError:
        raise ValueError("a URL with a numeric port") from None
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError("https:// (plain http:// is only allowed to 127.0.0.0/8, ::1 or localhost)")
    if parts.username or parts.password or parts.query:
        raise ValueError("a URL without user, password or query (the instrument endpoints are public)")
    return url


def loopback_http_url(ws_url: str) -> str | None:
    """http://host:port of a ws:// URL to this machine (the simulator serves REST beside its
    WebSocket); None for any other URL."""
    parts = urlsplit(ws_url)
    if parts.scheme != "ws" or not parts.hostname or not is_loopback_host(parts.hostname):
        return None
    return f"http://{parts.netloc}"
