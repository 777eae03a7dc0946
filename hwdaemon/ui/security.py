"""Who may use the review page, and proof that a form post came from it.

- On loopback with no token, anyone on this machine may (like `hwdaemon status`).
- With a token (always required off loopback): `Authorization: Bearer TOKEN`, or
  a session cookie set by the login form (HttpOnly, SameSite=Strict) holding an
  HMAC of the token, so the token itself never sits in the browser.
- CSRF: a random per-browser session id in a cookie (HttpOnly,
  SameSite=Strict, renewed at login), and in every form a hidden `csrf_token`
  that is an HMAC of that id with a server secret kept in
  `state_dir/ui_secret` (mode 0600). A plain double submit (field == cookie)
  would accept any pair an attacker chose and planted as a cookie; this one
  accepts only a token the server issued for this browser's own session.
- Forms are read with bounds (no files, a few thousand fields, 64 KiB each);
  the whole body is bounded by `ui.max_request_bytes` in `app.py`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path

import structlog
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request

from hwdaemon.config import UiConfig
from hwdaemon.errors import ConfigError
from hwdaemon.ui.hosts import is_loopback

log = structlog.get_logger()

SESSION_COOKIE = "hwdaemon_session"
CSRF_COOKIE = "hwdaemon_csrf"
TOKEN_ENV = "HWDAEMON_UI_TOKEN"
SECRET_NAME = "ui_secret"
SECRET_BYTES = 32
MAX_FORM_FIELDS = 2000  # the save form has one field per line of a page
MAX_FIELD_BYTES = 65_536
LIMIT_MESSAGES = ("Too many", "Field exceeded", "Part exceeded")  # Starlette's words for its form limits


def token_for(ui: UiConfig) -> str | None:
    """The configured token (config first, then the environment); refuse to serve off loopback without one."""
    token = ui.token or os.environ.get(TOKEN_ENV) or None
    if token is None and not is_loopback(ui.host):
        raise ConfigError(
            f"ui.host {ui.host} is not loopback: set ui.token or {TOKEN_ENV} so strangers cannot read and change results"
        )
    if token is not None and len(token) < 16:
        raise ConfigError(
            "ui.token is too short: use at least 16 characters (e.g. `python -c 'import secrets; print(secrets.token_urlsafe())'`)"
        )
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
        if authorization.lower().startswith("bearer ") and hmac.compare_digest(
            authorization[7:].strip().encode(), self.token.encode()
        ):
            return True
        cookie = request.cookies.get(SESSION_COOKIE, "")
        return hmac.compare_digest(cookie.encode(), self.session_value.encode())

    def token_matches(self, offered: str) -> bool:
        return self.token is not None and hmac.compare_digest(offered.encode(), self.token.encode())


def server_secret(state_dir: Path) -> bytes:
    """The key CSRF tokens are signed with: `state_dir/ui_secret`, made once (0600), shared by `hwdaemon ui` and the daemon.

    Kept on disk so open pages survive a restart. Written beside and linked into
    place, so two processes starting together agree on one secret.
    """
    path = state_dir / SECRET_NAME
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=f".{SECRET_NAME}.", dir=state_dir)  # mode 0600
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(secrets.token_bytes(SECRET_BYTES))
                file.flush()
                os.fsync(file.fileno())
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass  # another process made it first: use theirs
        finally:
            os.unlink(temporary)
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
        log.warning(
            "ui_secret_mode_fixed",
            path=str(path),
            hint="it was readable by others, now 0600; if someone may have read it, delete it (a new one is made at start)",
        )
    secret = path.read_bytes()
    if len(secret) < SECRET_BYTES:
        raise ConfigError(
            f"{path}: only {len(secret)} bytes, {SECRET_BYTES} needed; delete the file and the review page makes a new one"
        )
    return secret


class Csrf:
    """Per-session CSRF tokens: HMAC(server secret, the browser's session id from its cookie)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def sign(self, session_id: str) -> str:
        digest = hmac.new(self._secret, b"hwdaemon csrf\0" + session_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def session_id_of(self, request: Request) -> str:
        """This browser's session id: its cookie, or a fresh one the response will set (also after login)."""
        new_id = getattr(request.state, "new_csrf", None)
        if new_id:
            return str(new_id)
        existing = request.cookies.get(CSRF_COOKIE, "")
        if len(existing) >= 32:
            return existing
        return self.renew(request)

    def renew(self, request: Request) -> str:
        """Start a new session id (at login, so a token fetched before it is void); the gate sets the cookie."""
        request.state.new_csrf = secrets.token_urlsafe(32)
        return str(request.state.new_csrf)

    def token_of(self, request: Request) -> str:
        """The token the page's forms carry."""
        return self.sign(self.session_id_of(request))

    async def checked_form(self, request: Request) -> FormData:
        """The posted form (bounded), after checking its token was issued for this browser's session (403 otherwise)."""
        form = await bounded_form(request)
        offered = str(form.get("csrf_token", ""))
        session_id = request.cookies.get(CSRF_COOKIE, "")
        expected = self.sign(session_id)
        if not offered or len(session_id) < 32 or not hmac.compare_digest(offered.encode(), expected.encode()):
            raise HTTPException(
                403, "the form's CSRF token is missing or is not this session's; reload the page and try again"
            )
        return form


async def bounded_form(request: Request) -> FormData:
    """The posted form with no files and bounded fields; 413 past a bound, as for a body past `ui.max_request_bytes`.

    Starlette reports its form limits as 400; they are about size, so 413.
    """
    try:
        return await request.form(max_files=0, max_fields=MAX_FORM_FIELDS, max_part_size=MAX_FIELD_BYTES)
    except HTTPException as exc:
        if exc.status_code == 400 and str(exc.detail).startswith(LIMIT_MESSAGES):
            raise HTTPException(413, f"the form is too large: {exc.detail}") from None
        raise
