"""The pdf export, checked with real tools: poppler reads its text and word boxes and renders its pages, pikepdf's PDF/A validator checks it."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from hwdaemon.errors import RetryableDeliveryError
from hwdaemon.export import render_bytes
from hwdaemon.inputs import open_document
from hwdaemon.layout import words_of
from hwdaemon.model import Line, PageResult, Result, Word
from hwdaemon.sinks import Artifacts
from tests.conftest import DEV_DATA, character_error_rate

pikepdf = pytest.importorskip("pikepdf")
pytest.importorskip("ocrmypdf", reason="the pdf format needs the ocrmypdf extra")
if shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None:
    pytest.skip("poppler-utils (pdftotext, pdftoppm) not installed: scripts/setup --test", allow_module_level=True)

DPI = 200.0
WORDS = (
    ("Dear", (100, 120, 260, 190)),
    ("Anna,", (300, 118, 480, 192)),
    ("thanks", (120, 300, 380, 372)),
    ("again", (420, 302, 600, 370)),
)


def synthetic_page(path: Path) -> Result:
    """A grey PNG with a dark bar where each word is, at 200 dpi, and the Result that places the words there."""
    image = Image.new("L", (800, 500), 245)
    draw = ImageDraw.Draw(image)
    for _, (left, top, right, bottom) in WORDS:
        draw.rectangle((left + 4, top + 10, right - 4, bottom - 10), fill=30)
    image.save(path, dpi=(DPI, DPI))
    lines = []
    for pair in (WORDS[:2], WORDS[2:]):
        words = tuple(Word(text, 0.9, ((x0, y0), (x1, y0), (x1, y1), (x0, y1))) for text, (x0, y0, x1, y1) in pair)
        left, top = pair[0][1][0], min(box[1] for _, box in pair)
        right, bottom = pair[-1][1][2], max(box[3] for _, box in pair)
        lines.append(
            Line(
                text=" ".join(word.text for word in words),
                confidence=0.9,
                polygon=((left, top), (right, top), (right, bottom), (left, bottom)),
                baseline=((left, bottom - 14), (right, bottom - 14)),
                words=words,
            )
        )
    page = PageResult(number=1, width=800, height=500, lines=tuple(lines), dpi=DPI)
    return Result(source=path.name, sha256="0" * 64, profile="default", pages=(page,))


def pdftotext(pdf: Path) -> str:
    """The text in content-stream order (`-raw`), which is reading order here: poppler's default layout
    analysis reorders words whose boxes bounce up and down along a handwritten line."""
    return subprocess.run(
        ["pdftotext", "-raw", "-enc", "UTF-8", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout


def poppler_words(pdf: Path) -> list[list[tuple[str, tuple[float, float, float, float]]]]:
    """Per page, each word pdftotext finds with its box in points."""
    layout = subprocess.run(
        ["pdftotext", "-bbox-layout", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    pages = []
    for page in layout.split("<page ")[1:]:
        found = re.findall(
            r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', page
        )
        pages.append(
            [(html.unescape(text), (float(x0), float(y0), float(x1), float(y1))) for x0, y0, x1, y1, text in found]
        )
    return pages


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def assert_words_placed(pdf: Path, result: Result, *, is_typeset: bool = False) -> None:
    """Every word lies where the Result puts it, by poppler's reading (pixels scaled to points).

    A search or selection highlights poppler's box for the word; it is on the word when it
    spans the word's extent along the line (horizontal IoU >= 0.7) and sits within the
    word's rows (its vertical centre inside the ink box). A handwritten word's ink box takes
    in strokes below the baseline (a '1' with a foot, a tail) that no font's glyph box
    reaches from the line's baseline, so the full-box IoU is required only of typeset words
    (`is_typeset`). Words are matched by text, not order: poppler's layout analysis orders
    the words of a handwritten line that bounces up and down in its own way.
    """
    found_pages = poppler_words(pdf)
    assert len(found_pages) == len(result.pages)
    for found, page in zip(found_pages, result.pages, strict=True):
        scale = 72.0 / (page.dpi or 300.0)
        expected = [word for line in page.lines for word in words_of(line)]
        assert sorted(text for text, _ in found) == sorted(word.text for word in expected)
        unmatched = list(found)
        for word in expected:
            truth = word.box
            scaled = (
                truth.x * scale,
                truth.y * scale,
                (truth.x + truth.width) * scale,
                (truth.y + truth.height) * scale,
            )
            best = max((entry for entry in unmatched if entry[0] == word.text), key=lambda entry: iou(entry[1], scaled))
            unmatched.remove(best)
            box = best[1]
            where = f"{word.text}: poppler {box}, result {scaled}"
            assert iou((box[0], 0.0, box[2], 1.0), (scaled[0], 0.0, scaled[2], 1.0)) >= 0.7, where
            assert scaled[1] <= (box[1] + box[3]) / 2 <= scaled[3], where
            if is_typeset:
                assert iou(box, scaled) >= 0.5, where


def rendered(pdf: Path, dpi: float, tmp_path: Path) -> list[np.ndarray]:
    tmp_path.mkdir(exist_ok=True)
    subprocess.run(["pdftoppm", "-r", str(dpi), "-gray", "-png", str(pdf), str(tmp_path / "render")], check=True)
    return [np.asarray(Image.open(png).convert("L"), dtype=np.int16) for png in sorted(tmp_path.glob("render-*.png"))]


def extracted_image(pdf: Path, tmp_path: Path) -> np.ndarray:
    """The page's one image as pdfimages decodes it."""
    subprocess.run(["pdfimages", "-png", str(pdf), str(tmp_path / "image")], check=True)
    (png,) = sorted(tmp_path.glob("image-*.png"))
    return np.asarray(Image.open(png).convert("L"), dtype=np.int16)


