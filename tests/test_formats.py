"""ALTO, PAGE and hOCR exports, checked by other people's tools: the official XSDs, kraken, alto-tools, hocr-spec, our training reader.

tests/schemas/ holds the official schemas (see its README for where they come from).
No expectation here is a copy of our own serialiser's output: each check reads
the file back with a reader that is not ours, or with the schema its format defines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner
from hocr_spec import HocrValidator
from lxml import etree, html
from PIL import Image

from conftest import DEV_DATA
from hwdaemon.export import EXTENSIONS, FORMATS, extension, render
from hwdaemon.formats.page import MultiPageError
from hwdaemon.layout import baseline_of, words_of
from hwdaemon.model import Box, Line, PageResult, Result, Word
from hwdaemon.training.data import alto_lines, page_xml_lines, read_transcribed_page

SCHEMAS = Path(__file__).parent / "schemas"


def _word(text: str, confidence: float, x: int, y: int, width: int, height: int) -> Word:
    return Word(text, confidence, Box(x, y, width, height).polygon)


MEASURED = Line(
    "Dear Émile,",
    0.91,
    ((10, 22), (120, 18), (232, 24), (230, 64), (12, 62)),
    baseline=((12, 52), (120, 50), (230, 55)),
    words=(_word("Dear", 0.95, 12, 20, 80, 42), _word("Émile,", 0.87, 104, 18, 126, 46)),
)
ESTIMATED = Line("thank you", 0.42, Box(10, 80, 220, 40).polygon)  # no words nor baseline: layout estimates them
RESULT = Result(
    source="scans/letter.tiff",
    sha256="ab" * 32,
    profile="default",
    pages=(PageResult(1, 800, 600, (MEASURED, ESTIMATED)),),
)
TWO_PAGES = Result(
    source="scans/book.pdf",
    sha256="cd" * 32,
    profile="default",
    pages=(RESULT.pages[0], PageResult(2, 800, 600, (Line("Yours", 0.8, Box(40, 30, 120, 40).polygon),))),
)


class _LocalXlink(etree.Resolver):
    """ALTO's XSD imports xlink.xsd from loc.gov: answer with the copy beside it (the tests run offline)."""

    def resolve(self, url: str | None, pubid: str | None, context: object) -> object:
        if url and url.endswith("/xlink.xsd"):
            return self.resolve_filename(str(SCHEMAS / "xlink.xsd"), context)
        return None


def _schema(name: str) -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(_LocalXlink())
    return etree.XMLSchema(etree.parse(str(SCHEMAS / name), parser))


def assert_valid(document: str, schema: etree.XMLSchema) -> None:
    tree = etree.fromstring(document.encode("utf-8"))
    assert schema.validate(tree), schema.error_log


def test_every_format_has_a_file_extension_and_the_old_ones_keep_theirs() -> None:
    assert [extension(format) for format in ("txt", "json", "csv")] == ["txt", "json", "csv"]
    assert (extension("alto"), extension("page"), extension("hocr")) == ("alto.xml", "page.xml", "hocr")
    assert set(EXTENSIONS) <= set(FORMATS)


@pytest.mark.parametrize("result", [RESULT, TWO_PAGES], ids=["one page", "two pages"])
def test_alto_is_valid_alto_4_2(result: Result) -> None:
    assert_valid(render(result, "alto"), _schema("alto-4-2.xsd"))


def test_page_is_valid_page_2019() -> None:
    assert_valid(render(RESULT, "page"), _schema("pagecontent-2019-07-15.xsd"))


def test_page_refuses_a_document_of_several_pages() -> None:
    with pytest.raises(MultiPageError, match="use the alto or hocr format"):
        render(TWO_PAGES, "page")


