"""PDF pages rendered in a child process, one at a time, under a memory cap and a clock.

A 4 KB PDF can ask PDFium for gigabytes (nested form XObjects) or for minutes of
work on one page; inside the daemon that is the kernel's OOM killer or a stalled
worker. So PDFium runs in a child of its own: it gets the already opened file as
its stdin (no second lookup by path), caps its own address space, reports every
page's size before rendering anything, then writes grey pages to its stdout one
after the other. The pipe's back-pressure keeps at most one page in flight; the
parent waits at most `pdf_page_seconds` for each and kills the child past that.

Protocol on the child's stdout: one JSON line `{"pages": [[w_pt, h_pt], ...]}` or
`{"error": kind, "detail": text}`, then per page a JSON line `{"width": w,
"height": h}` followed by exactly w·h bytes.
"""

from __future__ import annotations

import json
import os
import resource
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

ENCRYPTED = "encrypted"
DAMAGED = "damaged"


class RenderError(Exception):
    """The child could not render: `kind` is encrypted, damaged, timeout or crashed."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


class PdfRenderer:
    """The parent's side: start the child on an open PDF, read its page sizes, then its pages."""

    def __init__(self, stream: BinaryIO, dpi: int, memory_mb: int, page_seconds: float) -> None:
        stream.seek(0)
        self._page_seconds = page_seconds
        self._process = subprocess.Popen(
            [sys.executable, "-m", "hwdaemon.pdf_render", str(dpi), str(memory_mb)],
            stdin=stream,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
        assert self._process.stdout is not None
        self._out = self._process.stdout.fileno()
        self._buffer = bytearray()
        header = self._read_json("the page list")
        if "error" in header:
            self.close()
            raise RenderError(str(header["error"]), str(header.get("detail", "")))
        self.page_sizes_points: list[tuple[float, float]] = [(float(w), float(h)) for w, h in header["pages"]]

    def pages(self) -> Iterator[np.ndarray]:
        """Each page as a uint8 grey array, in order; the child renders the next while this one is used."""
        for number in range(1, len(self.page_sizes_points) + 1):
            shape = self._read_json(f"page {number}")
            if "error" in shape:
                self.close()
                raise RenderError(str(shape["error"]), f"page {number}: {shape.get('detail', '')}")
            height, width = int(shape["height"]), int(shape["width"])
            image = np.empty((height, width), dtype=np.uint8)
            self._read_into(image.data.cast("B"), f"page {number}")
            yield image

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        if self._process.stdout:
            self._process.stdout.close()

    def _read_json(self, what: str) -> dict:  # type: ignore[type-arg]
        deadline = time.monotonic() + self._page_seconds
        while b"\n" not in self._buffer:
            self._fill(deadline, what)
        line, _, rest = bytes(self._buffer).partition(b"\n")
        self._buffer = bytearray(rest)
        return json.loads(line)  # type: ignore[no-any-return]

    def _read_into(self, target: memoryview, what: str) -> None:
        deadline = time.monotonic() + self._page_seconds
        filled = min(len(self._buffer), len(target))
        target[:filled] = self._buffer[:filled]
        del self._buffer[:filled]
        while filled < len(target):
            self._wait_readable(deadline, what)
            count = os.readv(self._out, [target[filled:]])
            if count == 0:
                self._raise_crashed(what)
            filled += count

    def _fill(self, deadline: float, what: str) -> None:
        self._wait_readable(deadline, what)
        chunk = os.read(self._out, 1 << 16)
        if not chunk:
            self._raise_crashed(what)
        self._buffer += chunk

    def _wait_readable(self, deadline: float, what: str) -> None:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([self._out], [], [], left)[0]:
            self.close()
            raise RenderError("timeout", f"rendering {what} took longer than {self._page_seconds:g} s")

    def _raise_crashed(self, what: str) -> None:
        code = self._process.wait()
        self.close()
        raise RenderError(
            "crashed", f"the PDF renderer died on {what} (exit status {code}): most often it ran out of its memory"
        )


# the child ------------------------------------------------------------------


def _child(dpi: int, memory_mb: int) -> int:
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_raw

    out = sys.stdout.buffer
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    budget = _address_space_now() + memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (budget if hard == resource.RLIM_INFINITY else min(budget, hard), hard))
    try:
        pdf = pdfium.PdfDocument(os.fdopen(0, "rb"), autoclose=True)
    except pdfium.PdfiumError as exc:
        kind = ENCRYPTED if getattr(exc, "err_code", None) == pdfium_raw.FPDF_ERR_PASSWORD else DAMAGED
        out.write(json.dumps({"error": kind, "detail": str(exc)}).encode() + b"\n")
        return 0
    sizes = [list(pdf.get_page_size(index)) for index in range(len(pdf))]
    out.write(json.dumps({"pages": sizes}).encode() + b"\n")
    out.flush()
    scale = dpi / 72
    for index in range(len(sizes)):
        try:
            page = pdf[index]
            bitmap = page.render(scale=scale, grayscale=True)
            grey = np.asarray(bitmap.to_pil().convert("L"), dtype=np.uint8)
        except pdfium.PdfiumError as exc:
            out.write(json.dumps({"error": DAMAGED, "detail": str(exc)}).encode() + b"\n")
            return 0
        out.write(json.dumps({"width": grey.shape[1], "height": grey.shape[0]}).encode() + b"\n")
        out.write(np.ascontiguousarray(grey).data)
        out.flush()
        del grey
        bitmap.close()
        page.close()
    return 0


def _address_space_now() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


if __name__ == "__main__":
    sys.exit(_child(int(sys.argv[1]), int(sys.argv[2])))
