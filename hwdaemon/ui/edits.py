"""The save form's fixes of the page's lines, read into `hwdaemon.line_edits` objects.

The rule: every field is parsed strictly here, and anything malformed is a 400
that says which field and what it should look like, before the store is
opened. Whether the fix fits the page (the line exists, the box is on the
page) is the review action's to say, also as a 400.

The form's buttons carry one fix each as `op` = `VERB:LINE` (lines counted from 0
as the page shows them): `delete`, `not-text`, `restore` (a not-text region),
`merge` (with the next line), `up`, `down`, `split` (with `at` = `X,Y` and `axis`
= `x` or `y`); `add` takes `box` = `X,Y,WIDTH,HEIGHT` and `new-text`. `save`
(or no `op`) saves the texts alone. `checked` names lines the reviewer read and
vouches for as they are; `revision` is the revision the page showed.
"""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException

from hwdaemon.line_edits import (
    AddLine,
    DeleteLine,
    LineEdit,
    MarkNotText,
    MergeLines,
    MoveLine,
    RestoreText,
    SplitLine,
)
from hwdaemon.model import Box

MAX_COORDINATE = 1_000_000  # no page is this large; keeps a hostile number from becoming a huge int


def line_edits_of(form: FormData) -> tuple[LineEdit, ...]:
    """The fix the pressed button asks for (none for a plain save); 400 when a field is malformed."""
    op = str(form.get("op", "save")).strip()
    if op in ("", "save"):
        return ()
    if op == "add":
        x, y, width, height = _numbers(form, "box", 4, "X,Y,WIDTH,HEIGHT in page pixels")
        return (AddLine(Box(x, y, width, height), str(form.get("new-text", ""))),)
    verb, _, number = op.partition(":")
    if not number.isdigit() or len(number) > 6:
        raise HTTPException(400, f"op {op!r}: expected VERB:LINE, such as delete:3")
    line = int(number)
    match verb:
        case "delete":
            return (DeleteLine(line),)
        case "not-text":
            return (MarkNotText(line),)
        case "restore":
            return (RestoreText(line),)
        case "merge":
            return (MergeLines(line, line + 1),)
        case "up":
            return (MoveLine(line, line - 1),) if line else ()
        case "down":
            return (MoveLine(line, line + 1),)
        case "split":
            x, y = _numbers(form, "at", 2, "X,Y in page pixels, where to cut")
            axis = str(form.get("axis", "x"))
            if axis not in ("x", "y"):
                raise HTTPException(400, "axis: x (cut across the line: left | right) or y (along it: above | below)")
            return (SplitLine(line, (x, y), "x" if axis == "x" else "y"),)
    raise HTTPException(400, f"op {verb!r}: one of save, add, delete, not-text, restore, merge, up, down, split")


def checked_lines_of(form: FormData) -> frozenset[int]:
    """The `checked` fields: lines the reviewer read and vouches for as they are."""
    values = [str(value) for value in form.getlist("checked")]
    if any(not value.isdigit() or len(value) > 6 for value in values):
        raise HTTPException(400, "checked: line numbers counted from 0")
    return frozenset(int(value) for value in values)


def revision_seen_of(form: FormData) -> int | None:
    """The `revision` field: the revision the page showed, so a save over a newer one is refused (None: not said)."""
    value = str(form.get("revision", ""))
    if not value:
        return None
    if not value.isdigit() or len(value) > 9:
        raise HTTPException(400, "revision: the number of the revision the page showed")
    return int(value)


def _numbers(form: FormData, field: str, count: int, shape: str) -> list[int]:
    parts = str(form.get(field, "")).split(",")
    try:
        numbers = [round(float(part)) for part in parts]
    except (ValueError, OverflowError):  # not a number, nan, inf
        numbers = []
    if len(numbers) != count or any(abs(number) > MAX_COORDINATE for number in numbers):
        raise HTTPException(400, f"{field}: expected {shape}")
    return numbers
