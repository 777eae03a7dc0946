"""Input files → `Document`: decode, apply EXIF orientation, normalise pixel formats, enforce limits.

Scanners write PDF and multi-page TIFF, phones HEIC, everything else PNG/JPEG.
The type is decided by the file's first bytes, never by its name. Every refusal
is an `InputFileError` that names the file, the reason and, for limits, the
config key that sets it. The file is opened once and only ever read; pages are
decoded one at a time, so memory follows the largest page, not the file.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from hwdaemon.config import InputsConfig
from hwdaemon.errors import InputFileError
from hwdaemon.model import Document, Page
from hwdaemon.pdf_render import DAMAGED, ENCRYPTED, PdfRenderer, RenderError

# (magic prefix, offset, type)
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "png"),
    (b"\xff\xd8\xff", 0, "jpeg"),
    (b"II*\x00", 0, "tiff"),
    (b"MM\x00*", 0, "tiff"),
    (b"BM", 0, "bmp"),
    (b"WEBP", 8, "webp"),
    (b"%PDF-", 0, "pdf"),
    (b"ftypheic", 4, "heic"),
    (b"ftypheix", 4, "heic"),
    (b"ftyphevc", 4, "heic"),
    (b"ftypheim", 4, "heic"),
    (b"ftypmif1", 4, "heic"),
    (b"ftypmsf1", 4, "heic"),
)
SUPPORTED_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".pdf", ".heic", ".heif"})
SUPPORTED_NAMES = "PNG, JPEG, TIFF, BMP, WebP, PDF, HEIC"
MAX_PAGE_ASPECT = 200  # a long written line is about 1:75, a till roll 1:30; 1×100000 is no page


def sniff_type(head: bytes) -> str | None:
    """The file type from its first 16 bytes, or None when unknown."""
    for signature, offset, kind in _SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            return kind
    return None


def sha256_of(path: Path, inside: Path | None = None) -> str:
    """The file's sha256, read through `open_input` (so `inside` is enforced); InputFileError if it cannot be read."""
    with open_input(path, inside) as stream:
        try:
            return _sha256_of_stream(stream)
        except OSError as exc:
            raise InputFileError(str(path), f"cannot read: {exc.strerror} (errno {exc.errno})") from exc


