"""A profile's own words: names and jargon no dictionary holds.

They are listed in the profile (`user_words`) or kept in a file, one word per line
(`user_words_file`; the review page's "add word" appends to it). The beam decoder
spells them as readily as common words, and the spelling step never "corrects" them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from hwdaemon.errors import ConfigError


class UserWords:
    """The listed words plus the file's, re-read whenever the file changes.

    Words are kept lower-cased, as the decoder's word model spells them: case
    folding would turn "Straße" into "strasse", a word the decoder never reads.
    """

    def __init__(self, listed: Iterable[str] = (), path: Path | None = None) -> None:
        self.path = path
        self._listed = frozenset(word.strip().lower() for word in listed if word.strip())
        self._stamp: tuple[int, int] | None = None
        self._words = self._listed

    def words(self) -> frozenset[str]:
        """Lower-cased; an unreadable file is a ConfigError, a missing one is simply empty (nothing added yet)."""
        if self.path is None:
            return self._listed
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return self._listed
        except OSError as exc:
            raise ConfigError(f"user_words_file {self.path}: {exc.strerror}") from exc
        stamp = (info.st_mtime_ns, info.st_size)
        if stamp != self._stamp:
            try:
                text = self.path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"user_words_file {self.path}: {getattr(exc, 'strerror', None) or exc}") from exc
            self._words = self._listed | {line.strip().lower() for line in text.splitlines() if line.strip()}
            self._stamp = stamp
        return self._words

    def add(self, word: str) -> bool:
        """Append `word` to the file unless it is known already (listed or in the file); returns whether it was added."""
        if self.path is None:
            raise ConfigError("this profile has no user_words_file to add words to")
        word = word.strip()
        if not word or any(character.isspace() for character in word):
            raise ValueError("a dictionary entry is one word")
        if word.lower() in self.words():
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as stream:
            stream.write(word + "\n")
        return True
