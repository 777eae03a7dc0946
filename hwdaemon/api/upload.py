"""Reading an upload request into a spool file: multipart/form-data, or the raw body with ?filename=.

The size is checked before any byte is read when the client announces it
(Content-Length), and again as each chunk arrives (chunked bodies, lying
clients), so memory holds at most FLUSH_BYTES of an upload whatever its size.
The multipart body is parsed as it streams (python-multipart's push parser):
the file part goes to the spool, the few small form fields to memory,
bounded. A body that ends early (the client went away) raises, and the spool
file is gone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from hwdaemon.api.spool import FLUSH_BYTES, Spool, UploadTooLargeError

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks  # declared for type checkers only

FILE_FIELD = "file"
MAX_FIELD_BYTES = 4096
MAX_FIELDS = 16
_MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers and the small fields around the file


class BadUploadError(Exception):
    """The request is not an upload we can take (no file part, a broken multipart body, a field too long)."""


@dataclass(frozen=True, slots=True)
class Received:
    """An upload whose bytes are all in its spool file, and the form fields that came with it."""

    spool: Spool
    filename: str | None
    content_type: str | None
    fields: dict[str, str] = field(default_factory=dict)


async def receive_upload(request: Request, state_dir: Path, limit_bytes: int) -> Received:
    """The request's file in a spool file (placed by the caller), its name and form fields.

    Raises UploadTooLargeError (413), BadUploadError (400), or starlette's
    ClientDisconnect; in every case the spool file is already removed.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit_bytes + _MULTIPART_OVERHEAD:
        raise UploadTooLargeError(limit_bytes)  # announced too large: not one byte is read
    spool = await run_in_threadpool(Spool, state_dir, limit_bytes)
    try:
        content_type, options = parse_options_header(request.headers.get("content-type", ""))
        if content_type == b"multipart/form-data":
            return await _multipart(request, spool, options.get(b"boundary"))
        await _copy(request, spool, lambda chunk: [chunk])
        return Received(spool, request.query_params.get("filename"), content_type.decode("latin-1") or None)
    except BaseException:
        await run_in_threadpool(spool.discard)
        raise


async def _copy(request: Request, spool: Spool, file_bytes_of: Callable[[bytes], list[bytes]]) -> None:
    """Stream the body: `file_bytes_of(chunk)` says which bytes of each chunk are the file's; written a MiB at a time."""
    pending = bytearray()
    received = body_bytes = 0
    async for chunk in request.stream():
        body_bytes += len(chunk)
        if (
            body_bytes > spool.limit_bytes + _MULTIPART_OVERHEAD
        ):  # bytes around the file count too (an endless preamble)
            raise UploadTooLargeError(spool.limit_bytes)
        for piece in file_bytes_of(chunk):
            received += len(piece)
            if received > spool.limit_bytes:
                raise UploadTooLargeError(spool.limit_bytes)
            pending += piece
        if len(pending) >= FLUSH_BYTES:
            await run_in_threadpool(spool.write, bytes(pending))
            pending.clear()
    if pending:
        await run_in_threadpool(spool.write, bytes(pending))


async def _multipart(request: Request, spool: Spool, boundary: bytes | None) -> Received:
    if not boundary:
        raise BadUploadError("multipart/form-data without a boundary")
    form = _FormReader()
    parser = MultipartParser(boundary, form.callbacks())

    def feed(chunk: bytes) -> list[bytes]:
        try:
            parser.write(chunk)
        except FormParserError as exc:
            raise BadUploadError(f"the multipart body is malformed: {exc}") from None
        return form.take_file_bytes()

    await _copy(request, spool, feed)
    try:
        parser.finalize()
    except FormParserError as exc:
        raise BadUploadError(f"the multipart body is malformed: {exc}") from None
    if not form.has_file:
        raise BadUploadError(f"no `{FILE_FIELD}` part with a filename: send the scan as -F {FILE_FIELD}=@scan.jpg")
    if not form.is_complete:
        raise BadUploadError("the multipart body ended before its closing boundary")
    return Received(spool, form.filename, form.file_content_type, form.fields)


class _FormReader:
    """python-multipart callbacks: the `file` part's bytes are handed out as they come, other fields kept (bounded)."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.file_content_type: str | None = None
        self.has_file = False
        self.is_complete = False
        self._file_bytes: list[bytes] = []
        self._headers: dict[bytes, bytes] = {}
        self._header_name = b""
        self._header_value = b""
        self._name = ""
        self._is_file = False
        self._value = bytearray()

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._begin,
            "on_part_data": self._data,
            "on_part_end": self._end,
            "on_header_field": self._header_field,
            "on_header_value": self._header_part,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done,
            "on_end": self._done,
        }

    def take_file_bytes(self) -> list[bytes]:
        taken, self._file_bytes = self._file_bytes, []
        return taken

    def _begin(self) -> None:
        self._headers, self._value, self._is_file = {}, bytearray(), False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_part(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name, self._header_value = b"", b""

    def _headers_done(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        if self._name == FILE_FIELD and b"filename" in options:
            if self.has_file:
                raise BadUploadError(f"one `{FILE_FIELD}` per request: send each scan on its own")
            self.has_file = self._is_file = True
            self.filename = options[b"filename"].decode("utf-8", "replace")
            content_type = self._headers.get(b"content-type")
            self.file_content_type = content_type.decode("latin-1") if content_type else None
        elif len(self.fields) >= MAX_FIELDS:
            raise BadUploadError(f"more than {MAX_FIELDS} form fields")

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            self._file_bytes.append(data[start:end])
            return
        self._value += data[start:end]
        if len(self._value) > MAX_FIELD_BYTES:
            raise BadUploadError(f"form field {self._name!r} is longer than {MAX_FIELD_BYTES} bytes")

    def _end(self) -> None:
        if not self._is_file:
            self.fields[self._name] = self._value.decode("utf-8", "replace")

    def _done(self) -> None:
        self.is_complete = True
