"""Fixing a page's lines in real headless Chromium (Debian's, driven by Playwright) against the real daemon.

Delete a line, draw the box of a missed one and type its text, merge two
lines, split one by clicking the scan, mark one not text; then approve and see
the file sink deliver the text as the fixed lines say. Screenshots of the page
are kept in test-artifacts/ (or $HWDAEMON_TEST_ARTIFACTS).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from daemon_harness import Daemon, wait_for, write_config
from rendering import render_lines, save

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("HWDAEMON_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian chromium is not installed (scripts/setup --test installs it)"
)


def box_of(page: Any, index: int) -> tuple[int, int, int, int]:
    """Line `index`'s box in page pixels, from its polygon on the scan."""
    points = [
        tuple(map(int, pair.split(","))) for pair in page.locator(f"#box-{index}").get_attribute("points").split()
    ]
    xs, ys = [x for x, _ in points], [y for _, y in points]
    return min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)


def on_screen(page: Any, x: float, y: float) -> tuple[float, float]:
    """A point of the page (in its pixels) where it is on the screen, through the scan's size."""
    scan = page.locator("#scan-boxes").bounding_box()
    width, height = (int(page.locator("#tools").get_attribute(name)) for name in ("data-width", "data-height"))
    return scan["x"] + x * scan["width"] / width, scan["y"] + y * scan["height"] / height


def test_delete_draw_merge_split_and_not_text_in_a_real_browser(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    (tmp_path / "inbox").mkdir()
    config = write_config(
        tmp_path,
        ui={"enabled": True, "port": 0},
        sinks={"outbox": {"type": "file", "path": str(tmp_path / "outbox"), "formats": ["txt", "json"]}},
    )
    save(render_lines(["Meet me at noon", "by the old mill", "bring the map"]), tmp_path / "inbox" / "note.png")
    daemon = Daemon(config).start()
    try:
        daemon.wait_event("job_done")
        url = next(event["url"] for event in daemon.events() if event.get("event") == "ui_listening")
        delivered = tmp_path / "outbox" / "note.json"
        wait_for(delivered.exists, what="first delivery")

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{url}/jobs")
            page.get_by_role("link", name="note.png").first.click()
            boxes = page.locator("polygon.box:not(.nottext)")
            expect(boxes).to_have_count(3)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "review-lines-before.png"), full_page=True)

            # Delete the third line, then draw it back by hand where the reader "missed" it.
            missed = box_of(page, 2)
            page.locator("#line-0").fill("Meet me at half past noon")  # typed before the fix: saved with it
            page.get_by_title("delete line 3").click()
            expect(page.locator(".message")).to_contain_text("saved as revision 1")
            expect(boxes).to_have_count(2)
            expect(page.locator("#line-0")).to_have_value("Meet me at half past noon")

            page.locator("#draw-line").click()
            expect(page.locator("#mode")).to_contain_text("Drag a box")
            left, top = on_screen(page, missed[0], missed[1])
            right, bottom = on_screen(page, missed[0] + missed[2], missed[1] + missed[3])
            page.mouse.move(left, top)
            page.mouse.down()
            page.mouse.move((left + right) / 2, (top + bottom) / 2, steps=4)
            page.mouse.move(right, bottom, steps=4)
            page.mouse.up()
            expect(page.locator("#new-text")).to_be_focused()
            page.keyboard.type("bring the old map")
            page.keyboard.press("Enter")
            expect(page.locator(".message")).to_contain_text("saved as revision 2")
            expect(boxes).to_have_count(3)
            expect(page.locator("#line-2")).to_have_value("bring the old map")
            drawn = box_of(page, 2)
            assert all(abs(a - b) <= 3 for a, b in zip(drawn, missed, strict=True)), (drawn, missed)

            # Merge the first two lines, then split the merged line again by clicking where to cut.
            page.get_by_title("merge line 1 with the next").click()
            expect(page.locator(".message")).to_contain_text("saved as revision 3")
            expect(boxes).to_have_count(2)
            expect(page.locator("#line-0")).to_have_value("Meet me at half past noon by the old mill")
            merged = box_of(page, 0)

            page.get_by_title("split line 1: then click the scan where to cut").click()
            expect(page.locator("#mode")).to_contain_text("Click the scan where line 1 is to be cut")
            page.locator("#split-axis").select_option("y")  # the two rows are one above the other
            cut_y = merged[1] + merged[3] // 2
            page.mouse.click(*on_screen(page, merged[0] + merged[2] // 2, cut_y))
            expect(page.locator(".message")).to_contain_text("saved as revision 4")
            expect(boxes).to_have_count(3)
            above, below = box_of(page, 0), box_of(page, 1)
            assert abs(above[1] + above[3] - cut_y) <= 1 and abs(below[1] - cut_y) <= 1
            page.locator("#line-1").fill("by the old mill")  # the split piece below is typed
            page.locator("#line-0").fill("Meet me at half past noon")
            page.keyboard.press("Control+s")
            expect(page.locator(".message")).to_contain_text("saved as revision 5")

            # A doodle: mark the drawn line not text, and see it hatched on the scan.
            page.get_by_title("line 3 is not text (a stamp, a drawing): keep it out of the text").click()
            expect(page.locator(".message")).to_contain_text("saved as revision 6")
            expect(boxes).to_have_count(2)
            expect(page.locator("polygon.nottext")).to_have_count(1)
            expect(page.locator(".changes")).to_contain_text("not text")
            page.screenshot(path=str(ARTIFACTS / "review-lines-after.png"), full_page=True)

            page.locator("#approve").click()
            expect(page.locator(".message")).to_contain_text("approved revision 6")

            # What approving taught: the job bar's count leads to the lines to check and the profile's learning.
            page.get_by_role("link", name="2 lines approved since the last training").click()
            expect(page.locator("#approved-since")).to_have_text("2")
            expect(page.locator("#learning")).to_contain_text("learning is off for this profile")
            page.screenshot(path=str(ARTIFACTS / "review-check-queue.png"), full_page=True)
            browser.close()

        def delivered_revision() -> dict[str, Any]:
            return json.loads(delivered.read_text())  # type: ignore[no-any-return]

        wait_for(lambda: delivered_revision()["revision"] == 6, what="revision 6 delivered")
        pages = delivered_revision()["pages"]
        assert [line["text"] for line in pages[0]["lines"]] == ["Meet me at half past noon", "by the old mill"]
        assert [region["text"] for region in pages[0]["not_text"]] == ["bring the old map"]
        wait_for(
            lambda: (
                (tmp_path / "outbox" / "note.txt").read_text().splitlines()
                == ["Meet me at half past noon", "by the old mill"]
            ),
            what="the fixed lines in the txt export",
        )
    finally:
        daemon.stop()
