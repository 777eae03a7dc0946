"""Secrets out of what we print: URLs with credentials, and known secret values in messages.

One place for it, so a broker URL, a webhook URL and a sink's error message are
masked the same way. What is masked: the password of `user:pass@` (or the whole
userinfo when it is a bare token, `token@host`), every query value (`?token=…`)
and the fragment. The path stays, so an operator can still tell endpoints
apart; a secret carried in the path itself (Slack-style `/hooks/T0/B1/XYZ`)
cannot be told from a route and is not hidden.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "***"
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
MIN_SECRET_CHARS = 4  # shorter values ("1", "on") are no secret, and masking them would garble every message


def redact_url(url: str) -> str:
    """`url` fit for logs and the store: password, query values and fragment replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:  # a malformed URL (bad IPv6 literal): mask anything that could be userinfo or a query
        return re.sub(r"\?.*$", "?" + MASK, re.sub(r"//[^/@]*@", "//" + MASK + "@", url))
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0] + ":" if ":" in userinfo else ""
        netloc = f"{user}{MASK}@{host}"
    query = (
        "&".join(f"{field.split('=', 1)[0]}={MASK}" if "=" in field else MASK for field in parts.query.split("&"))
        if parts.query
        else ""
    )
    fragment = MASK if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def redact_urls_in(text: str) -> str:
    """Every `scheme://…` in free text (an error message, a traceback) passed through redact_url."""
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)


def secrets_of_url(url: str) -> list[str]:
    """The secret parts of a URL (userinfo, query values, fragment), raw and percent-decoded, for redact_values."""
    parts = urlsplit(url)
    found = []
    if "@" in parts.netloc:
        found += parts.netloc.rsplit("@", 1)[0].split(":", 1)
    found += [field.split("=", 1)[-1] for field in parts.query.split("&") if field]
    found += [parts.fragment]
    return found + [unquote(value) for value in found]


def redact_values(text: str, secrets: Iterable[str]) -> str:
    """`text` with each secret value (of MIN_SECRET_CHARS or more) replaced by ***, longest first."""
    for secret in sorted({value for value in secrets if len(value) >= MIN_SECRET_CHARS}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