def test_a_scan_of_several_pages_gives_a_valid_page_file_a_page(tmp_path: Path) -> None:
    """PAGE holds one page: the file sink writes note-page1.page.xml, note-page2.page.xml; ALTO stays one file."""
    from hwdaemon.builtins.sinks import FileSink, FileSinkOptions
    from hwdaemon.plugin_api import Artifacts

    FileSink(FileSinkOptions(path=tmp_path, formats=["page", "alto"]), "outbox").deliver(
        TWO_PAGES, Artifacts("k2", "book.pdf")
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "book-page1.page.xml",
        "book-page2.page.xml",
        "book.alto.xml",
    ]
    schema = _schema("pagecontent-2019-07-15.xsd")
    for number in (1, 2):
        document = (tmp_path / f"book-page{number}.page.xml").read_text(encoding="utf-8")
        assert_valid(document, schema)
        assert TWO_PAGES.pages[number - 1].lines[0].text in document


@pytest.mark.parametrize("format", ["alto", "page"])
def test_our_training_reader_reads_the_lines_back(format: str, tmp_path: Path) -> None:
    """`hwdaemon train` learns from ALTO/PAGE: what we export must come back as the same lines, text and outlines."""
    Image.new("L", (800, 600), 255).save(tmp_path / "letter.tiff")
    xml_path = tmp_path / f"letter.{extension(format)}"  # type: ignore[arg-type]
    xml_path.write_text(render(RESULT, format), encoding="utf-8")  # type: ignore[arg-type]
    image, lines = read_transcribed_page(xml_path)
    assert image.size == (800, 600)
    assert [line.text for line in lines] == [line.text for line in RESULT.lines]
    assert [[(int(x), int(y)) for x, y in line.polygon] for line in lines] == [
        list(line.polygon) for line in RESULT.lines
    ]
    reader = alto_lines if format == "alto" else page_xml_lines
    assert len(list(reader(ElementTree.parse(xml_path).getroot()))) == 2


