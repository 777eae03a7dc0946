"""The review page's HTML: Jinja2 templates (autoescaped) and what every page is rendered with.

Every page gets the CSRF token its forms carry and whether signing in is on;
a route adds only its own context. Rendering happens where it is called: on
the thread pool for the routes, on the event loop only for the gate's login
page (templates are compiled once and cached).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from hwdaemon.ui.security import Csrf

TEMPLATES = Path(__file__).parent / "templates"


class Views:
    """Renders a template into a response; one per app."""

    def __init__(self, csrf: Csrf, is_login_required: bool) -> None:
        self._csrf = csrf
        self._is_login_required = is_login_required
        environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
        self._templates = Jinja2Templates(env=environment)
        self._templates.env.filters["percent"] = percent

    def render(self, request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
        context = {"csrf_token": self._csrf.token_of(request), "login_required": self._is_login_required, **context}
        return self._templates.TemplateResponse(request, name, context, status_code=status_code)

    def login_page(self, request: Request, next_path: str, error: str = "", status_code: int = 200) -> Response:
        """The sign-in form, which returns to `next_path` (already checked by `safe_next`)."""
        return self.render(request, "login.html", {"error": error, "next": next_path}, status_code=status_code)


def percent(value: float | None) -> str:
    """A confidence as the page shows it: `31%`, or a dash when there is none."""
    return "–" if value is None else f"{value * 100:.0f}%"
