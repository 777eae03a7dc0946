"""Training data: ALTO and PAGE XML line polygons are cropped right; excluded documents never get in."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from hwdaemon.errors import ConfigError
from hwdaemon.training.data import (
    LineSample,
    PageImageMissingError,
    guard,
    load_samples,
    read_transcribed_page,
    read_xml_lines,
)
from hwdaemon.training.exclusion import ExcludedDocumentError, ExclusionList
from hwdaemon.training.run import keep_line_types, repeat_sources

ALTO = """<?xml version="1.0" encoding="UTF-8"?>
<alto xmlns="http://www.loc.gov/standards/alto/ns-v4#">
  <Description><sourceImageInformation><fileName>page.png</fileName></sourceImageInformation></Description>
  <Tags>
    <OtherTag ID="LT1" LABEL="DefaultLine:Handwritten"/><OtherTag ID="LT2" LABEL="DefaultLine:Typewritten"/>
  </Tags>
  <Layout><Page WIDTH="400" HEIGHT="200"><PrintSpace><TextBlock>
    <TextLine ID="l1" TAGREFS="LT1" HPOS="20" VPOS="30" WIDTH="300" HEIGHT="40">
      <Shape><Polygon POINTS="20 30 320 30 320 70 20 70"/></Shape>
      <String CONTENT="Chère"/><SP/><String CONTENT="Émilie,"/>
    </TextLine>
    <TextLine ID="l2" TAGREFS="LT2" HPOS="20" VPOS="110" WIDTH="200" HEIGHT="40">
      <String CONTENT="merci"/>
    </TextLine>
  </TextBlock></PrintSpace></Page></Layout>
</alto>
"""

PAGE = """<?xml version="1.0" encoding="UTF-8"?>
<PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15">
  <Page imageFilename="page.png" imageWidth="400" imageHeight="200">
    <TextRegion id="r1"><Coords points="0,0 400,0 400,200 0,200"/>
      <TextLine id="l1" custom="readingOrder {index:0;} structure {type:Handwritten;}"><Coords points="20,30 320,30 320,70 20,70"/>
        <TextEquiv><Unicode>Chère Émilie,</Unicode></TextEquiv></TextLine>
      <TextLine id="l2" custom="structure {type:Typewritten;}"><Coords points="20,110 220,110 220,150 20,150"/>
        <TextEquiv><Unicode>merci</Unicode></TextEquiv></TextLine>
      <TextEquiv><Unicode>Chère Émilie,\nmerci</Unicode></TextEquiv>
    </TextRegion>
  </Page>
