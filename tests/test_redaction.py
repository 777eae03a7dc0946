"""redact_url and friends: what is masked, what stays readable."""

from __future__ import annotations

import pytest

from hwdaemon.redaction import redact_url, redact_urls_in, redact_values, secrets_of_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:pa55word@example.org/hook", "https://user:***@example.org/hook"),
        ("https://bare-token@example.org/hook", "https://***@example.org/hook"),
        ("redis://:pa55word@10.0.0.5:6379/0", "redis://:***@10.0.0.5:6379/0"),
        ("https://example.org/hook?token=abc123&tenant=2", "https://example.org/hook?token=***&tenant=***"),
        ("https://example.org/hook?abc123", "https://example.org/hook?***"),
        ("https://example.org/hook#frag-secret", "https://example.org/hook#***"),
        ("https://example.org/hook", "https://example.org/hook"),
        ("http://[::1/hook?token=abc123", "http://[::1/hook?***"),  # malformed: still masked
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_urls_inside_text_are_masked() -> None:
    text = "POST https://u:pa55word@example.org/hook?token=abc123 failed; retrying https://example.org/ok"
    assert (
        redact_urls_in(text) == "POST https://u:***@example.org/hook?token=*** failed; retrying https://example.org/ok"
    )


def test_known_values_are_masked_wherever_they_appear() -> None:
    url = "https://u:pa55word@example.org/hook?token=abc%2B123"
    message = "HTTPConnectionPool(host='example.org'): Max retries exceeded with url: /hook?token=abc%2B123 (echo abc+123, pa55word)"
    masked = redact_values(message, secrets_of_url(url))
    assert "abc" not in masked and "pa55word" not in masked
    assert redact_values("attempt 1 of 3", ["1", "3"]) == "attempt 1 of 3"  # too short to be a secret, and would garble
