"""The exclusion list keeps every evaluation document out of training."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import DEV_DATA
from hwdaemon.training.exclusion import ExclusionList

SAMPLE = """\
# comment
HTR-United/CREMMA-AN-TestamentsDePoilus\tTestamentsDePoilus_will_AN_0069-*
PSL-Chartes-HTR-Students/HN2021-Memorials_Jane_Lathrop_Stanford\tLettre242_*  and  Lettre242
banq-dcn/Copiste-d-un-jour\t*wikitexte_0135*
githubharald/CTCWordBeamSearch\tdata/bentham/ (all)
jschaefer738b/JosephHookerHTR\t* (the whole repository)
the-full-stack/fsdl-text-recognizer-project\ta01-000u
"""


@pytest.fixture
def exclusions(tmp_path: Path) -> ExclusionList:
    path = tmp_path / "DO-NOT-TRAIN.tsv"
    path.write_text(SAMPLE)
    return ExclusionList.load(path)


@pytest.mark.parametrize(
    ("repository", "path", "excluded"),
    [
        ("HTR-United/CREMMA-AN-TestamentsDePoilus", "data/TestamentsDePoilus_will_AN_0069-2.xml", True),
        ("HTR-United/CREMMA-AN-TestamentsDePoilus", "data/TestamentsDePoilus_will_AN_0070-0.xml", False),
        ("PSL-Chartes-HTR-Students/HN2021-Memorials_Jane_Lathrop_Stanford", "Lettre242.jpg", True),
        ("PSL-Chartes-HTR-Students/HN2021-Memorials_Jane_Lathrop_Stanford", "alto/Lettre242_3.xml", True),
        (
            "PSL-Chartes-HTR-Students/HN2021-Memorials_Jane_Lathrop_Stanford",
            "alto/Lettre2420.xml",
            True,
        ),  # ids are prefixes: err on the safe side
        ("PSL-Chartes-HTR-Students/HN2021-Memorials_Jane_Lathrop_Stanford", "alto/Lettre243.xml", False),
        ("banq-dcn/Copiste-d-un-jour", "forms/imp_wikitexte_0135_2.xml", True),
        ("banq-dcn/Copiste-d-un-jour", "forms/wikitexte_0136_1.xml", False),
        ("githubharald/CTCWordBeamSearch", "data/bentham/img_3.png", True),
        ("githubharald/CTCWordBeamSearch", "data/iam/img_3.png", False),
        ("jschaefer738b/JosephHookerHTR", "anything/at/all.xml", True),
        ("someone/iam-copy", "lines/a01-000u-04.png", True),  # an IAM form, wherever it appears
        ("someone/iam-copy", "lines/a01-001-04.png", False),
    ],
)
def test_rules_match_documents(exclusions: ExclusionList, repository: str, path: str, excluded: bool) -> None:
    assert exclusions.is_excluded(repository, path) is excluded


def test_every_dev_set_item_is_excluded_by_the_real_list(dev_manifest: list[dict[str, str]]) -> None:
    real = ExclusionList.load(DEV_DATA / "DO-NOT-TRAIN.tsv")
    for item in dev_manifest:
        if item["source"].startswith("githubharald/"):
            continue  # renamed crops (data/line.png → simplehtr_line.png); the list names their source paths
        stem = Path(item["image"]).name
        assert real.is_excluded(item["source"], stem), item["id"]
