"""Result + the original scan → a searchable PDF/A: the original pages untouched, an invisible text layer on top.

The rule: the original's pixels are never re-encoded. A PDF input keeps its own
pages (JPEG, JBIG2 or CCITT images, vector content and all) and gets the text
layer added; an image input is wrapped by img2pdf, which embeds JPEG, PNG and
TIFF (CCITT G4 included) as they are, and only a format PDF cannot carry (WebP,
HEIC, a PNG with alpha, a mirrored EXIF orientation) is decoded and embedded
losslessly as PNG, pixel for pixel what hwdaemon read.

The text layer is drawn by OCRmyPDF's own renderer (`ocrmypdf.fpdf_renderer`:
its glyphless font, text render mode 3, each word stretched over its box along
the line's baseline), from the same word boxes every export uses
(`hwdaemon.layout.words_of`), then laid over each page by pikepdf, which undoes
a page's /Rotate so the words land where they are seen. PDF/A-2b is written and
checked by `pikepdf.pdfa.save`, which validates the bytes it wrote (an allowlist
validator: it approves only what it knows conforms).

Physical size: a PDF page keeps its own; an image page is `width / dpi` inches,
with the Result's dpi (the image's own metadata), else 300 dpi — the usual scan
resolution — since most phone photos and many scans carry none.

Needs the `ocrmypdf` extra (`pip install 'hwdaemon[ocrmypdf]'`): OCRmyPDF brings
img2pdf, fpdf2 and pikepdf with its PDF/A validator.
"""

from __future__ import annotations

import io
import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Literal

import structlog

from hwdaemon.errors import PluginError
from hwdaemon.layout import baseline_of, baseline_slope_offset, words_of
from hwdaemon.model import Box, Line, PageResult, Result

if TYPE_CHECKING:
    import pikepdf
    from ocrmypdf.hocrtransform import Baseline, BoundingBox, OcrElement

log = structlog.get_logger(__name__)

PdfaFlavour = Literal["2b", "3b"]
ASSUMED_IMAGE_DPI = 300.0  # for an image without resolution metadata, the usual scanner setting
_PDF_MAGIC = b"%PDF-"


class UnusableOriginalError(ValueError):
    """The original cannot carry the text layer: unreadable, or not the pages the Result was read from."""


def searchable_pdf(result: Result, original: Path, pdfa: PdfaFlavour | None = "2b") -> bytes:
    """The PDF: `original`'s pages with `result`'s words as invisible, selectable text; PDF/A unless `pdfa` is None.

    A PDF input that cannot be made PDF/A by declaration and repair (fonts not
    embedded, transparency in PDF/A-1, ...) is written as a plain PDF with a
    warning: its text layer is worth more than the label.
    """
    pikepdf = _pikepdf()
    from pikepdf import pdfa as pdfa_check

    with _original_document(original, result) as document:
        if len(document.pages) != len(result.pages):
            raise UnusableOriginalError(
                f"{original.name} has {len(document.pages)} page(s) and its result {len(result.pages)}; "
                "was the file replaced after it was read?"
            )
        with pikepdf.Pdf.open(io.BytesIO(text_layer_pdf(result))) as text_layer:
            for page, text_page in zip(document.pages, text_layer.pages, strict=True):
                page.add_overlay(text_page, pikepdf.Rectangle(page.trimbox))  # undoes the page's /Rotate
        buffer = io.BytesIO()
        if pdfa is not None:
            try:
                pdfa_check.save(document, buffer, pdfa, output_intent="sRGB")
                return buffer.getvalue()
            except pdfa_check.PdfaError as exc:
                findings = "; ".join(str(finding) for finding in list(exc.report.findings)[:3])
                log.warning("pdf_not_pdfa", file=original.name, flavour=pdfa, findings=findings)
                buffer = io.BytesIO()
        document.save(buffer, compress_streams=True)
        return buffer.getvalue()


def text_layer_pdf(result: Result) -> bytes:
    """One page per PageResult, each page's size in points, with only invisible text: OCRmyPDF's renderer."""
    from ocrmypdf.font import MultiFontManager
    from ocrmypdf.fpdf_renderer import Fpdf2MultiPageRenderer

    fonts = MultiFontManager(_ocrmypdf_fonts())
    pages = [(index, ocr_page(page), _dpi_of(page)) for index, page in enumerate(result.pages)]
    renderer = Fpdf2MultiPageRenderer(pages_data=pages, multi_font_manager=fonts, invisible_text=True)
    with tempfile.TemporaryDirectory(prefix="hwdaemon-pdf-") as folder:
        target = Path(folder) / "text.pdf"
        renderer.render(target)
        return target.read_bytes()