</PcGts>
"""


@pytest.fixture
def page_folder(tmp_path: Path) -> Path:
    """A 400×200 page: a black bar inside line 1's polygon, a grey bar inside line 2's, a dot outside both."""
    image = Image.new("L", (400, 200), 240)
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 40, 300, 60), fill=0)
    draw.rectangle((40, 120, 200, 140), fill=100)
    draw.rectangle((360, 80, 370, 90), fill=0)  # outside every line
    image.save(tmp_path / "page.png")
    (tmp_path / "doc.alto.xml").write_text(ALTO, encoding="utf-8")
    (tmp_path / "doc.page.xml").write_text(PAGE, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("name", ["doc.alto.xml", "doc.page.xml"])
def test_line_polygons_are_cropped_with_their_text(page_folder: Path, name: str) -> None:
    samples = list(read_xml_lines(page_folder / name, "owner/repo", name))
    assert [sample.text for sample in samples] == ["Chère Émilie,", "merci"]
    first, second = samples[0].image, samples[1].image
    assert first.shape == (40 + 2 * 13 + 1, 300 + 2 * 13 + 1)
    assert first.min() == 0 and second.min() == 100  # each crop holds its own ink…
    assert (second == 0).sum() == 0  # …and none of the other line's


@pytest.mark.parametrize("name", ["doc.alto.xml", "doc.page.xml"])
def test_a_transcribed_page_gives_its_image_and_line_polygons(page_folder: Path, name: str) -> None:
    """What benchmarks/segmentation.py compares a detector with: the same lines the crops come from."""
    image, lines = read_transcribed_page(page_folder / name)
    assert image.size == (400, 200)
    assert [(line.text, line.line_type.rsplit(":", 1)[-1]) for line in lines] == [
        ("Chère Émilie,", "Handwritten"),
        ("merci", "Typewritten"),
    ]
    assert lines[0].polygon == [(20, 30), (320, 30), (320, 70), (20, 70)]
    assert lines[1].polygon == [
        (20, 110),
        (220, 110),
        (220, 150),
        (20, 150),
    ]  # ALTO: from HPOS/VPOS when there is no Shape


def test_other_xml_is_not_a_transcribed_page(tmp_path: Path) -> None:
    (tmp_path / "mets.xml").write_text(
        '<?xml version="1.0"?><mets xmlns="http://www.loc.gov/METS/"/>', encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="neither ALTO nor PAGE"):
        read_transcribed_page(tmp_path / "mets.xml")


def test_format_is_told_apart_by_content(page_folder: Path) -> None:
    exclusions = ExclusionList(rules=())
    samples = load_samples(
        [("owner/repo", page_folder / "doc.alto.xml"), ("owner/repo", page_folder / "doc.page.xml")], exclusions
    )
    assert [sample.text for sample in samples] == ["Chère Émilie,", "merci"] * 2


def test_excluded_documents_are_dropped(page_folder: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules.tsv"
    rules.write_text("owner/repo\tdoc.alto*\n")
    samples = load_samples(
        [("owner/repo", page_folder / "doc.alto.xml"), ("owner/repo", page_folder / "doc.page.xml")],
        ExclusionList.load(rules),
    )
    assert {sample.document for sample in samples} == {"doc.page.xml"}


def test_segmenter_pages_skip_excluded_documents_and_held_out_pages(page_folder: Path, tmp_path: Path) -> None:
    from hwdaemon.training.segment import load_pages

    rules = tmp_path / "rules.tsv"
    rules.write_text("owner/repo\tdoc.alto*\n")
    kept = load_pages({"owner/repo": page_folder}, ExclusionList.load(rules), set(), lambda event: None)
    assert [page.name for page in kept] == ["doc.page.xml"]
    assert kept[0].core.any()  # its lines' cores are marked
    assert (
        load_pages({"owner/repo": page_folder}, ExclusionList.load(rules), {"doc.page.xml"}, lambda event: None) == []
    )


def test_excluded_manifest_items_are_dropped(page_folder: Path, tmp_path: Path) -> None:
    Image.new("L", (50, 20), 255).save(page_folder / "a01-000u-00.png")
    Image.new("L", (50, 20), 255).save(page_folder / "kept.png")
    manifest = page_folder / "manifest.jsonl"
    rows = [
        {"image": "a01-000u-00.png", "text": "excluded", "source": "x/iam"},
        {"image": "kept.png", "text": "kept", "source": "x/other"},
    ]
    manifest.write_text("\n".join(json.dumps(row) for row in rows))
    rules = tmp_path / "rules.tsv"
    rules.write_text("the-full-stack/fsdl-text-recognizer-project\ta01-000u\n")
    samples = load_samples([("", manifest)], ExclusionList.load(rules))
    assert [sample.text for sample in samples] == ["kept"]


def test_a_manifest_line_cut_from_a_listed_document_is_dropped(page_folder: Path, tmp_path: Path) -> None:
    """Lines exported from pages keep their page's name in `document`: the rule for the page reaches them."""
    Image.new("L", (50, 20), 255).save(page_folder / "00001.png")
    Image.new("L", (50, 20), 255).save(page_folder / "00002.png")
    manifest = page_folder / "manifest.jsonl"
    rows = [{"image": "00001.png", "text": "excluded", "source": "owner/repo", "document": "letter_07.xml"},
            {"image": "00002.png", "text": "kept", "source": "owner/repo", "document": "letter_08.xml"}]  # fmt: skip
    manifest.write_text("\n".join(json.dumps(row) for row in rows))
    rules = tmp_path / "rules.tsv"
    rules.write_text("owner/repo\tletter_07*\n")
    samples = load_samples([("", manifest)], ExclusionList.load(rules))
    assert [(sample.text, sample.document) for sample in samples] == [("kept", "letter_08.xml")]