def _sha256_of_stream(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    stream.seek(0)
    for chunk in iter(lambda: stream.read(1 << 20), b""):
        digest.update(chunk)
    stream.seek(0)
    return digest.hexdigest()


def open_input(path: Path, inside: Path | None = None) -> BinaryIO:
    """Open `path` once for reading; what is hashed, decoded and checked is this descriptor's file.

    With `inside` (an inbox), the opened file must be the one `path` resolves to
    inside that folder: a symlink retargeted after the file was queued (to a secret
    elsewhere) is refused, not read. O_NONBLOCK keeps a FIFO from hanging the open.
    """
    name = str(path)
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        raise InputFileError(name, f"cannot open: {exc.strerror} (errno {exc.errno})") from exc
    try:
        opened = os.fstat(descriptor)
        if not stat.S_ISREG(opened.st_mode):
            raise InputFileError(name, "not a regular file")
        if inside is not None:
            _check_inside(path, inside, opened)
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def _check_inside(path: Path, inside: Path, opened: os.stat_result) -> None:
    name = str(path)
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(os.path.realpath(inside)):
        raise InputFileError(name, f"symlink points outside the inbox, to {real}")
    try:
        current = os.stat(real)
    except OSError as exc:
        raise InputFileError(name, f"changed while being opened: {exc.strerror}") from exc
    if (current.st_dev, current.st_ino) != (opened.st_dev, opened.st_ino):
        raise InputFileError(name, f"changed while being opened: the file opened is not the one at {real}")


@contextmanager
def open_document(path: Path, inputs: InputsConfig, inside: Path | None = None) -> Iterator[Document]:
    """The file as a Document whose pages are decoded one at a time, as they are iterated.

    Every limit that can be checked before decoding is checked here (size, type,
    page count, each page's pixels, the job's pixels in all), so a refusal costs
    no decoding; a page is released before the next is decoded, so a 200-page
    file needs the memory of one page.
    """
    name = str(path)
    with open_input(path, inside) as stream:
        size = os.fstat(stream.fileno()).st_size
        if size == 0:
            raise InputFileError(name, "file is empty (0 bytes)")
        check_file_size(name, size, inputs)
        try:
            kind = sniff_type(stream.read(16))
            if kind is None:
                raise InputFileError(name, f"not a supported file ({SUPPORTED_NAMES}); its first bytes match none")
            sha256 = _sha256_of_stream(stream)  # only once the file is one we would read
        except OSError as exc:
            raise InputFileError(name, f"cannot read: {exc.strerror} (errno {exc.errno})") from exc
        if kind == "pdf":
            with _pdf_pages(stream, name, inputs) as pages:
                yield Document(source=name, sha256=sha256, pages=pages)
        else:
            yield Document(source=name, sha256=sha256, pages=_ImagePages(stream, name, kind, inputs))


def check_file_size(name: str, size: int, inputs: InputsConfig) -> None:
    """Refuse a file over inputs.max_file_bytes from its size alone, before anything reads (or hashes) it."""
    if size > inputs.max_file_bytes:
        raise InputFileError(name, f"file is {size} bytes, over inputs.max_file_bytes ({inputs.max_file_bytes})")


class _ImagePages:
    """A still image or a multi-frame TIFF, decoded frame by frame each time it is iterated."""

    def __init__(self, stream: BinaryIO, name: str, kind: str, inputs: InputsConfig) -> None:
        self._stream, self._name, self._inputs = stream, name, inputs
        if kind == "heic":
            _register_heif()
        with self._opened() as image:
            sizes = []
            for index, frame in enumerate(ImageSequence.Iterator(image)):
                if index >= inputs.max_pages:
                    raise InputFileError(name, f"more than inputs.max_pages ({inputs.max_pages}) pages")
                sizes.append(frame.size)
        _check_sizes(name, sizes, inputs, "")

    def __iter__(self) -> Iterator[Page]:
        with self._opened() as image:
            for index, frame in enumerate(ImageSequence.Iterator(image)):
                yield Page(number=index + 1, image=self._decoded(frame), dpi=_dpi_of(frame))

    def _decoded(self, frame: Image.Image) -> np.ndarray:
        try:
            return to_array(frame)
        except (OSError, ValueError, SyntaxError, RuntimeError) as exc:  # Pillow's words for truncated or corrupt data
            raise InputFileError(self._name, f"image is truncated or corrupt: {exc}") from exc

    @contextmanager
    def _opened(self) -> Iterator[Image.Image]:
        self._stream.seek(0)
        try:
            with Image.open(self._stream) as image:
                yield image
        except InputFileError:
            raise
        except Image.DecompressionBombError as exc:  # Pillow's own guard, far above ours
            raise InputFileError(self._name, _too_many_pixels(1, "a decompression bomb", self._inputs)) from exc
        except UnidentifiedImageError as exc:  # its text names the stream, not the file: say it plainly
            raise InputFileError(self._name, "image is truncated or corrupt: no image can be decoded from it") from exc
        except (OSError, ValueError, SyntaxError, RuntimeError) as exc:
            raise InputFileError(self._name, f"image is truncated or corrupt: {exc}") from exc


def _dpi_of(frame: Image.Image) -> float | None:
    """The image's own resolution when its metadata gives a plausible one (scanners do; screenshots say 72 or nothing)."""
    dpi = frame.info.get("dpi")
    try:
        value = float(dpi[0]) if isinstance(dpi, tuple) else None
    except (TypeError, ValueError, IndexError):
        return None
    return value if value is not None and 50 <= value <= 2400 else None


def _register_heif() -> None:
    try:
        from pillow_heif import register_heif_opener
    except ImportError as exc:
        raise InputFileError(
            "(heic input)", "HEIC support needs the pillow-heif package: pip install pillow-heif"
        ) from exc
    register_heif_opener()


class _PdfPages:
    """A PDF's pages, rendered by a child process (pdf_render.py) as they are iterated, once."""

    def __init__(self, renderer: PdfRenderer, name: str, inputs: InputsConfig) -> None:
        self._renderer, self._name, self._inputs = renderer, name, inputs
        self._is_used = False

    def __iter__(self) -> Iterator[Page]:
        if self._is_used:
            raise RuntimeError("a PDF's pages can be iterated once; open the document again")
        self._is_used = True
        try:
            for index, image in enumerate(self._renderer.pages()):
                yield Page(number=index + 1, image=image, dpi=float(self._inputs.pdf_dpi))
        except RenderError as exc:
            raise InputFileError(self._name, _render_failure(exc, self._inputs)) from exc


@contextmanager
def _pdf_pages(stream: BinaryIO, name: str, inputs: InputsConfig) -> Iterator[_PdfPages]:
    try:
        renderer = PdfRenderer(stream, inputs.pdf_dpi, inputs.pdf_render_memory_mb, inputs.pdf_page_seconds)
    except RenderError as exc:
        raise InputFileError(name, _render_failure(exc, inputs)) from exc
    try:
        sizes = renderer.page_sizes_points
        if len(sizes) > inputs.max_pages:
            raise InputFileError(name, f"PDF has {len(sizes)} pages, over inputs.max_pages ({inputs.max_pages})")
        scale = inputs.pdf_dpi / 72
        _check_sizes(
            name,
            [(int(width * scale), int(height * scale)) for width, height in sizes],
            inputs,
            f" at {inputs.pdf_dpi} dpi",
        )
        yield _PdfPages(renderer, name, inputs)
    finally:
        renderer.close()


def _render_failure(exc: RenderError, inputs: InputsConfig) -> str:
    if exc.kind == ENCRYPTED:
        return "PDF is encrypted (password-protected); save an unprotected copy"
    if exc.kind == DAMAGED:
        return f"PDF is damaged or not a PDF: {exc.detail}"
    if exc.kind == "timeout":
        return f"{exc.detail} (inputs.pdf_page_seconds)"
    return f"{exc.detail} (inputs.pdf_render_memory_mb: {inputs.pdf_render_memory_mb})"


def _check_sizes(name: str, sizes: list[tuple[int, int]], inputs: InputsConfig, unit: str) -> None:
    """Every page's pixels, the job's pixels in all, and a shape that a page can have."""
    if not sizes:
        raise InputFileError(name, "the file has no pages")
    for number, (width, height) in enumerate(sizes, start=1):
        if width * height > inputs.max_pixels:
            raise InputFileError(name, _too_many_pixels(number, f"{width}×{height}{unit}", inputs))
        if max(width, height) > MAX_PAGE_ASPECT * max(1, min(width, height)):
            raise InputFileError(
                name,
                f"page {number} is {width}×{height} pixels{unit}: over {MAX_PAGE_ASPECT} times longer than wide, which is no page",
            )
    total = sum(width * height for width, height in sizes)
    if total > inputs.max_job_pixels:
        raise InputFileError(
            name,
            f"its {len(sizes)} pages hold {total} pixels{unit} in all, over inputs.max_job_pixels ({inputs.max_job_pixels})",
        )


def _too_many_pixels(page: int, size: str, inputs: InputsConfig) -> str:
    return f"page {page} is {size}, over inputs.max_pixels ({inputs.max_pixels} pixels)"


def to_array(frame: Image.Image) -> np.ndarray:
    """Any Pillow mode → uint8 grey or RGB, upright, transparency flattened onto white paper."""
    image = ImageOps.exif_transpose(frame) or frame
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(image, dtype=np.float64)
        top = values.max() or 1.0
        return np.clip(values * (255.0 / top), 0, 255).astype(np.uint8)
    if mode == "1":
        return np.asarray(image.convert("L"), dtype=np.uint8)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(paper, rgba).convert("RGB"), dtype=np.uint8)
    if mode == "L":
        return np.asarray(image, dtype=np.uint8)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def expand_inputs(paths: list[Path], recursive: bool) -> list[Path]:
    """Files named directly, plus the supported files inside named folders, sorted."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            files.extend(
                sorted(
                    child
                    for child in path.glob(pattern)
                    if child.is_file() and child.suffix.lower() in SUPPORTED_SUFFIXES and not child.name.startswith(".")
                )
            )
        else:
            files.append(path)
    return files
