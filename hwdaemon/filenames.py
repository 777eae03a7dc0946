"""Every file name hwdaemon derives fits the filesystem: NAME_MAX bytes a name, PATH_MAX a path.

A scan may arrive with a 255-byte name; `<name>.error.json`, `<stem>-2.<ext>`,
`<stem>-<sha8>.txt` and `.<name>.<random>.tmp` would then be longer than the
filesystem allows, and the write fails with ENAMETOOLONG. Derived names are
shortened here: the stem is cut on a character boundary and a hash of the whole
name appended, so two long names that differ only at the end stay apart, and the
extension is kept, so the file still opens with the right program.
"""

from __future__ import annotations

import hashlib
import os
import re

NAME_MAX_BYTES = 255
ERROR_REPORT_SUFFIX = ".error.json"
_HASH_CHARS = 8
_EXTENSION = re.compile(r"(\.[A-Za-z][A-Za-z0-9]{0,7})?\.[A-Za-z0-9]{1,8}$")  # .png, .tiff, .alto.xml, .error.json
_LONGEST_EXTENSION_BYTES = 16


def fit_name(name: str, reserve_bytes: int = 0) -> str:
    """`name`, or a shortened `stem~hash.ext`, whose UTF-8 length plus `reserve_bytes` fits NAME_MAX.

    `reserve_bytes` keeps room for what will be appended later (`.error.json`).
    The hash is of the stem and the stem is cut as if the extension were the
    longest allowed, so the `.txt`, `.json` and `.alto.xml` of one long name
    still share one stem and sort together.
    """
    limit = NAME_MAX_BYTES - reserve_bytes
    if len(os.fsencode(name)) <= limit:
        return name
    stem, suffix = split_extension(name)
    tag = "~" + hashlib.sha256(os.fsencode(stem)).hexdigest()[:_HASH_CHARS]
    room = limit - len(tag) - max(len(os.fsencode(suffix)), _LONGEST_EXTENSION_BYTES)
    return _cut_utf8(stem, room) + tag + suffix


def split_extension(name: str) -> tuple[str, str]:
    """`note.alto.xml` → (`note`, `.alto.xml`): a last part of up to 8 letters or digits, and one before it starting with a letter."""
    match = _EXTENSION.search(name)
    suffix = match.group(0) if match and match.start() > 0 else ""
    return name[: len(name) - len(suffix)], suffix


def _cut_utf8(text: str, limit_bytes: int) -> str:
    """The longest prefix of `text` whose encoded length fits `limit_bytes`, never splitting a character."""
    kept, used = [], 0
    for char in text:
        size = len(os.fsencode(char)) if not 0xDC80 <= ord(char) <= 0xDCFF else 1
        if used + size > limit_bytes:
            break
        kept.append(char)
        used += size
    return "".join(kept)
