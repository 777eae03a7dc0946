"""The spelling post-processor: fixes doubtful words, never the user's words or confident lines."""

from __future__ import annotations

import pytest

from hwdaemon.builtins.postprocessors.spelling import Spelling, SpellingOptions
from hwdaemon.config import ConfigError
from hwdaemon.model import Box, Line
from hwdaemon.pipeline.stages import PieceContext
from hwdaemon.pipeline.userwords import UserWords

BOX = Box(0, 0, 100, 20).polygon


def correct(
    text: str,
    confidence: float = 0.2,
    languages: tuple[str, ...] = ("en",),
    user_words: UserWords | None = None,
    **options: object,
) -> str:
    speller = Spelling(
        SpellingOptions(**options), PieceContext(languages=languages, user_words=user_words or UserWords())
    )  # type: ignore[arg-type]
    return speller.apply((Line(text, confidence, BOX),))[0].text


def test_doubtful_misspellings_are_corrected_keeping_case_and_punctuation() -> None:
    assert correct("Nominatng, the GOVERNMNT resolution!") == "Nominating, the GOVERNMENT resolution!"


def test_user_words_are_never_corrected() -> None:
    assert correct("Gaitskel spoke", user_words=UserWords(["Gaitskel"])) == "Gaitskel spoke"


def test_a_user_word_is_protected_whatever_its_case_and_sharp_s() -> None:
    assert correct("STRASSE and Straße", user_words=UserWords(["Straße"])) == "STRASSE and Straße"


def test_user_words_file_is_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    words = tmp_path / "words.txt"
    words.write_text("Hendersonn\n")
    assert correct("Hendersonn arrived", user_words=UserWords(path=words)) == "Hendersonn arrived"


def test_user_words_on_the_spelling_step_point_to_the_profile() -> None:
    with pytest.raises(ValueError, match="set on the profile"):
        SpellingOptions(user_words=["Gaitskel"])  # type: ignore[call-arg]


def test_confident_lines_are_left_alone() -> None:
    assert correct("Nominatng government", confidence=0.9) == "Nominatng government"


def test_short_words_and_words_with_digits_are_left_alone() -> None:
    assert correct("teh 4pm meetng") == "teh 4pm meeting"  # "teh" is shorter than min_word_length


def test_french_uses_its_own_dictionary() -> None:
    assert correct("gouvernemant", languages=("fr",)) == "gouvernement"


def test_language_without_dictionary_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no dictionary for language 'ja'"):
        Spelling(SpellingOptions(), PieceContext(languages=("ja",)))