def test_guard_refuses_a_set_with_an_excluded_document(tmp_path: Path) -> None:
    rules = tmp_path / "rules.tsv"
    rules.write_text("banq-dcn/Copiste-d-un-jour\t*wikitexte_0135*\n")
    sample = LineSample("texte", "banq-dcn/Copiste-d-un-jour", "forms/wikitexte_0135_1.xml", np.zeros((4, 4), np.uint8))
    with pytest.raises(ExcludedDocumentError, match="must never be trained on"):
        guard([sample], ExclusionList.load(rules))


@pytest.mark.parametrize("name", ["doc.alto.xml", "doc.page.xml"])
def test_only_the_line_types_asked_for_are_kept(page_folder: Path, name: str) -> None:
    samples = load_samples([("owner/repo", page_folder / name)], ExclusionList(rules=()))
    assert [sample.text for sample in keep_line_types(samples, {"owner/repo": ["Handwritten"]})] == ["Chère Émilie,"]
    assert len(keep_line_types(samples, {"other/repo": ["Handwritten"]})) == 2  # other repositories keep everything


def test_a_small_source_is_repeated_on_the_training_side() -> None:
    small = LineSample("a", "small/repo", "d", np.zeros((4, 4), np.uint8))
    big = LineSample("b", "big/repo", "d", np.zeros((4, 4), np.uint8))
    assert [sample.text for sample in repeat_sources([small, big], {"small/repo": 3})] == ["a", "a", "a", "b"]


def test_other_xml_is_skipped_and_an_image_named_after_the_xml_is_found(page_folder: Path) -> None:
    (page_folder / "METS.xml").write_text('<?xml version="1.0"?><mets:mets xmlns:mets="http://www.loc.gov/METS/"/>')
    (page_folder / "scan.alto.xml").write_text(ALTO.replace("page.png", "scan.pdf_page_1.png"))
    with pytest.raises(PageImageMissingError, match=r"scan.pdf_page_1.png"):
        load_samples([("owner/repo", page_folder / "scan.alto.xml")], ExclusionList(rules=()))
    (page_folder / "page.png").rename(page_folder / "scan.alto.png")
    samples = load_samples(
        [("owner/repo", page_folder / "METS.xml"), ("owner/repo", page_folder / "scan.alto.xml")],
        ExclusionList(rules=()),
    )
    assert [sample.text for sample in samples] == ["Chère Émilie,", "merci"]


def test_packed_lines_read_back_as_training_lines_with_their_documents(page_folder: Path, tmp_path: Path) -> None:
    """pack-lines keeps text, repository and document: the exclusion list still reaches a packed line."""
    from click.testing import CliRunner

    from hwdaemon.cli import cli

    rules = tmp_path / "rules.tsv"
    rules.write_text("owner/other\t*\n")
    outcome = CliRunner().invoke(cli, ["pack-lines", "--source", f"owner/repo={page_folder / 'doc.alto.xml'}", "--exclusions", str(rules),
                                       "--line-type", "owner/repo=Handwritten", "--out", str(tmp_path / "pack")])  # fmt: skip
    assert outcome.exit_code == 0, outcome.output
    assert json.loads(outcome.stdout.strip().splitlines()[-1])["lines"] == 1  # the typewritten line left out
    packed = load_samples([("any", tmp_path / "pack" / "manifest.jsonl")], ExclusionList(rules=()))
    assert [(s.text, s.repository, s.document) for s in packed] == [("Chère Émilie,", "owner/repo", "doc.alto.xml")]
    assert packed[0].image.shape[0] == 64 and packed[0].image.min() < 60  # the network's height, the ink kept
    rules.write_text("owner/repo\tdoc.alto*\n")
    assert load_samples([("any", tmp_path / "pack" / "manifest.jsonl")], ExclusionList.load(rules)) == []
