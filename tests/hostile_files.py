"""Small files that ask for a lot: the memory and time bombs the daemon must refuse or survive."""

from __future__ import annotations

from pathlib import Path

from PIL import Image


def write_pdf(path: Path, objects: list[bytes]) -> Path:
    """A PDF of `objects` (object 1 must be the catalog), with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path


def pdf_of_large_pages(path: Path, pages: int, side_points: int) -> Path:
    """`pages` empty pages of side×side points: 2000 pt at 200 dpi is 31 million pixels a page, in a few KB."""
    kids = b" ".join(b"%d 0 R" % (3 + index) for index in range(pages))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages)]
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] >>" % (side_points, side_points)] * pages
    return write_pdf(path, objects)


def pdf_of_nested_forms(path: Path, depth: int = 40, fan_out: int = 4) -> Path:
    """One small page whose content draws a form that draws the next form `fan_out` times, `depth` deep.

    fan_out**depth draws from under 4 KB: the renderer works (and allocates) for ever.
    """
    first_form = 5
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 600 800] /Resources << /XObject << /F 5 0 R >> >> /Contents 4 0 R >>",
        _stream(b"q 600 0 0 800 0 0 cm /F Do Q"),
    ]
    for level in range(depth):
        draws = b" ".join([b"q 0.9 0 0 0.9 1 1 cm /F Do Q"] * fan_out)
        if level == depth - 1:
            objects.append(_form(b"0 0 m 1 1 l S", b""))
        else:
            objects.append(
                _form(
                    draws + b" 0 0 m 1 1 l S", b"/Resources << /XObject << /F %d 0 R >> >>" % (first_form + level + 1)
                )
            )
    return write_pdf(path, objects)


def tiff_of_large_frames(path: Path, frames: int, side: int) -> Path:
    """`frames` blank side×side frames, one bit a pixel, deflated: 36 million pixels a frame in a few KB."""
    frame = Image.new("1", (side, side), 1)
    frame.save(path, save_all=True, append_images=[frame] * (frames - 1), compression="tiff_deflate")
    return path


def _stream(content: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s >>\nstream\n%s\nendstream" % (len(content), extra, content)


def _form(content: bytes, resources: bytes) -> bytes:
    return _stream(content, b"/Type /XObject /Subtype /Form /BBox [0 0 1 1] " + resources)
