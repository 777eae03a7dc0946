"""Input files → `Document`: decode, apply EXIF orientation, normalise pixel formats, enforce limits.

Scanners write PDF and multi-page TIFF, phones HEIC, everything else PNG/JPEG.
The type is decided by the file's first bytes, never by its name. Every refusal
is an `InputFileError` that names the file, the reason and, for limits, the
config key that sets it. The file itself is only ever read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from hwdaemon.config import InputsConfig
from hwdaemon.errors import InputFileError
from hwdaemon.model import Document, Page

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


def sniff_type(head: bytes) -> str | None:
    """The file type from its first 16 bytes, or None when unknown."""
    for signature, offset, kind in _SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            return kind
    return None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_document(path: Path, inputs: InputsConfig) -> Document:
    """Decode every page of `path`, or raise InputFileError saying why not."""
    name = str(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as stream:
            head = stream.read(16)
    except OSError as exc:
        raise InputFileError(name, f"cannot read: {exc.strerror}") from exc
    if size == 0:
        raise InputFileError(name, "file is empty (0 bytes)")
    if size > inputs.max_file_bytes:
        raise InputFileError(name, f"file is {size} bytes, over inputs.max_file_bytes ({inputs.max_file_bytes})")
    kind = sniff_type(head)
    if kind is None:
        raise InputFileError(name, f"not a supported file ({SUPPORTED_NAMES}); its first bytes match none")
    frames = _render_pdf(path, inputs) if kind == "pdf" else _decode_image(path, kind, inputs)
    pages = tuple(Page(number=index + 1, image=image) for index, image in enumerate(frames))
    if not pages:
        raise InputFileError(name, "the file has no pages")
    return Document(source=name, sha256=sha256_of(path), pages=pages)


def _decode_image(path: Path, kind: str, inputs: InputsConfig) -> Iterator[np.ndarray]:
    name = str(path)
    if kind == "heic":
        _register_heif()
    try:
        with Image.open(path) as opened:
            for index, frame in enumerate(ImageSequence.Iterator(opened)):
                if index >= inputs.max_pages:
                    raise InputFileError(name, f"more than inputs.max_pages ({inputs.max_pages}) pages")
                width, height = frame.size
                if width * height > inputs.max_pixels:
                    raise InputFileError(name, _too_many_pixels(index + 1, f"{width}×{height}", inputs))
                yield to_array(frame)
    except InputFileError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own guard, far above ours
        raise InputFileError(name, _too_many_pixels(1, "a decompression bomb", inputs)) from exc
    except UnidentifiedImageError as exc:
        raise InputFileError(name, f"cannot decode image: {exc}") from exc
    except (OSError, ValueError, SyntaxError, RuntimeError) as exc:  # Pillow's words for truncated or corrupt data
        raise InputFileError(name, f"image is truncated or corrupt: {exc}") from exc


def _register_heif() -> None:
    try:
        from pillow_heif import register_heif_opener
    except ImportError as exc:
        raise InputFileError("(heic input)", "HEIC support needs the pillow-heif package: pip install pillow-heif") from exc
    register_heif_opener()


def _render_pdf(path: Path, inputs: InputsConfig) -> Iterator[np.ndarray]:
    """Render each PDF page at `inputs.pdf_dpi` to grey, checking page count and size first."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_raw

    name = str(path)
    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        if getattr(exc, "err_code", None) == pdfium_raw.FPDF_ERR_PASSWORD:
            raise InputFileError(name, "PDF is encrypted (password-protected); save an unprotected copy") from exc
        raise InputFileError(name, f"PDF is damaged or not a PDF: {exc}") from exc
    try:
        count = len(pdf)
        if count > inputs.max_pages:
            raise InputFileError(name, f"PDF has {count} pages, over inputs.max_pages ({inputs.max_pages})")
        scale = inputs.pdf_dpi / 72
        for index in range(count):
            page = pdf[index]
            width_points, height_points = page.get_size()
            pixels = int(width_points * scale) * int(height_points * scale)
            if pixels > inputs.max_pixels:
                raise InputFileError(name, _too_many_pixels(index + 1, f"{pixels} pixels at {inputs.pdf_dpi} dpi", inputs))
            bitmap = page.render(scale=scale, grayscale=True)
            yield np.asarray(bitmap.to_pil().convert("L"), dtype=np.uint8).copy()
            bitmap.close()
            page.close()
    finally:
        pdf.close()


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
