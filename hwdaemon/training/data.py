"""Labelled line samples for training: from our manifest, ALTO XML or PAGE XML with their page images.

A line is cropped to its polygon's bounding box plus a margin; pixels outside
the polygon (grown a little) are painted paper-coloured, which hides the
neighbouring lines as the dev set's crops do. Every loader checks the
exclusion list and drops evaluation documents; `guard` raises if one slips in.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from hwdaemon.errors import ConfigError
from hwdaemon.pipeline.crops import GROW, paint_outside
from hwdaemon.training.exclusion import ExcludedDocumentError, ExclusionList

Point = tuple[float, float]
PAGE_LINE_TYPE = re.compile(r"structure\s*\{[^}]*type:\s*([^;}]+)")


class PageImageMissingError(ConfigError):
    """An ALTO/PAGE file whose page image is not on disk."""


@dataclass(frozen=True, slots=True)
class LineSample:
    """One line: its text, where it came from (for the exclusion list and the model card), its crop."""

    text: str
    repository: str
    document: str  # path of the source file inside its repository
    image: np.ndarray  # uint8 greyscale crop
    line_type: str = ""  # as the XML tags it (ALTO OtherTag label, PAGE custom type), e.g. "DefaultLine:Handwritten"

    def is_type(self, wanted: str) -> bool:
        """`Handwritten` matches `DefaultLine:Handwritten` and `InterlinearLine:Handwritten`; a full label matches itself."""
        return wanted.casefold() in {self.line_type.casefold(), self.line_type.rsplit(":", 1)[-1].casefold()}


def crop_polygon(page: Image.Image, polygon: list[Point], margin: int = 13, grow: int = GROW) -> np.ndarray:
    """The line's bounding box plus `margin`, with everything outside the grown polygon painted as paper (as the pipeline reads lines)."""
    grey = page.convert("L")
    xs, ys = [x for x, _ in polygon], [y for _, y in polygon]
    left, top = max(0, int(min(xs)) - margin), max(0, int(min(ys)) - margin)
    right, bottom = min(grey.width, int(max(xs)) + margin + 1), min(grey.height, int(max(ys)) + margin + 1)
    pixels = np.asarray(grey.crop((left, top, right, bottom)), dtype=np.uint8)
    return paint_outside(pixels, [(x - left, y - top) for x, y in polygon], grow)


def _points(text: str) -> list[Point]:
    """'x1,y1 x2,y2 …' (PAGE) or 'x1 y1 x2 y2 …' (ALTO) → [(x, y), …]."""
    numbers = [float(value) for value in text.replace(",", " ").split()]
    return list(zip(numbers[0::2], numbers[1::2], strict=False))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


@dataclass(frozen=True, slots=True)
class TranscribedLine:
    """A line as ALTO or PAGE XML records it: its text, its polygon on the page, its type label."""

    text: str
    polygon: list[Point]
    line_type: str = ""


def read_xml_lines(
    xml_path: Path, repository: str, document: str, image_dir: Path | None = None
) -> Iterator[LineSample]:
    """Crops of an ALTO or PAGE file's lines."""
    image, lines = read_transcribed_page(xml_path, image_dir)
    for line in lines:
        yield LineSample(line.text, repository, document, crop_polygon(image, line.polygon), line.line_type)


def read_transcribed_page(xml_path: Path, image_dir: Path | None = None) -> tuple[Image.Image, list[TranscribedLine]]:
    """A page image with its transcribed lines, from ALTO or PAGE XML: what a line detector should find on it."""
    kind = _xml_kind(xml_path)
    if kind is None:
        raise ConfigError(f"{xml_path}: neither ALTO nor PAGE XML")
    root = ElementTree.parse(xml_path).getroot()
    if kind == "page":
        return _open_page(xml_path, _page_image_name(xml_path, root), image_dir), list(page_xml_lines(root))
    return _open_page(xml_path, _alto_image_name(root), image_dir), list(alto_lines(root))


def alto_lines(root: ElementTree.Element) -> Iterator[TranscribedLine]:
    """TextLine elements of an ALTO file: polygon from Shape/Polygon (else the HPOS/VPOS box), text from String CONTENT."""
    labels = {tag.get("ID", ""): tag.get("LABEL", "") for tag in root.iter() if _local(tag.tag) == "OtherTag"}
    for element in root.iter():
        if _local(element.tag) != "TextLine":
            continue
        line_type = next((labels[ref] for ref in element.get("TAGREFS", "").split() if ref in labels), "")
        words = [child.get("CONTENT", "") for child in element.iter() if _local(child.tag) == "String"]
        text = " ".join(word for word in words if word).strip()
        polygon = next(
            (_points(child.get("POINTS", "")) for child in element.iter() if _local(child.tag) == "Polygon"), None
        )
        if not polygon:
            x, y = float(element.get("HPOS", 0)), float(element.get("VPOS", 0))
            w, h = float(element.get("WIDTH", 0)), float(element.get("HEIGHT", 0))
            polygon = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
        if text and len(polygon) >= 3:
            yield TranscribedLine(text, polygon, line_type)