def image_alone(scan: Path, tmp_path: Path, dpi: float = DPI) -> Path:
    """The scan as a PDF without any text layer, at the same dpi: what poppler makes of the image by itself."""
    import img2pdf

    (tmp_path / "bare").mkdir(exist_ok=True)
    bare = tmp_path / "bare.pdf"
    bare.write_bytes(img2pdf.convert(str(scan), layout_fun=img2pdf.get_fixed_dpi_layout_fun((dpi, dpi))))
    return bare


def assert_pdfa_2b(pdf: Path) -> None:
    """pikepdf's allowlist PDF/A validator passes the file as written, and its XMP declares PDF/A-2B."""
    from pikepdf import pdfa

    report = pdfa.validate_written(pdf, "2b")
    assert report.verdict == "pass", report
    with pikepdf.open(pdf) as document, document.open_metadata() as xmp:
        assert (xmp.get("pdfaid:part"), xmp.get("pdfaid:conformance")) == ("2", "B")


def test_synthetic_page_gives_searchable_pdfa_with_words_on_their_boxes(tmp_path: Path) -> None:
    scan = tmp_path / "note.png"
    result = synthetic_page(scan)
    pdf = tmp_path / "note.pdf"
    pdf.write_bytes(render_bytes(result, "pdf", original=scan))

    assert character_error_rate(result.text, pdftotext(pdf)) == 0
    assert_words_placed(pdf, result, is_typeset=True)
    original = np.asarray(Image.open(scan), dtype=np.int16)
    assert np.array_equal(extracted_image(pdf, tmp_path), original)  # the PNG's pixels, exactly
    (page,) = rendered(pdf, DPI, tmp_path)
    (bare,) = rendered(image_alone(scan, tmp_path), DPI, tmp_path / "bare")
    assert np.array_equal(page, bare)  # the text layer shows nothing
    assert np.abs(page - original).mean() < 1.0  # poppler samples the image's edges a pixel off, with or without us
    assert_pdfa_2b(pdf)


def test_pdf_input_keeps_its_own_pages_and_gets_the_text(tmp_path: Path) -> None:
    scan = tmp_path / "note.png"
    result = synthetic_page(scan)
    import img2pdf

    original = tmp_path / "scanned.pdf"
    original.write_bytes(img2pdf.convert(str(scan), layout_fun=img2pdf.get_fixed_dpi_layout_fun((DPI, DPI))))
    pdf = tmp_path / "scanned-ocr.pdf"
    pdf.write_bytes(render_bytes(result, "pdf", original=original))

    with pikepdf.open(original) as before, pikepdf.open(pdf) as after:
        image_before = next(iter(before.pages[0].get_images().values()))
        image_after = [image for image in after.pages[0].get_images().values() if image.get("/Subtype") == "/Image"]
        assert [image.read_raw_bytes() for image in image_after] == [image_before.read_raw_bytes()]
    assert_words_placed(pdf, result, is_typeset=True)
    assert_pdfa_2b(pdf)


def test_a_result_of_other_pages_than_the_original_is_refused(tmp_path: Path) -> None:
    from hwdaemon.searchable_pdf import UnusableOriginalError

    scan = tmp_path / "note.png"
    result = synthetic_page(scan)
    two_pages = Result(source=result.source, sha256=result.sha256, profile="default", pages=result.pages * 2)
    with pytest.raises(UnusableOriginalError, match="has 1 page"):
        render_bytes(two_pages, "pdf", original=scan)


