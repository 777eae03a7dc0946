"""A small client of the HTTP API, for `hwdaemon submit` and scripts: send a file, wait for its job, fetch a result.

Files are sent as the raw body (`?filename=`), streamed from disk, so a large
scan is never held in memory here either. An answer the API gives about one
file (400, 413, 422) is that file's failure (`UploadRefused`), and so is a
file that cannot be opened here (InputFileError, worded as `process` words
it); a token it refuses is RemoteAuthError (77) and an API that cannot be
reached or fails is RemoteError (69), since every other file would fare the same.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, BinaryIO

import requests

from hwdaemon.errors import InputFileError, RemoteAuthError, RemoteError
from hwdaemon.redaction import redact_url

TERMINAL_STATES = ("done", "failed", "duplicate")
LONG_POLL_SECONDS = 30.0
RATE_LIMIT_RETRIES = 5


class UploadRefusedError(Exception):
    """The API refused one file or one request about it (its status and message); the other files go on."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ApiClient:
    def __init__(self, url: str, token: str, timeout_seconds: float = 60.0) -> None:
        self.base = url.rstrip("/") + "/api/v1"
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {token}"
        self._timeout = timeout_seconds

    def submit(
        self,
        path: Path,
        profile: str | None = None,
        inbox: str | None = None,
        formats: tuple[str, ...] = (),
        is_reprocess: bool = False,
    ) -> dict[str, Any]:
        """Send one file; the job it became (202), or the job that already has its bytes (200)."""
        params: dict[str, str] = {"filename": path.name}
        for key, value in (("profile", profile), ("inbox", inbox)):
            if value:
                params[key] = value
        if formats:
            params["formats"] = ",".join(formats)
        if is_reprocess:
            params["reprocess"] = "true"
        with _open_regular(path) as stream:
            headers = {"Content-Type": "application/octet-stream"}
            return self._json("POST", "/documents", params=params, data=stream, headers=headers)

    def document(self, job_id: int, wait_seconds: float = 0) -> dict[str, Any]:
        params = {"wait": f"{wait_seconds:g}"} if wait_seconds else {}
        return self._json("GET", f"/documents/{job_id}", params=params, timeout=self._timeout + wait_seconds)

    def wait(self, job_id: int, timeout_seconds: float) -> dict[str, Any]:
        """The job once it ended (done, failed, duplicate) or the timeout passed, long-polling the API."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            left = deadline - time.monotonic()
            document = self.document(job_id, wait_seconds=max(0.0, min(LONG_POLL_SECONDS, left)))
            if document["state"] in TERMINAL_STATES or left <= 0:
                return document

    def result(self, job_id: int, format_name: str, page: int | None = None) -> bytes:
        params = {"page": str(page)} if page else {}
        response = self._request("GET", f"/documents/{job_id}/result.{format_name}", params=params)
        return response.content

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body: dict[str, Any] = self._request(method, path, **kwargs).json()
        return body

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = self.base + path
        kwargs.setdefault("timeout", self._timeout)
        for _ in range(RATE_LIMIT_RETRIES):
            try:
                response = self._session.request(method, url, **kwargs)
            except requests.RequestException as exc:
                raise RemoteError(
                    f"cannot reach {redact_url(url)}: {type(exc).__name__}; is the daemon serving ui.enabled?"
                ) from exc
            if response.status_code != 429:
                break
            time.sleep(float(response.headers.get("Retry-After", "1")))  # over the token's rate: wait as told
            if hasattr(kwargs.get("data"), "seek"):
                kwargs["data"].seek(0)
        if response.status_code in (401, 403):
            raise RemoteAuthError(f"{redact_url(url)}: {_message(response)}")
        if response.status_code >= 500 or response.status_code == 429:
            raise RemoteError(f"{method} {redact_url(url)} answered {response.status_code}: {_message(response)}")
        if response.status_code >= 400:
            raise UploadRefusedError(response.status_code, _message(response))
        return response


def _open_regular(path: Path) -> BinaryIO:
    """`path` opened to be sent; InputFileError when it is missing, unreadable or no regular file (a FIFO would hang)."""
    try:
        if path.exists() and not path.is_file():
            raise InputFileError(str(path), "not a regular file")
        return path.open("rb")
    except OSError as exc:
        raise InputFileError(str(path), f"cannot open: {exc.strerror} (errno {exc.errno})") from exc


def _message(response: requests.Response) -> str:
    try:
        return str(response.json().get("error", response.text[:200]))
    except ValueError:
        return response.text[:200]