def test_alto_tools_reads_our_text_and_confidence(tmp_path: Path) -> None:
    """alto-tools (the ALTO command-line reader of the Berlin State Library's OCR lead) extracts the text and mean WC."""
    path = tmp_path / "letter.alto.xml"
    path.write_text(render(RESULT, "alto"), encoding="utf-8")
    text = subprocess.run(
        [Path(sys.executable).parent / "alto-tools", "-t", str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert [line.strip() for line in text.strip().splitlines()] == [line.text for line in RESULT.lines]
    confidence = subprocess.run(
        [Path(sys.executable).parent / "alto-tools", "-c", str(path)], capture_output=True, text=True, check=True
    ).stdout
    words = [word for line in RESULT.lines for word in words_of(line)]
    assert f"Confidence: {round(100 * sum(word.confidence for word in words) / len(words), 2)}" in confidence


def test_alto_baselines_and_word_boxes_are_the_results() -> None:
    namespace = {"a": "http://www.loc.gov/standards/alto/ns-v4#"}
    root = etree.fromstring(render(RESULT, "alto").encode())
    lines = root.findall(".//a:TextLine", namespace)
    assert [_points(line.get("BASELINE", "")) for line in lines] == [list(baseline_of(line)) for line in RESULT.lines]
    strings = lines[0].findall("a:String", namespace)
    assert [(s.get("CONTENT"), float(s.get("WC", 0))) for s in strings] == [("Dear", 0.95), ("Émile,", 0.87)]
    assert [[int(s.get(key, -1)) for key in ("HPOS", "VPOS", "WIDTH", "HEIGHT")] for s in strings] == [
        [12, 20, 80, 42],
        [104, 18, 126, 46],
    ]
    assert len(lines[0].findall("a:SP", namespace)) == 1


def test_page_words_baselines_and_reading_order_are_the_results() -> None:
    namespace = {"p": "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"}
    root = etree.fromstring(render(RESULT, "page").encode())
    regions = [ref.get("regionRef") for ref in root.findall(".//p:ReadingOrder//p:RegionRefIndexed", namespace)]
    assert regions == [region.get("id") for region in root.findall(".//p:TextRegion", namespace)]
    lines = root.findall(".//p:TextLine", namespace)
    assert [_points(line.find("p:Baseline", namespace).get("points", "")) for line in lines] == [
        list(baseline_of(line)) for line in RESULT.lines
    ]  # type: ignore[union-attr]
    words = lines[0].findall("p:Word", namespace)
    assert [_points(word.find("p:Coords", namespace).get("points", "")) for word in words] == [
        list(word.polygon) for word in MEASURED.words
    ]  # type: ignore[union-attr]
    assert [float(word.find("p:TextEquiv", namespace).get("conf", 0)) for word in words] == [0.95, 0.87]  # type: ignore[union-attr]


def test_hocr_passes_hocr_spec_and_its_boxes_match_the_json(tmp_path: Path) -> None:
    """hocr-spec (kba/hocr-spec-python) checks the hOCR 1.2 rules; lxml's HTML parser (as hOCR consumers read it) gets the boxes."""
    document = render(TWO_PAGES, "hocr")
    (tmp_path / "book.hocr").write_text(document, encoding="utf-8")
    report = HocrValidator("standard").validate(str(tmp_path / "book.hocr"), parse_strict=True)
    assert report.is_valid(), report.format("text")
    pages = json.loads(render(TWO_PAGES, "json"))["pages"]
    tree = html.fromstring(document.encode("utf-8"))
    words = tree.find_class("ocrx_word")
    expected = [word for page in TWO_PAGES.pages for line in page.lines for word in words_of(line)]
    assert [word.text_content() for word in words] == [word.text for word in expected]
    assert [_title(word)["bbox"] for word in words] == [_bbox(word.box) for word in expected]
    assert [int(_title(word)["x_wconf"][0]) for word in words] == [round(100 * word.confidence) for word in expected]
    lines = tree.find_class("ocr_line")
    assert [_title(line)["bbox"] for line in lines] == [
        _bbox(Line.from_dict(line).box) for page in pages for line in page["lines"]
    ]
    assert [_title(page)["bbox"] for page in tree.find_class("ocr_page")] == [
        ["0", "0", str(page["width"]), str(page["height"])] for page in pages
    ]


def test_process_writes_valid_alto_page_and_hocr_of_a_real_scan(
    tmp_path: Path, dev_manifest: list[dict[str, str]]
) -> None:
    """A real handwritten page through `hwdaemon process --format F`: each output passes its checks."""
    from hwdaemon.cli import cli

    page = next(entry for entry in dev_manifest if entry.get("kind", "page") == "page")
    scan = DEV_DATA / page["image"]
    stem = scan.stem
    runner = CliRunner()
    for format in ("alto", "page", "hocr", "json"):
        outcome = runner.invoke(cli, ["process", str(scan), "--format", format, "--output", str(tmp_path)])
        assert outcome.exit_code == 0, outcome.output
    result = Result.from_dict(json.loads((tmp_path / f"{stem}.json").read_text(encoding="utf-8")))
    assert result.lines
    assert_valid((tmp_path / f"{stem}.alto.xml").read_text(encoding="utf-8"), _schema("alto-4-2.xsd"))
    assert_valid((tmp_path / f"{stem}.page.xml").read_text(encoding="utf-8"), _schema("pagecontent-2019-07-15.xsd"))
    report = HocrValidator("standard").validate(str(tmp_path / f"{stem}.hocr"), parse_strict=True)
    assert report.is_valid(), report.format("text")
    for format in ("alto", "page"):
        xml_path = tmp_path / f"{stem}.{extension(format)}"  # type: ignore[arg-type]
        _, lines = read_transcribed_page(xml_path, scan.parent)
        assert [line.text for line in lines] == [line.text for line in result.lines if line.text]


# kraken's own ALTO/PAGE parser (what eScriptorium imports with): scripts/setup --test puts kraken in its own
# folder without its dependencies, since its pins would downgrade torch; the parser needs only lxml and iso639.
KRAKEN = Path(__file__).resolve().parent.parent / ".venv" / "kraken"
KRAKEN_READ = """
import json, sys
from kraken.lib.xml import XMLPage
page = XMLPage(sys.argv[1])
segmentation = page.to_container()
print(json.dumps({
    "type": segmentation.type,
    "image": str(segmentation.imagename),
    "lines": [
        {"text": line.text, "baseline": [list(p) for p in line.baseline], "boundary": [list(p) for p in line.boundary]}
        for line in segmentation.lines
    ],
}))
"""


def kraken_reads(xml_path: Path) -> dict[str, Any]:
    if not (KRAKEN / "kraken").is_dir():
        pytest.skip(f"kraken is not in {KRAKEN}: run scripts/setup --test")
    done = subprocess.run(
        [sys.executable, "-c", KRAKEN_READ, str(xml_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(KRAKEN)},
    )
    assert done.returncode == 0, done.stderr
    read: dict[str, Any] = json.loads(done.stdout)
    return read


def assert_kraken_reads_the_result(xml_path: Path, result: Result) -> None:
    """kraken gets every line with our text, outline and baseline (estimated ones included), as a baseline segmentation."""
    read = kraken_reads(xml_path)
    assert read["type"] == "baselines"
    lines = [line for line in result.lines if line.text]
    assert [line["text"] for line in read["lines"]] == [line.text for line in lines]
    assert [[tuple(point) for point in line["boundary"]] for line in read["lines"]] == [
        list(line.polygon) for line in lines
    ]
    assert [[tuple(point) for point in line["baseline"]] for line in read["lines"]] == [
        list(baseline_of(line)) for line in lines
    ]


@pytest.mark.parametrize("format", ["alto", "page"])
def test_kraken_reads_our_lines_outlines_and_baselines(format: str, tmp_path: Path) -> None:
    Image.new("L", (800, 600), 255).save(tmp_path / "letter.tiff")
    xml_path = tmp_path / f"letter.{extension(format)}"  # type: ignore[arg-type]
    xml_path.write_text(render(RESULT, format), encoding="utf-8")  # type: ignore[arg-type]
    assert_kraken_reads_the_result(xml_path, RESULT)
    assert Path(kraken_reads(xml_path)["image"]).name == "letter.tiff"


def test_kraken_reads_a_real_scans_alto_and_page(tmp_path: Path, dev_manifest: list[dict[str, str]]) -> None:
    from hwdaemon.cli import cli

    page = next(entry for entry in dev_manifest if entry.get("kind", "page") == "page")
    scan = DEV_DATA / page["image"]
    runner = CliRunner()
    for format in ("alto", "page", "json"):
        outcome = runner.invoke(cli, ["process", str(scan), "--format", format, "--output", str(tmp_path)])
        assert outcome.exit_code == 0, outcome.output
    result = Result.from_dict(json.loads((tmp_path / f"{scan.stem}.json").read_text(encoding="utf-8")))
    for format in ("alto", "page"):
        assert_kraken_reads_the_result(tmp_path / f"{scan.stem}.{extension(format)}", result)  # type: ignore[arg-type]


def test_file_sink_names_xml_formats_as_their_readers_expect(tmp_path: Path) -> None:
    from hwdaemon.builtins.sinks import FileSink, FileSinkOptions
    from hwdaemon.plugin_api import Artifacts

    sink = FileSink(FileSinkOptions(path=tmp_path, formats=["txt", "alto", "page", "hocr"]), "outbox")
    sink.deliver(RESULT, Artifacts("k1", "letter.tiff"))
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "letter.alto.xml",
        "letter.hocr",
        "letter.page.xml",
        "letter.txt",
    ]


def _points(text: str) -> list[tuple[int, int]]:
    return [(int(x), int(y)) for x, y in (pair.split(",") for pair in text.split())]


def _title(element: html.HtmlElement) -> dict[str, list[str]]:
    fields = (field.strip().split() for field in element.get("title", "").split(";"))
    return {name: values for name, *values in fields}


def _bbox(box: Box) -> list[str]:
    return [str(value) for value in (box.x, box.y, box.x + box.width, box.y + box.height)]
