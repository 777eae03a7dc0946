"""The documents no model may ever be trained on (../shared/data/DO-NOT-TRAIN.tsv).

Format: `repository <TAB> document id`, one per line, `#` comments. An id is a
file-name stem or prefix; `*` matches anything; `a  and  b` lists two patterns;
a trailing `/` names a folder; text in parentheses is a comment. IAM form ids
(`a01-000u`) exclude that form in every repository. `*` alone excludes the
whole repository.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

from hwdaemon.errors import ConfigError

IAM_FORM = re.compile(r"^[a-z]\d{2}-\d{3}[a-z]?$")


@dataclass(frozen=True, slots=True)
class ExclusionRule:
    repository: str
    pattern: str

    def matches(self, repository: str, path: str) -> bool:
        if IAM_FORM.match(self.pattern):
            return any(candidate.startswith(self.pattern) for candidate in _candidates(path))
        if repository.casefold() != self.repository.casefold():
            return False
        if self.pattern == "*":
            return True
        if self.pattern.endswith("/"):
            return path.startswith(self.pattern) or f"/{self.pattern}" in f"/{path}"
        if "*" in self.pattern:
            return any(fnmatchcase(candidate, self.pattern) for candidate in _candidates(path))
        return any(candidate.startswith(self.pattern) for candidate in _candidates(path))


def _candidates(path: str) -> tuple[str, ...]:
    pure = PurePosixPath(path)
    return (path, pure.name, pure.stem)


@dataclass(frozen=True, slots=True)
class ExclusionList:
    rules: tuple[ExclusionRule, ...]
    source: str = "<none>"

    @classmethod
    def load(cls, path: Path) -> ExclusionList:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the exclusion list: {exc.strerror}") from exc
        rules = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if "\t" not in line:
                raise ConfigError(f"{path}:{number}: expected 'repository<TAB>document id'")
            repository, ids = line.split("\t", 1)
            ids = re.sub(r"\(.*?\)", "", ids)
            for pattern in re.split(r"\s+and\s+", ids.strip()):
                if pattern:
                    rules.append(ExclusionRule(repository.strip(), pattern.strip()))
        return cls(rules=tuple(rules), source=str(path))

    def is_excluded(self, repository: str, path: str) -> bool:
        """True if the sample at `path` (relative, or an id) of `repository` is an evaluation document."""
        return any(rule.matches(repository, path) for rule in self.rules)


class ExcludedDocumentError(ConfigError):
    """A training set reached for a document on the exclusion list: a bug, never a warning."""
