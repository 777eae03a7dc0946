"""Result → PAGE XML (2019-07-15): one TextRegion holding the page's lines in reading order, words with their confidence.

PAGE holds exactly one page per file (PcGts has one Page), so a result of several
pages is refused with a message naming the formats that hold them all (alto, hocr).
Points are clamped to the image: PAGE allows no negative coordinates.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import PurePath

from lxml import etree

from hwdaemon import __version__
from hwdaemon.formats import points_text
from hwdaemon.layout import baseline_of, bounds_of, words_of
from hwdaemon.model import Line, PageResult, Point, Result

NAMESPACE = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
SCHEMA_LOCATION = f"{NAMESPACE} {NAMESPACE}/pagecontent.xsd"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"


class MultiPageError(ValueError):
    """A result of several pages asked for as PAGE XML, which holds one."""


def to_page(result: Result) -> str:
    if len(result.pages) != 1:
        raise MultiPageError(
            f"{result.source}: PAGE XML holds one page per file and this document has {len(result.pages)}; "
            "use the alto or hocr format for documents of several pages"
        )
    root = etree.Element(_tag("PcGts"), nsmap={None: NAMESPACE, "xsi": _XSI})
    root.set(f"{{{_XSI}}}schemaLocation", SCHEMA_LOCATION)
    _metadata(etree.SubElement(root, _tag("Metadata")), result)
    _page(root, result.pages[0], PurePath(result.source).name)
    xml: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return xml.decode("utf-8")


def _metadata(metadata: etree._Element, result: Result) -> None:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    etree.SubElement(metadata, _tag("Creator")).text = f"hwdaemon {__version__} (profile {result.profile})"
    etree.SubElement(metadata, _tag("Created")).text = now
    etree.SubElement(metadata, _tag("LastChange")).text = now


def _page(root: etree._Element, page: PageResult, image_name: str) -> None:
    element = etree.SubElement(
        root, _tag("Page"), imageFilename=image_name, imageWidth=str(page.width), imageHeight=str(page.height)
    )
    if not page.lines:
        return
    region_id = "r1"
    order = etree.SubElement(etree.SubElement(element, _tag("ReadingOrder")), _tag("OrderedGroup"), id="ro1")
    etree.SubElement(order, _tag("RegionRefIndexed"), index="0", regionRef=region_id)
    region = etree.SubElement(element, _tag("TextRegion"), id=region_id, type="paragraph")
    _coords(region, bounds_of(page.lines).polygon, page)
    for index, line in enumerate(page.lines, start=1):
        _line(region, line, f"{region_id}l{index}", page)
    _text_equiv(region, page.text, None)


def _line(region: etree._Element, line: Line, line_id: str, page: PageResult) -> None:
    element = etree.SubElement(region, _tag("TextLine"), id=line_id)
    _coords(element, line.polygon, page)
    baseline = baseline_of(line)
    if len(baseline) >= 2:
        etree.SubElement(element, _tag("Baseline"), points=points_text(_clamped(baseline, page)))
    for index, word in enumerate(words_of(line), start=1):
        word_element = etree.SubElement(element, _tag("Word"), id=f"{line_id}w{index}")
        _coords(word_element, word.polygon, page)
        _text_equiv(word_element, word.text, word.confidence)
    _text_equiv(element, line.text, line.confidence)


def _coords(parent: etree._Element, polygon: tuple[Point, ...], page: PageResult) -> None:
    etree.SubElement(parent, _tag("Coords"), points=points_text(_clamped(polygon, page)))


def _text_equiv(parent: etree._Element, text: str, confidence: float | None) -> None:
    equiv = etree.SubElement(parent, _tag("TextEquiv"))
    if confidence is not None:
        equiv.set("conf", f"{min(1.0, max(0.0, confidence)):.4f}")
    etree.SubElement(equiv, _tag("Unicode")).text = text


def _clamped(points: tuple[Point, ...], page: PageResult) -> tuple[Point, ...]:
    return tuple((min(max(x, 0), page.width), min(max(y, 0), page.height)) for x, y in points)


def _tag(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"
