"""Which Host headers the review page answers, so a web page cannot reach it by DNS rebinding.

A page on evil.example whose name is re-pointed at 127.0.0.1 talks to the
review page from the victim's own browser; its requests still say
`Host: evil.example` (the browser sends the name it resolved). Answering only
the names an operator uses — loopback names, the bound address, and
`ui.allowed_hosts` behind a proxy — turns those requests away (400) before any
route runs. Starlette's TrustedHostMiddleware does the checking; this module
only says which names. Plain functions, no Starlette: `metrics` asks `is_loopback` too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
WILDCARD_ADDRESSES = ("", "0.0.0.0", "::", "[::]")


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1), bracketed or not."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    """0.0.0.0 or :: — every address of the machine, none of which is a name a browser sends."""
    return host.strip().lower() in WILDCARD_ADDRESSES


def allowed_hosts(bound_host: str, configured: Iterable[str]) -> list[str]:
    """Host names for TrustedHostMiddleware: loopback names, the bound address (unless a wildcard), `ui.allowed_hosts`.

    IPv6 addresses are bracketed as they appear in a Host header (`::1` → `[::1]`).
    """
    names = [*LOOPBACK_NAMES]
    if not is_wildcard(bound_host):
        names.append(_as_host_header(bound_host))
    names += [_as_host_header(name) for name in configured]
    return list(dict.fromkeys(name.lower() for name in names))


def _as_host_header(host: str) -> str:
    host = host.strip()
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host
