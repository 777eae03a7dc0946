"""Result → hOCR 1.2 (XHTML): ocr_page → ocr_carea → ocr_par → ocr_line → ocrx_word, each with its bbox.

Confidences are `x_wconf` in percent (0..100), as Tesseract writes them and hOCR
readers expect; a line's baseline is `baseline slope offset`, the offset measured
from the bottom left of the line's bbox. `ppageno` counts from 0, as in Tesseract.
"""

from __future__ import annotations

from pathlib import PurePath

from lxml import etree

from hwdaemon import __version__
from hwdaemon.layout import baseline_of, baseline_slope_offset, bounds_of, words_of
from hwdaemon.model import Box, Line, PageResult, Point, Result

NAMESPACE = "http://www.w3.org/1999/xhtml"
DOCTYPE = (
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
    '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">'
)
CAPABILITIES = "ocr_page ocr_carea ocr_par ocr_line ocrx_word ocrp_wconf"


def to_hocr(result: Result) -> str:
    image_name = PurePath(result.source).name
    html = etree.Element(_tag("html"), nsmap={None: NAMESPACE}, lang="und")
    head = etree.SubElement(html, _tag("head"))
    etree.SubElement(head, _tag("title")).text = image_name
    etree.SubElement(head, _tag("meta"), {"http-equiv": "Content-Type", "content": "text/html;charset=utf-8"})
    etree.SubElement(head, _tag("meta"), name="ocr-system", content=f"hwdaemon {__version__}")
    etree.SubElement(head, _tag("meta"), name="ocr-capabilities", content=CAPABILITIES)
    etree.SubElement(head, _tag("meta"), name="ocr-number-of-pages", content=str(len(result.pages)))
    body = etree.SubElement(html, _tag("body"))
    for page in result.pages:
        _page(body, page, image_name)
    for element in body.iter():
        if element.text is None and len(element) == 0:
            element.text = ""  # <span></span>, not <span/>: HTML parsers would read the rest of the page into it
    xml: bytes = etree.tostring(html, xml_declaration=True, encoding="UTF-8", doctype=DOCTYPE, pretty_print=True)
    return xml.decode("utf-8")


def _page(body: etree._Element, page: PageResult, image_name: str) -> None:
    number = page.number
    title = f'image "{image_name}"; bbox 0 0 {page.width} {page.height}; ppageno {number - 1}'
    element = etree.SubElement(body, _tag("div"), {"class": "ocr_page", "id": f"page_{number}", "title": title})
    if not page.lines:
        return
    union = f"bbox {_bbox(bounds_of(page.lines))}"
    area = etree.SubElement(element, _tag("div"), {"class": "ocr_carea", "id": f"block_{number}_1", "title": union})
    paragraph = etree.SubElement(area, _tag("p"), {"class": "ocr_par", "id": f"par_{number}_1", "title": union})
    for index, line in enumerate(page.lines, start=1):
        _line(paragraph, line, f"{number}_{index}")


def _line(paragraph: etree._Element, line: Line, line_id: str) -> None:
    box = line.box
    title = f"bbox {_bbox(box)}; baseline {_baseline(baseline_of(line), box)}; x_wconf {_percent(line.confidence)}"
    element = etree.SubElement(paragraph, _tag("span"), {"class": "ocr_line", "id": f"line_{line_id}", "title": title})
    words = words_of(line)
    for index, word in enumerate(words, start=1):
        word_title = f"bbox {_bbox(word.box)}; x_wconf {_percent(word.confidence)}"
        span = etree.SubElement(
            element, _tag("span"), {"class": "ocrx_word", "id": f"word_{line_id}_{index}", "title": word_title}
        )
        span.text = word.text
        if index < len(words):
            span.tail = " "


def _baseline(baseline: tuple[Point, ...], box: Box) -> str:
    if len(baseline) < 2:
        return "0 0"
    slope, offset = baseline_slope_offset(baseline, box)
    return f"{slope:.4g} {round(offset)}"


def _bbox(box: Box) -> str:
    return f"{box.x} {box.y} {box.x + box.width} {box.y + box.height}"


def _percent(confidence: float) -> int:
    return round(min(1.0, max(0.0, confidence)) * 100)


def _tag(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"
