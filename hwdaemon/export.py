"""Result → text, JSON, CSV, ALTO, PAGE, hOCR or a searchable PDF, and the one way hwdaemon writes a file: atomically.

Text formats come from the Result alone (`render`); a binary format also needs
the original scan, whose pages it carries (`render_bytes`, `BINARY_FORMATS`).
"""

from __future__ import annotations

import csv
import functools
import glob
import io
import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Literal

from hwdaemon.durable import fsync_folder
from hwdaemon.filenames import fit_name, split_extension
from hwdaemon.formats.alto import to_alto
from hwdaemon.formats.hocr import to_hocr
from hwdaemon.formats.page import to_page
from hwdaemon.model import Result

Format = Literal["txt", "json", "csv", "alto", "page", "hocr", "pdf"]
FORMATS: tuple[Format, ...] = ("txt", "json", "csv", "alto", "page", "hocr", "pdf")
BINARY_FORMATS: tuple[Format, ...] = ("pdf",)  # need the original file: render_bytes
PageSeparator = Literal["formfeed", "header"]
# the XML formats' files end as their readers expect (eScriptorium, Transkribus, hocr-tools); others in the format's name
EXTENSIONS: dict[Format, str] = {"alto": "alto.xml", "page": "page.xml", "hocr": "hocr"}
CSV_COLUMNS = ("file", "page", "line", "text", "confidence", "x", "y", "w", "h")


def to_txt(result: Result, page_separator: PageSeparator = "formfeed") -> str:
    """Lines in reading order; pages apart by a form feed (printers, `less`) or a `--- page N ---` header."""
    if page_separator == "header" and len(result.pages) > 1:
        return "".join(f"--- page {page.number} ---\n{page.text}\n" for page in result.pages)
    return result.text + "\n" if result.text else ""


def to_json(result: Result) -> str:
    return json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\n"


def to_csv(result: Result) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for page in result.pages:
        for number, line in enumerate(page.lines, start=1):
            box = line.box
            writer.writerow(
                [
                    result.source,
                    page.number,
                    number,
                    line.text,
                    f"{line.confidence:.4f}",
                    box.x,
                    box.y,
                    box.width,
                    box.height,
                ]
            )
    return buffer.getvalue()


def render(result: Result, format: Format, page_separator: PageSeparator = "formfeed") -> str:
    """A text format's content; a binary format is refused (it needs the original: `render_bytes`)."""
    if format in BINARY_FORMATS:
        raise ValueError(f"{format} is a binary format made from the original file: use render_bytes")
    if format == "txt":
        return to_txt(result, page_separator)
    if format == "alto":
        return to_alto(result)
    if format == "page":
        return to_page(result)
    if format == "hocr":
        return to_hocr(result)
    return to_json(result) if format == "json" else to_csv(result)


def extension(format: Format) -> str:
    """The file name extension (no dot) a format is written with: `{ext}` in the sinks' name templates."""
    return EXTENSIONS.get(format, format)


ONE_PAGE_FORMATS: tuple[Format, ...] = ("page",)  # PAGE XML holds one page: a multi-page scan gives a file a page


def files_of(result: Result, format: Format) -> list[tuple[str, Result]]:
    """The files one result makes in `format`, each as (name part, result): the whole result with no part, or,
    for a one-page format and a scan of several pages, each page alone with `-page2`-like parts."""
    if format not in ONE_PAGE_FORMATS or len(result.pages) <= 1:
        return [("", result)]
    return [(f"-page{page.number}", replace(result, pages=(page,))) for page in result.pages]


def with_part(name: str, part: str) -> str:
    """`note.page.xml` with part `-page2` → `note-page2.page.xml`."""
    stem, suffix = split_extension(name)
    return f"{stem}{part}{suffix}"


def render_bytes(
    result: Result, format: Format, page_separator: PageSeparator = "formfeed", original: Path | None = None
) -> bytes:
    """Any format as its file's bytes: text formats in UTF-8, `pdf` made from `original` (the scan the Result was read from)."""
    if format == "pdf":
        if original is None:
            raise ValueError("the pdf format is made from the original file, and none was given")
        from hwdaemon.searchable_pdf import searchable_pdf  # pikepdf and OCRmyPDF's renderer: only for PDFs

        return searchable_pdf(result, original)
    return render(result, format, page_separator).encode("utf-8")


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write to a temp file beside `path`, fsync, rename: readers see all or nothing. Text is UTF-8.

    Temp files of an earlier write of the same `path` that was killed midway are
    removed first: the retry that follows a crash is what cleans up after it.
    The file gets the mode the umask allows (0644 under the usual 022, 0660 under
    007), as any program's new file would: a group that shares the outbox reads it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{fit_name(path.name, reserve_bytes=_TEMP_NAME_BYTES)}."
    for stale in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        stale.unlink(missing_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        os.fchmod(descriptor, 0o666 & ~process_umask())
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


_TEMP_NAME_BYTES = len("..") + 8 + len(".tmp")  # mkstemp's dot, random part and suffix


@functools.cache
def process_umask() -> int:
    """The umask, read once (reading it means setting it, which is not thread-safe later)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
