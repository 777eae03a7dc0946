"""The beam decoder: a character language model of words, and CTC prefix beam search that listens to it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from conftest import character_error_rate
from hwdaemon.builtins.recognizers import charlm
from hwdaemon.builtins.recognizers.beamsearch import BeamSettings, beam_search
from hwdaemon.config import parse_config
from hwdaemon.errors import ConfigError
from hwdaemon.model import Document, Page
from hwdaemon.pipeline import Pipeline
from hwdaemon.pipeline.userwords import UserWords
from hwdaemon.plugins import Registry
from rendering import render_lines

WORDS = [("hello", 50.0), ("help", 20.0), ("yellow", 10.0), ("world", 30.0), ("word", 15.0), ("don't", 5.0)]
CHARSET = " 'dehlorwy"


@pytest.fixture(scope="module")
def small_model() -> charlm.CharLanguageModel:
    return charlm.train(WORDS, order=4)


def steps(*columns: dict[str, float]) -> np.ndarray:
    """A (steps, classes) softmax output: each step's listed characters get their probability, the blank the rest."""
    rows = np.full((len(columns), len(CHARSET) + 1), 1e-6)
    for row, column in zip(rows, columns, strict=True):
        for character, probability in column.items():
            row[CHARSET.index(character) + 1] = probability
        row[0] = max(1e-6, 1 - sum(column.values()))
    return rows / rows.sum(axis=1, keepdims=True)


def test_probabilities_after_a_context_sum_to_one() -> None:
    """Witten–Bell in backoff form must still be a distribution, for seen and unseen contexts alike.

    Every symbol of the alphabet, plus the one slot the floor keeps for a symbol never
    seen ("§" stands for it), must share exactly all the mass.
    """
    model = charlm.train([(word, 1.0) for word, _ in WORDS], order=4)
    alphabet = {charlm.symbol(character) for word, _ in WORDS for character in word} | {charlm.BOUNDARY}
    for context in ["#", "#he", "#hel", "wor", "#zz", ""]:
        total = sum(math.exp(model.log_probability(context, symbol)) for symbol in alphabet | {"§"})
        assert total == pytest.approx(1.0, abs=1e-9), context


def test_a_word_outscores_its_misspelling_and_case_and_punctuation_are_folded(
    small_model: charlm.CharLanguageModel,
) -> None:
    assert small_model.text_log_probability("hello world") > small_model.text_log_probability("hrllo wordl") + 5
    assert small_model.text_log_probability("Hello, World!") == pytest.approx(
        small_model.text_log_probability("hello world")
    )
    assert small_model.text_log_probability("don’t") == pytest.approx(small_model.text_log_probability("don't"))


def test_the_language_model_settles_what_the_network_half_saw(small_model: charlm.CharLanguageModel) -> None:
    # The network is unsure whether the fourth letter is an l or an r, and leans to r.
    output = steps({"h": 0.9}, {"e": 0.9}, {"l": 0.9}, {}, {"r": 0.5, "l": 0.4}, {"o": 0.9})
    assert beam_search(output, CHARSET, small_model, BeamSettings(lm_weight=0.0, length_bonus=0.0)) == "helro"
    assert beam_search(output, CHARSET, small_model, BeamSettings(lm_weight=1.0, length_bonus=0.0)) == "hello"


def test_a_held_character_is_one_and_a_blank_between_makes_two(small_model: charlm.CharLanguageModel) -> None:
    held = steps({"w": 0.9}, {"o": 0.9}, {"o": 0.9}, {"r": 0.9}, {"d": 0.9})
    assert beam_search(held, CHARSET, small_model, BeamSettings(lm_weight=0.0, length_bonus=0.0)) == "word"
    separated = steps({"w": 0.9}, {"o": 0.9}, {}, {"o": 0.9}, {"r": 0.9}, {"d": 0.9})
    assert beam_search(separated, CHARSET, small_model, BeamSettings(lm_weight=0.0, length_bonus=0.0)) == "woord"


def test_all_blank_output_reads_as_nothing(small_model: charlm.CharLanguageModel) -> None:
    assert beam_search(steps({}, {}, {}), CHARSET, small_model, BeamSettings()) == ""


def test_a_profile_language_without_a_word_list_is_named() -> None:
    with pytest.raises(ConfigError, match=r"'ja'.*decoder: greedy"):
        charlm.check_languages(["en", "ja"])


def test_profile_languages_each_weigh_the_same(small_model: charlm.CharLanguageModel) -> None:
    """In an [en, fr] profile a French word is not drowned by the English counts."""
    mixed = charlm.for_languages(("en", "fr"), words=5000)
    english = charlm.for_languages(("en",), words=5000)
    assert mixed.text_log_probability("maison") > english.text_log_probability("maison") + 3
    assert mixed.text_log_probability("house") > mixed.text_log_probability("hsuoe") + 5


def test_in_english_the_word_before_counts() -> None:
    """symspellpy's word pairs carry the context across the space: "of the" is likelier than "the of"."""
    english = charlm.for_languages(("en",), words=5000)
    assert english.text_log_probability("one of the") > english.text_log_probability("one the of") + 2
    assert english.text_log_probability("of the") > english.text_log_probability("of tho") + 5


