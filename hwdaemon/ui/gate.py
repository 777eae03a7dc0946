"""The gate every request passes, and the sign-in form that opens it.

Every route but the login form and static files needs the token when one is
set (`security.Guard`); every response carries the security headers and, when
a new one was made, the CSRF session cookie. Signing in renews that session,
so a CSRF token fetched before it (by anyone) is void after it.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hwdaemon.ui.security import CSRF_COOKIE, SESSION_COOKIE, Csrf, Guard
from hwdaemon.ui.views import Views

OPEN_PATHS = ("/login", "/static/")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
}


class Gate:
    """ASGI middleware: the token check, the security headers and the CSRF cookie.

    Plain ASGI, not BaseHTTPMiddleware: that one reads the body in a task
    group, which wraps the body limit's 413 in an ExceptionGroup (a 500).
    """

    def __init__(self, app: ASGIApp, guard: Guard, views: Views) -> None:
        self._app = app
        self._guard = guard
        self._views = views

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        request = Request(scope, receive)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                new_csrf = getattr(request.state, "new_csrf", None)
                if new_csrf:
                    cookie = Response()
                    is_https = request.url.scheme == "https"
                    cookie.set_cookie(CSRF_COOKIE, new_csrf, httponly=True, samesite="strict", secure=is_https)
                    headers.append("set-cookie", cookie.headers["set-cookie"])
            await send(message)

        if not request.url.path.startswith(OPEN_PATHS) and not self._guard.is_allowed(request):
            response = self._views.login_page(request, safe_next(request.url.path), status_code=401)
            response.headers["WWW-Authenticate"] = 'Bearer realm="hwdaemon"'
            await response(scope, receive, send_with_headers)
        else:
            await self._app(scope, receive, send_with_headers)


class Login:
    """The sign-in form (GET /login) and its post (POST /login), which sets the session cookie."""

    def __init__(self, guard: Guard, csrf: Csrf, views: Views) -> None:
        self._guard = guard
        self._csrf = csrf
        self._views = views

    def form(self, request: Request) -> Response:
        return self._views.login_page(request, safe_next(request.query_params.get("next")))

    async def submit(self, request: Request) -> Response:
        form = await self._csrf.checked_form(request)
        target = safe_next(str(form.get("next", "")))
        if not self._guard.token_matches(str(form.get("token", ""))):
            return self._views.login_page(request, target, error="That token is not right.", status_code=401)
        self._csrf.renew(request)  # a token fetched before signing in (by anyone) is void after it
        response = RedirectResponse(target, status_code=303)
        session = self._guard.session_value
        response.set_cookie(
            SESSION_COOKIE, session, httponly=True, samesite="strict", secure=request.url.scheme == "https"
        )
        return response


def safe_next(target: str | None) -> str:
    """Only our own paths: `//host` or `http://…` would make the login an open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/jobs"