def test_file_sink_writes_pdf_from_the_original_and_retries_without_it(tmp_path: Path) -> None:
    """Without the original the delivery is retried (it may be being filed this instant), then dead-lettered."""
    from hwdaemon.builtins.sinks import FileSink, FileSinkOptions

    scan = tmp_path / "note.png"
    result = synthetic_page(scan)
    sink = FileSink(FileSinkOptions(path=tmp_path / "out", formats=["txt", "pdf"]), "files")
    sink.deliver(result, Artifacts(idempotency_key="k", original_name="note.png", original_path=scan))
    assert pdftotext(tmp_path / "out" / "note.pdf").split() == result.text.split()

    with pytest.raises(RetryableDeliveryError, match=r"note\.png is not there"):
        sink.deliver(result, Artifacts(idempotency_key="k", original_name="note.png", original_path=None))


@pytest.fixture(
    scope="module",
    params=["testaments_poilus/TestamentsDePoilus_will_AN_0215-0_page", "copiste/wikitexte_0135_1_page"],
)
def real_page(
    request, dev_manifest: list[dict[str, str]], default_pipeline, default_config, tmp_path_factory
) -> tuple[Path, Result, Path]:  # type: ignore[no-untyped-def]
    """A real handwritten page (JPEG) read by the default pipeline, and its pdf export."""
    item = next(item for item in dev_manifest if item["id"] == request.param)
    scan = DEV_DATA / item["image"]
    with open_document(scan, default_config.inputs) as document:
        result = default_pipeline.run(document)
    pdf = tmp_path_factory.mktemp("real") / "page.pdf"
    pdf.write_bytes(render_bytes(result, "pdf", original=scan))
    return scan, result, pdf


def test_real_page_text_matches_the_txt_output(real_page: tuple[Path, Result, Path]) -> None:
    _, result, pdf = real_page
    text = render_bytes(result, "txt").decode()
    assert character_error_rate(text, pdftotext(pdf)) <= 0.01


def test_real_page_words_lie_on_their_boxes(real_page: tuple[Path, Result, Path]) -> None:
    _, result, pdf = real_page
    assert_words_placed(pdf, result)


def test_real_jpeg_is_embedded_as_it_is_and_renders_as_the_original(
    real_page: tuple[Path, Result, Path], tmp_path: Path
) -> None:
    scan, result, pdf = real_page
    with pikepdf.open(pdf) as document:
        (image,) = document.pages[0].get_images().values()
        assert image.read_raw_bytes() == scan.read_bytes()  # the JPEG stream itself: nothing re-encoded
    dpi = result.pages[0].dpi or 300.0
    (page,) = rendered(pdf, dpi, tmp_path)
    (bare,) = rendered(image_alone(scan, tmp_path, dpi), dpi, tmp_path / "bare")
    assert np.array_equal(page, bare)  # the text layer shows nothing
    original = np.asarray(Image.open(scan).convert("L"), dtype=np.int16)
    # poppler can round the page's size in pixels up (1709 px -> 1710 at 300 dpi): compare their common part
    assert all(abs(a - b) <= 1 for a, b in zip(page.shape, original.shape, strict=True)), (page.shape, original.shape)
    rows, columns = min(page.shape[0], original.shape[0]), min(page.shape[1], original.shape[1])
    difference = np.abs(page[:rows, :columns] - original[:rows, :columns])
    # poppler's JPEG decoding and its smoothing of the ink's edges against Pillow's decoding: a mean of
    # 4.2 grey levels on the copiste page (half its pixels exactly alike), less on the will
    assert difference.mean() < 5.0
    assert_pdfa_2b(pdf)


def test_process_writes_pdf_to_a_folder_and_refuses_stdout(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from hwdaemon.cli import cli

    scan = tmp_path / "note.png"
    Image.new("L", (400, 200), 255).save(scan)
    runner = CliRunner()
    refused = runner.invoke(cli, ["process", str(scan), "--format", "pdf"])
    assert refused.exit_code == 2 and "--output DIR" in refused.output
    written = runner.invoke(cli, ["process", str(scan), "--format", "pdf", "--output", str(tmp_path / "out")])
    assert written.exit_code == 0, written.output
    assert (tmp_path / "out" / "note.pdf").read_bytes().startswith(b"%PDF-")
