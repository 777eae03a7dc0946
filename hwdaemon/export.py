"""Result → text, JSON or CSV, and the one way hwdaemon writes a file: atomically."""

from __future__ import annotations

import csv
import glob
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Literal

from hwdaemon.model import Result

Format = Literal["txt", "json", "csv"]
FORMATS: tuple[Format, ...] = ("txt", "json", "csv")
PageSeparator = Literal["formfeed", "header"]
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
                [result.source, page.number, number, line.text, f"{line.confidence:.4f}", box.x, box.y, box.width, box.height]
            )
    return buffer.getvalue()


def render(result: Result, format: Format, page_separator: PageSeparator = "formfeed") -> str:
    if format == "txt":
        return to_txt(result, page_separator)
    return to_json(result) if format == "json" else to_csv(result)


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write to a temp file beside `path`, fsync, rename: readers see all or nothing. Text is UTF-8.

    Temp files of an earlier write of the same `path` that was killed midway are
    removed first: the retry that follows a crash is what cleans up after it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        stale.unlink(missing_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
