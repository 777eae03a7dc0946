"""The review page in real headless Chromium (Debian's, driven by Playwright) against the real daemon.

Open a processed job, correct a line, save with Ctrl+S, approve, and see the
file sink receive the corrected text. The job page's screenshot is kept in
test-artifacts/ (or $HWDAEMON_TEST_ARTIFACTS).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from daemon_harness import Daemon, wait_for, write_config
from rendering import render_lines, save

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("HWDAEMON_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian chromium is not installed (scripts/setup --test installs it)"
)


def test_correct_save_approve_redeliver_in_a_real_browser(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    (tmp_path / "inbox").mkdir()
    config = write_config(
        tmp_path,
        ui={"enabled": True, "port": 0},
        sinks={"outbox": {"type": "file", "path": str(tmp_path / "outbox"), "formats": ["txt", "json"]}},
    )
    save(render_lines(["Meet me at noon", "by the old mill"]), tmp_path / "inbox" / "note.png")
    daemon = Daemon(config).start()
    try:
        daemon.wait_event("job_done")
        url = next(event["url"] for event in daemon.events() if event.get("event") == "ui_listening")
        delivered = tmp_path / "outbox" / "note.txt"
        wait_for(delivered.exists, what="first delivery")
        first_text = delivered.read_text()

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{url}/jobs")
            page.get_by_role("link", name="note.png").first.click()
            expect(page.locator("h1")).to_contain_text("note.png")
            expect(page.locator("img#scan")).to_be_visible()
            boxes = page.locator("polygon.box")
            assert boxes.count() == 2

            line = page.locator("#line-0")
            line.click()
            expect(page.locator("#box-0")).to_have_class(
                "box " + page.locator("#box-0").get_attribute("class").split()[1] + " active"
            )  # type: ignore[union-attr]
            line.fill("Meet me at half past noon")
            page.keyboard.press("Control+s")
            expect(page.locator(".message")).to_contain_text("saved as revision 1")
            expect(page.locator(".changes ins")).to_have_text("Meet me at half past noon")

            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "review-job-page.png"), full_page=True)

            page.locator("#approve").click()
            expect(page.locator(".message")).to_contain_text("approved revision 1")
            browser.close()

        wait_for(lambda: "half past noon" in delivered.read_text(), what="corrected text in the outbox")
        corrected = delivered.read_text()
        assert corrected.splitlines()[0] == "Meet me at half past noon"
        assert corrected.splitlines()[1:] == first_text.splitlines()[1:]
        # The file sink writes .txt, then .json: the second can lag the first by a moment.
        wait_for(
            lambda: '"revision": 1' in (tmp_path / "outbox" / "note.json").read_text(),
            what="revision 1 in the JSON export",
        )
    finally:
        daemon.stop()