def ocr_page(page: PageResult) -> OcrElement:
    """A PageResult as OCRmyPDF's page tree: page → one text line per word → the word.

    OCRmyPDF's renderer sizes a line's font to the line's box, so each word gets a line
    of its own, boxed as the word (its ink): a search highlights the word as it is
    written, not its whole line's height. All keep their line's baseline, so text
    extraction still reads them as one line.
    """
    from ocrmypdf.hocrtransform import BoundingBox, OcrClass, OcrElement

    lines = []
    for line in page.lines:
        for word in words_of(line):
            box = word.box
            if box.width <= 0 or box.height <= 0:
                continue
            word_element = OcrElement(
                ocr_class=OcrClass.WORD,
                bbox=_bbox(box.x, box.y, box.width, box.height),
                text=word.text,
                confidence=word.confidence,
            )
            lines.append(
                OcrElement(
                    ocr_class=OcrClass.LINE,
                    bbox=_bbox(box.x, box.y, box.width, box.height),
                    baseline=_hocr_baseline(line, box),
                    text=word.text,
                    confidence=word.confidence,
                    children=[word_element],
                )
            )
    return OcrElement(
        ocr_class=OcrClass.PAGE,
        bbox=BoundingBox(left=0, top=0, right=page.width, bottom=page.height),
        dpi=_dpi_of(page),
        page_number=page.number - 1,
        children=lines,
    )


def _bbox(x: int, y: int, width: int, height: int) -> BoundingBox:
    from ocrmypdf.hocrtransform import BoundingBox

    return BoundingBox(left=x, top=y, right=x + width, bottom=y + height)


def _hocr_baseline(line: Line, box: Box) -> Baseline:
    """The line's baseline as hOCR states it, against `box` (layout.baseline_slope_offset)."""
    from ocrmypdf.hocrtransform import Baseline

    slope, offset = baseline_slope_offset(baseline_of(line), box)
    return Baseline(slope=slope, intercept=offset)


def _dpi_of(page: PageResult) -> float:
    return page.dpi if page.dpi and math.isfinite(page.dpi) and page.dpi > 0 else ASSUMED_IMAGE_DPI


@contextmanager
def _original_document(original: Path, result: Result) -> Iterator[pikepdf.Pdf]:
    """The original as a pikepdf document: a PDF itself, an image wrapped by img2pdf."""
    import pikepdf

    with original.open("rb") as stream:
        is_pdf = stream.read(len(_PDF_MAGIC)) == _PDF_MAGIC
    try:
        document = pikepdf.Pdf.open(original if is_pdf else io.BytesIO(_image_pdf(original, result)))
    except pikepdf.PdfError as exc:
        raise UnusableOriginalError(f"{original.name} cannot be opened as a PDF: {exc}") from exc
    with document:
        yield document


def _image_pdf(original: Path, result: Result) -> bytes:
    """The image's frames as PDF pages at the Result's dpi (else 300): embedded as they are where img2pdf can."""
    import img2pdf

    dpi = _dpi_of(result.pages[0]) if result.pages else ASSUMED_IMAGE_DPI
    layout = img2pdf.get_fixed_dpi_layout_fun((dpi, dpi))
    try:
        return bytes(img2pdf.convert(str(original), layout_fun=layout, rotation=img2pdf.Rotation.ifvalid))
    except (img2pdf.ImageOpenError, img2pdf.AlphaChannelError, img2pdf.ExifOrientationError, ValueError) as exc:
        log.info("pdf_image_decoded", file=original.name, reason=str(exc))
    try:
        frames = list(_decoded_frames(original))
    except (OSError, ValueError) as exc:
        raise UnusableOriginalError(f"{original.name} cannot be decoded: {exc}") from exc
    return bytes(img2pdf.convert(frames, layout_fun=layout, rotation=img2pdf.Rotation.none))


def _decoded_frames(original: Path) -> Iterator[bytes]:
    """Each frame as hwdaemon read it (`inputs.to_array`: upright, alpha on white paper), as lossless PNG."""
    from PIL import Image, ImageSequence

    from hwdaemon.inputs import _register_heif, to_array

    _register_heif()
    with Image.open(original) as image:
        for frame in ImageSequence.Iterator(image):
            buffer = io.BytesIO()
            Image.fromarray(to_array(frame)).save(buffer, format="PNG")
            yield buffer.getvalue()


def _pikepdf() -> ModuleType:
    """pikepdf with its PDF/A validator and OCRmyPDF's renderer, or PluginError (exit 69) saying what to install."""
    try:
        import pikepdf
        import pikepdf.pdfa  # needs pikepdf[pdfa]
        from ocrmypdf import fpdf_renderer  # noqa: F401  # the text layer's renderer
    except ImportError as exc:
        raise PluginError(
            f"the pdf format needs OCRmyPDF ({exc.name} is missing); install it: pip install 'hwdaemon[ocrmypdf]'"
        ) from exc
    return pikepdf


def _ocrmypdf_fonts() -> Path:
    import ocrmypdf

    return Path(ocrmypdf.__file__).parent / "data"