def test_a_language_without_word_pairs_reads_each_word_on_its_own() -> None:
    french = charlm.for_languages(("fr",), words=5000)
    text = "la maison de mon oncle"
    assert french.text_log_probability(text) == pytest.approx(
        sum(french.text_log_probability(word) for word in text.split())
    )


def test_a_built_model_is_cached_and_a_damaged_cache_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    built = charlm.for_languages(("fr",), words=300)
    (cache,) = (tmp_path / "hwdaemon").glob("charlm-*-fr-300-6-*.json.gz")
    charlm.for_languages.cache_clear()
    assert charlm.for_languages(("fr",), words=300).log_probabilities == built.log_probabilities
    cache.write_bytes(b"not gzip")
    charlm.for_languages.cache_clear()
    assert charlm.for_languages(("fr",), words=300).text_log_probability("maison") == pytest.approx(
        built.text_log_probability("maison")
    )
    assert cache.read_bytes() != b"not gzip"  # written again


@pytest.mark.parametrize("decoder", ["beam", "greedy"])
def test_both_decoders_read_a_rendered_line(decoder: str, registry: Registry) -> None:
    config = parse_config(
        f"profiles:\n  default: {{recognizer: {{type: handwriting, decoder: {decoder}}}}}\n", "cfg.yaml", registry
    )
    pipeline = Pipeline.from_profile("default", config.profile("default"), config.models, registry)
    pipeline.check_ready()
    result = pipeline.run(
        Document("x.png", "0" * 64, (Page(1, render_lines(["The quick brown fox jumps over"], font_size=40)),))
    )
    (line,) = result.lines
    assert character_error_rate("The quick brown fox jumps over", line.text) < 0.3 and 0 < line.confidence <= 1


def test_check_config_names_a_language_the_beam_decoder_cannot_spell(registry: Registry) -> None:
    config = parse_config("profiles:\n  default: {languages: [ja], recognizer: handwriting}\n", "cfg.yaml", registry)
    pipeline = Pipeline.from_profile("default", config.profile("default"), config.models, registry)
    with pytest.raises(ConfigError, match="'ja'"):
        pipeline.check_ready()


def test_a_profile_word_is_spelled_where_the_network_half_saw_it() -> None:
    """A name no dictionary holds: the network barely sees its e; the profile's word list settles it."""
    charset = " abcdefghijklmnopqrstuvwxyz"
    rows = np.full((6, len(charset) + 1), 1e-6)
    for row, (character, probability) in zip(
        rows, [("r", 0.9), ("o", 0.9), ("w", 0.9), ("l", 0.9), ("e", 0.3), ("y", 0.9)], strict=True
    ):
        row[charset.index(character) + 1], row[0] = probability, 1 - probability
    output = rows / rows.sum(axis=1, keepdims=True)
    assert beam_search(output, charset, charlm.for_languages(("en",), words=5000), BeamSettings()) == "rowly"
    assert (
        beam_search(output, charset, charlm.for_languages(("en",), frozenset({"Rowley"}), words=5000), BeamSettings())
        == "rowley"
    )


def test_profile_words_change_nothing_else() -> None:
    english = charlm.for_languages(("en",), words=5000)
    with_names = charlm.for_languages(("en",), frozenset({"legros", "jouen", "branner", "Saint-Exupéry"}), words=5000)
    assert with_names.text_log_probability("Legros") > english.text_log_probability("legros") + 5
    assert with_names.text_log_probability("Saint-Exupéry") > english.text_log_probability("saint exupéry") + 5
    text = "the quick brown fox jumps over the lazy dog"
    assert with_names.text_log_probability(text) == pytest.approx(english.text_log_probability(text), abs=0.5)


def test_a_profile_word_with_sharp_s_reaches_the_word_model_as_written() -> None:
    """Case folding would hand the model "strasse"; the decoder reads "straße"."""
    english = charlm.for_languages(("en",), words=5000)
    with_word = charlm.for_languages(("en",), UserWords(["Hauptstraße"]).words(), words=5000)
    assert with_word.text_log_probability("Hauptstraße") > english.text_log_probability("hauptstraße") + 5
    assert with_word.text_log_probability("Hauptstraße") > with_word.text_log_probability("Hauptstrasse") + 3


def test_a_word_added_to_the_profile_file_is_used_by_the_next_line(tmp_path: Path, registry: Registry) -> None:
    words = tmp_path / "words.txt"
    config = parse_config(
        f"profiles:\n  default: {{recognizer: handwriting, user_words_file: {words}}}\n", "cfg.yaml", registry
    )
    pipeline = Pipeline.from_profile("default", config.profile("default"), config.models, registry)
    before = pipeline.recognizer._decoder()  # type: ignore[attr-defined]
    words.write_text("Lathrop\n")
    after = pipeline.recognizer._decoder()  # type: ignore[attr-defined]
    assert before is not None and after is not None
    assert (
        after.language_model.text_log_probability("lathrop") > before.language_model.text_log_probability("lathrop") + 3
    )


def test_only_the_newest_models_with_profile_words_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    for count in range(charlm.USER_WORD_CACHES + 2):
        charlm.for_languages(("fr",), frozenset({"nom" + "abcdefghij"[count]}), words=300)
    assert len(list((tmp_path / "hwdaemon").glob("charlm-*-fr-300-6-*-u*.json.gz"))) == charlm.USER_WORD_CACHES
