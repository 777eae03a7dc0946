"""Who may use the review page, and proof that a form post came from it.

- On loopback with no token, anyone on this machine may (like `hwdaemon status`).
- With a token (always required off loopback): `Authorization: Bearer TOKEN`, or
  a session cookie set by the login form (HttpOnly, SameSite=Strict) holding an
  HMAC of the token, so the token itself never sits in the browser.
- CSRF: a random per-browser cookie that every form post must echo in a
  hidden `csrf_token` field (double submit); a foreign site can neither read
  the cookie nor, with SameSite=Strict, have it sent.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request

from hwdaemon.config import UiConfig
from hwdaemon.errors import ConfigError

SESSION_COOKIE = "hwdaemon_session"
CSRF_COOKIE = "hwdaemon_csrf"
TOKEN_ENV = "HWDAEMON_UI_TOKEN"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_for(ui: UiConfig) -> str | None:
    """The configured token (config first, then the environment); refuse to serve off loopback without one."""
    token = ui.token or os.environ.get(TOKEN_ENV) or None
    if token is None and not is_loopback(ui.host):
        raise ConfigError(f"ui.host {ui.host} is not loopback: set ui.token or {TOKEN_ENV} so strangers cannot read and change results")
    if token is not None and len(token) < 16:
        raise ConfigError("ui.token is too short: use at least 16 characters (e.g. `python -c 'import secrets; print(secrets.token_urlsafe())'`)")
    return token


class Guard:
    def __init__(self, token: str | None) -> None:
        self.token = token

    @property
    def session_value(self) -> str:
        assert self.token is not None
        return hmac.new(self.token.encode(), b"hwdaemon review session", hashlib.sha256).hexdigest()

    def is_allowed(self, request: Request) -> bool:
        if self.token is None:
            return True
        authorization = request.headers.get("authorization", "")
        if authorization.lower().startswith("bearer ") and hmac.compare_digest(authorization[7:].strip().encode(), self.token.encode()):
            return True
        cookie = request.cookies.get(SESSION_COOKIE, "")
        return hmac.compare_digest(cookie.encode(), self.session_value.encode())

    def token_matches(self, offered: str) -> bool:
        return self.token is not None and hmac.compare_digest(offered.encode(), self.token.encode())


def csrf_token_of(request: Request) -> str:
    """This browser's CSRF token: its cookie, or a fresh one the response will set."""
    existing = request.cookies.get(CSRF_COOKIE)
    if existing and len(existing) >= 32:
        return existing
    if not hasattr(request.state, "new_csrf"):
        request.state.new_csrf = secrets.token_urlsafe(32)
    return str(request.state.new_csrf)


async def checked_form(request: Request) -> FormData:
    """The posted form, after checking its CSRF token against the cookie (403 otherwise)."""
    form = await request.form()
    offered = str(form.get("csrf_token", ""))
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not offered or not cookie or not hmac.compare_digest(offered.encode(), cookie.encode()):
        raise HTTPException(403, "the form's CSRF token is missing or does not match; reload the page and try again")
    return form
