"""Who is calling the API and what they may do: Bearer tokens from `api.tokens`, scopes, a rate limit per token.

Every API request needs a token, loopback included: the API is for programs,
and a program on the same host is no more trusted than one elsewhere. The
offered token is compared with every configured one in constant time
(hmac.compare_digest, no early exit), so timing tells neither the token nor
which one was close. Tokens are read from `config_of()` at each request, so a
reload that removes one refuses it at once. A token never reaches a log, a
record or a message: only its name does.

Scopes: `submit` (send scans), `read` (states, results, the list), `review`
(approve), `admin` (everything, and retry and forget jobs).
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from hwdaemon.config import ApiConfig, ApiScope


@dataclass(frozen=True, slots=True)
class Caller:
    """The token a request came with, by name, and its scopes."""

    name: str
    scopes: frozenset[ApiScope]
    rate_limit_per_minute: int

    def may(self, scope: ApiScope) -> bool:
        return "admin" in self.scopes or scope in self.scopes


def caller_of(authorization: str | None, api: ApiConfig) -> Caller | None:
    """The configured token matching `Authorization: Bearer …`, or None. Every token is compared, whatever matches."""
    if not authorization:
        return None
    scheme, _, offered = authorization.partition(" ")
    if scheme.lower() != "bearer" or not offered.strip():
        return None
    offered_bytes = offered.strip().encode()
    found: Caller | None = None
    for token in api.tokens:
        if hmac.compare_digest(offered_bytes, token.token.get_secret_value().encode()) and found is None:
            found = Caller(
                token.name, frozenset(token.scopes), token.rate_limit_per_minute or api.rate_limit_per_minute
            )
    return found


class RateLimiter:
    """A moving one-minute window per token name (the `limits` library, in memory: per serving process)."""

    def __init__(self) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def retry_after_seconds(self, caller: Caller) -> int | None:
        """Count this request; None when it is within the caller's limit, else how long until one is free."""
        item = RateLimitItemPerMinute(caller.rate_limit_per_minute)
        if self._limiter.hit(item, "api", caller.name):
            return None
        reset_at = self._limiter.get_window_stats(item, "api", caller.name).reset_time
        return max(1, int(reset_at - time.time()) + 1)
