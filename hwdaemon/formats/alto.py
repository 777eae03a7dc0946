"""Result → ALTO 4.2 XML: one Page per page, its lines in one TextBlock, a String per word with its confidence.

ALTO 4.2 is the first version whose BASELINE holds a polyline, which eScriptorium
and kraken read; every later 4.x reader accepts it. Lines and words keep their
polygons (Shape/Polygon) besides the HPOS/VPOS boxes older readers use.
"""

from __future__ import annotations

from pathlib import PurePath

from lxml import etree

from hwdaemon import __version__
from hwdaemon.formats import points_text
from hwdaemon.layout import baseline_of, bounds_of, words_of
from hwdaemon.model import Box, Line, PageResult, Result

NAMESPACE = "http://www.loc.gov/standards/alto/ns-v4#"
SCHEMA_LOCATION = f"{NAMESPACE} http://www.loc.gov/standards/alto/v4/alto-4-2.xsd"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"


def to_alto(result: Result) -> str:
    root = etree.Element(_tag("alto"), nsmap={None: NAMESPACE, "xsi": _XSI})
    root.set(f"{{{_XSI}}}schemaLocation", SCHEMA_LOCATION)
    _description(etree.SubElement(root, _tag("Description")), result)
    layout = etree.SubElement(root, _tag("Layout"))
    for page in result.pages:
        _page(layout, page)
    xml: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return xml.decode("utf-8")


def _description(description: etree._Element, result: Result) -> None:
    etree.SubElement(description, _tag("MeasurementUnit")).text = "pixel"
    source = etree.SubElement(description, _tag("sourceImageInformation"))
    etree.SubElement(source, _tag("fileName")).text = PurePath(result.source).name
    processing = etree.SubElement(description, _tag("Processing"), ID="processing_1")
    etree.SubElement(processing, _tag("processingCategory")).text = "contentGeneration"
    settings = f"profile: {result.profile}; revision: {result.revision}; coordinates: {result.coordinates}"
    etree.SubElement(processing, _tag("processingStepSettings")).text = settings
    software = etree.SubElement(processing, _tag("processingSoftware"))
    etree.SubElement(software, _tag("softwareName")).text = "hwdaemon"
    etree.SubElement(software, _tag("softwareVersion")).text = __version__


def _page(layout: etree._Element, page: PageResult) -> None:
    number = page.number
    element = etree.SubElement(
        layout,
        _tag("Page"),
        ID=f"p{number}",
        PHYSICAL_IMG_NR=str(number),
        WIDTH=str(page.width),
        HEIGHT=str(page.height),
        PROCESSINGREFS="processing_1",
    )
    space = etree.SubElement(element, _tag("PrintSpace"), _box_attributes(Box(0, 0, page.width, page.height)))
    if not page.lines:
        return
    block = etree.SubElement(space, _tag("TextBlock"), ID=f"p{number}_b1", **_box_attributes(bounds_of(page.lines)))
    for index, line in enumerate(page.lines, start=1):
        _line(block, line, f"p{number}_l{index}")


def _line(block: etree._Element, line: Line, line_id: str) -> None:
    element = etree.SubElement(block, _tag("TextLine"), ID=line_id, **_box_attributes(line.box))
    baseline = baseline_of(line)
    if baseline:
        element.set("BASELINE", points_text(baseline))
    shape = etree.SubElement(element, _tag("Shape"))
    etree.SubElement(shape, _tag("Polygon"), POINTS=points_text(line.polygon))
    words = words_of(line)
    if not words:  # ALTO wants a String in every TextLine: an unread line keeps its place, empty
        etree.SubElement(
            element, _tag("String"), CONTENT="", WC=_confidence(line.confidence), **_box_attributes(line.box)
        )
        return
    for index, word in enumerate(words, start=1):
        if index > 1:
            previous = words[index - 2].box
            gap = max(0, word.box.x - (previous.x + previous.width))
            etree.SubElement(
                element, _tag("SP"), WIDTH=str(gap), HPOS=str(previous.x + previous.width), VPOS=str(previous.y)
            )
        string = etree.SubElement(
            element,
            _tag("String"),
            ID=f"{line_id}_w{index}",
            CONTENT=word.text,
            WC=_confidence(word.confidence),
            **_box_attributes(word.box),
        )
        shape = etree.SubElement(string, _tag("Shape"))
        etree.SubElement(shape, _tag("Polygon"), POINTS=points_text(word.polygon))


def _box_attributes(box: Box) -> dict[str, str]:
    return {"HPOS": str(box.x), "VPOS": str(box.y), "WIDTH": str(box.width), "HEIGHT": str(box.height)}


def _confidence(value: float) -> str:
    return f"{min(1.0, max(0.0, value)):.4f}"


def _tag(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"