def page_xml_lines(root: ElementTree.Element) -> Iterator[TranscribedLine]:
    """TextLine elements of a PAGE file: Coords points, text from the line's own TextEquiv/Unicode."""
    for element in root.iter():
        if _local(element.tag) != "TextLine":
            continue
        coords = next((child for child in element if _local(child.tag) == "Coords"), None)
        equiv = next((child for child in element if _local(child.tag) == "TextEquiv"), None)
        unicode = next(
            (child for child in (equiv if equiv is not None else []) if _local(child.tag) == "Unicode"), None
        )
        text = (unicode.text or "").strip() if unicode is not None else ""
        polygon = _points(coords.get("points", "")) if coords is not None else []
        line_type = PAGE_LINE_TYPE.search(element.get("custom", ""))
        if text and len(polygon) >= 3:
            yield TranscribedLine(text, polygon, line_type.group(1) if line_type else "")


def _alto_image_name(root: ElementTree.Element) -> str:
    for element in root.iter():
        if _local(element.tag) == "fileName" and element.text:
            return element.text.strip()
    raise ConfigError("ALTO file names no sourceImageInformation/fileName")


def _page_image_name(xml_path: Path, root: ElementTree.Element) -> str:
    page = next((element for element in root.iter() if _local(element.tag) == "Page"), None)
    if page is None or not page.get("imageFilename"):
        raise ConfigError(f"{xml_path}: PAGE file has no Page/@imageFilename")
    return page.get("imageFilename", "")


def _open_page(xml_path: Path, name: str, image_dir: Path | None) -> Image.Image:
    """The page image beside the XML, in `image_dir`, or anywhere below `image_dir` (eScriptorium exports split alto/ and jpg/).

    Failing the recorded name, an image beside the XML with the XML's own stem
    (exports from PDFs record `page2_A.pdf_page_1.png` but ship `page2_A.png`).
    """
    folders = [xml_path.parent] + ([image_dir] if image_dir else [])
    candidates = [folder / option for folder in folders for option in (name, Path(name).name)]
    candidates += [xml_path.with_suffix(suffix) for suffix in (".png", ".jpg", ".jpeg", ".tif", ".tiff")]
    found = next((candidate for candidate in candidates if candidate.is_file()), None)
    if found is None and image_dir is not None:
        found = next(image_dir.rglob(Path(name).name), None)
    if found is None:
        raise PageImageMissingError(f"{xml_path}: page image {name!r} not found beside it or under {image_dir}")
    with Image.open(found) as image:
        return image.convert("L")


def read_manifest_lines(manifest: Path) -> Iterator[LineSample]:
    """Line items of a manifest.jsonl (our format); `source` names the repository, `document` (else the image) the document."""
    for line in manifest.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        if item.get("kind", "line") != "line":
            continue
        with Image.open(manifest.parent / item["image"]) as image:
            pixels = np.asarray(image.convert("L"), dtype=np.uint8)
        yield LineSample(item["text"], str(item.get("source", "")), str(item.get("document", item["image"])), pixels)


def load_samples(
    sources: Iterable[tuple[str, Path]], exclusions: ExclusionList, image_dir: Path | None = None
) -> list[LineSample]:
    """Read (repository, file) pairs — .xml (ALTO or PAGE) or .jsonl manifests — skipping excluded documents."""
    samples: list[LineSample] = []
    for repository, path in sources:
        if path.suffix == ".jsonl":
            samples.extend(
                sample
                for sample in read_manifest_lines(path)
                if not exclusions.is_excluded(sample.repository, sample.document)
            )
            continue
        document = path.name
        if exclusions.is_excluded(repository, str(path)) or exclusions.is_excluded(repository, document):
            continue
        if _xml_kind(path) is None:
            continue  # METS and other XML beside the transcriptions
        samples.extend(read_xml_lines(path, repository, document, image_dir))
    guard(samples, exclusions)
    return samples


def _xml_kind(path: Path) -> str | None:
    """ "page", "alto", or None for XML that holds no transcription."""
    with path.open("rb") as stream:
        head = stream.read(4096)
    if b"<PcGts" in head or b":PcGts" in head:
        return "page"
    if b"<alto" in head or b":alto" in head:
        return "alto"
    return None


def guard(samples: Iterable[LineSample], exclusions: ExclusionList) -> None:
    """Refuse a training set that contains any evaluation document."""
    for sample in samples:
        if exclusions.is_excluded(sample.repository, sample.document):
            raise ExcludedDocumentError(
                f"{sample.repository} {sample.document} is on the exclusion list ({exclusions.source}); it must never be trained on"
            )
