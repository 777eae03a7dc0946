"""The review page's routes and security rules, through Starlette's test client over a real store."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from hwdaemon import review
from hwdaemon.config import Config, parse_config
from hwdaemon.daemon.previews import encode_previews, save_previews
from hwdaemon.errors import ConfigError
from hwdaemon.model import Document, Line, Page, PageResult, Result
from hwdaemon.plugins import Registry
from hwdaemon.store import Store
from hwdaemon.ui.app import create_app
from hwdaemon.ui.security import CSRF_COOKIE

TOKEN = "correct-horse-battery-staple"


def make_config(
    folder: Path, registry: Registry, review: str = "optional", token: str | None = None, host: str = "127.0.0.1"
) -> Config:
    ui = f"ui: {{host: '{host}'" + (f", token: '{token}'" if token else "") + "}"
    text = f"""
state_dir: {folder / "state"}
{ui}
profiles:
  default:
    recognizer: handwriting
    review_below: 0.6
    user_words: [Legros]
    user_words_file: {folder / "words.txt"}
    postprocess:
      - {{type: spelling}}
inboxes:
  - {{path: {folder / "inbox"}, sinks: [outbox], review: {review}}}
sinks:
  outbox: {{type: file, path: {folder / "outbox"}}}
"""
    return parse_config(text, str(folder / "config.yaml"), registry)


def sample_result(
    sha256: str = "ab" * 32, texts: tuple[str, ...] = ("Dear Margaret,", "the <script>alert(1)</script> garden")
) -> Result:
    lines = tuple(
        Line(
            text=text,
            confidence=0.95 if index == 0 else 0.31,
            polygon=((10, 10 + 60 * index), (390, 10 + 60 * index), (390, 60 + 60 * index), (10, 60 + 60 * index)),
        )
        for index, text in enumerate(texts)
    )
    return Result(source="letter.png", sha256=sha256, profile="default", pages=(PageResult(1, 400, 200, lines),))


def add_done_job(store: Store, config: Config, result: Result, name: str = "letter.png", preview: bool = True) -> int:
    inbox = str((Path(config.inboxes[0].path)).absolute())
    job = store.jobs.add(f"{inbox}/{name}", inbox, "default", result.sha256, 10, 1)
    needs_review = any(line.confidence < 0.6 for line in result.lines)
    store.jobs.finish(
        job.id, result, ["outbox"], needs_review=needs_review, hold=config.inboxes[0].review == "required"
    )
    if preview:
        image = np.full((200, 400), 255, np.uint8)
        save_previews(encode_previews(Document(name, result.sha256, (Page(1, image),)), 2000), config.state_dir, job.id)
    return job.id


@pytest.fixture
def setup(tmp_path: Path, registry: Registry) -> tuple[Config, Store, TestClient]:
    config = make_config(tmp_path, registry)
    store = Store(config.state_dir)
    client = TestClient(create_app(lambda: config), base_url="http://127.0.0.1:8765", follow_redirects=False)
    return config, store, client


def csrf_of(client: TestClient, url: str) -> str:
    page = client.get(url)
    assert page.status_code == 200, page.text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    session_id = client.cookies.get(CSRF_COOKIE)
    assert (
        match and session_id and len(session_id) >= 32 and session_id != match.group(1)
    )  # the token is derived, not the cookie
    return match.group(1)


def test_jobs_list_shows_confidence_filters_searches_and_pages(setup: tuple[Config, Store, TestClient]) -> None:
    config, store, client = setup
    doubtful = add_done_job(store, config, sample_result(), preview=False)
    confident = add_done_job(
        store, config, sample_result("cd" * 32, ("All is well", "with everyone here")), "fine.png", preview=False
    )
    store.review.approve(confident, 0, "test", ["outbox"])
    assert client.get("/").headers["location"] == "/jobs"
    page = client.get("/jobs").text
    assert "letter.png" in page and "fine.png" in page and "needs review" in page and "31%" in page
    needs = client.get("/jobs", params={"review": "needs_review"}).text
    assert f'href="/jobs/{doubtful}"' in needs and f'href="/jobs/{confident}"' not in needs
    assert f'href="/jobs/{confident}"' in client.get("/jobs", params={"review": "approved"}).text
    found = client.get("/jobs", params={"q": "Margaret"}).text
    assert f'href="/jobs/{doubtful}"' in found and f'href="/jobs/{confident}"' not in found
    assert "No jobs match" in client.get("/jobs", params={"q": "100%_nothing"}).text
    assert client.get("/jobs", params={"state": "bogus"}).status_code == 400


def test_thousands_of_jobs_are_paged(setup: tuple[Config, Store, TestClient]) -> None:
    config, store, client = setup
    for number in range(120):
        add_done_job(store, config, sample_result(f"{number:064x}"), f"scan-{number:03}.png", preview=False)
    first = client.get("/jobs").text
    assert (
        "scan-119.png" in first and "scan-070.png" in first and "scan-069.png" not in first and "page 1 of 3" in first
    )
    third = client.get("/jobs", params={"page": 3}).text
    assert "scan-019.png" in third and "scan-000.png" in third and "scan-020.png" not in third


def test_job_page_marks_doubtful_lines_draws_boxes_and_escapes_text(setup: tuple[Config, Store, TestClient]) -> None:
    config, store, client = setup
    job_id = add_done_job(store, config, sample_result())
    page = client.get(f"/jobs/{job_id}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert page.count("<polygon") == 2 and 'class="box low"' in page and 'class="box high"' in page
    assert 'data-doubtful="1"' in page and page.count('data-doubtful="1"') == 1
    assert f'src="/jobs/{job_id}/pages/1.jpg"' in page and 'viewBox="0 0 400 200"' in page
    assert client.get(f"/jobs/{job_id}", params={"page": 7}).status_code == 404
    assert client.get("/jobs/999").status_code == 404


def test_images_come_only_from_the_stores_previews(setup: tuple[Config, Store, TestClient]) -> None:
    config, store, client = setup
    job_id = add_done_job(store, config, sample_result())
    image = client.get(f"/jobs/{job_id}/pages/1.jpg")
    assert (
        image.status_code == 200 and image.headers["content-type"] == "image/jpeg" and image.content[:2] == b"\xff\xd8"
    )
    (config.state_dir / "secret.txt").write_text("secret")
    for forged in (
        f"/jobs/{job_id}/pages/..%2F..%2Fsecret.txt",
        f"/jobs/{job_id}/pages/../../secret.txt",
        "/jobs/..%2Fsecret.txt/pages/1.jpg",
        "/static/..%2F..%2Fstore%2Fdatabase.py",
        "/static/../app.py",
        f"/jobs/{job_id}/pages/2.jpg",
        "/jobs/424242/pages/1.jpg",
    ):
        response = client.get(forged)
        assert response.status_code == 404, forged
        assert "secret" not in response.text and "import" not in response.text


def test_save_needs_csrf_and_keeps_the_original(setup: tuple[Config, Store, TestClient]) -> None:
    config, store, client = setup
    job_id = add_done_job(store, config, sample_result())
    assert client.post(f"/jobs/{job_id}/save", data={"page": "1", "line-1": "x"}).status_code == 403
    token = csrf_of(client, f"/jobs/{job_id}")
    assert (
        client.post(f"/jobs/{job_id}/save", data={"csrf_token": "f" * 43, "page": "1", "line-1": "x"}).status_code
        == 403
    )
    saved = client.post(
        f"/jobs/{job_id}/save",
        data={
            "csrf_token": token,
            "page": "1",
            "line-0": "Dear Margaret,",
            "line-1": "the rose garden",
            "reviewer": "Ada",
        },
    )
    assert saved.status_code == 303 and "revision+1" in saved.headers["location"]
    assert store.jobs.result_of(job_id).pages[0].lines[1].text == "the <script>alert(1)</script> garden"  # type: ignore[union-attr]
    revision = store.review.revisions(job_id)[0]
    assert (revision.number, revision.author) == (1, "Ada")
    assert (
        revision.result.pages[0].lines[1].text == "the rose garden"
        and revision.result.pages[0].lines[1].confidence == 1.0
    )
    assert revision.result.pages[0].lines[0].confidence == 0.95
    page = client.get(f"/jobs/{job_id}").text
    assert "<ins>the rose garden</ins>" in page and "<del>the &lt;script&gt;" in page and "revision 1: by Ada" in page
    again = client.post(
        f"/jobs/{job_id}/save",
        data={"csrf_token": token, "page": "1", "line-0": "Dear Margaret,", "line-1": "the rose garden"},
    )
    assert "nothing+changed" in again.headers["location"] and len(store.review.revisions(job_id)) == 1


def test_approve_queues_the_corrected_revision_with_its_own_key(setup: tuple[Config, Store, TestClient]) -> None:
    config, store, client = setup
    job_id = add_done_job(store, config, sample_result())
    token = csrf_of(client, f"/jobs/{job_id}")
    assert client.post(f"/jobs/{job_id}/approve", data={"page": "1"}).status_code == 403
    client.post(f"/jobs/{job_id}/save", data={"csrf_token": token, "page": "1", "line-1": "the rose garden"})
    approved = client.post(f"/jobs/{job_id}/approve", data={"csrf_token": token, "page": "1", "reviewer": "Ada"})
    assert approved.status_code == 303 and "1+delivery+queued" in approved.headers["location"]
    deliveries = store.deliveries.of_job(job_id)
    assert [(d.revision, d.state, d.idempotency_key.endswith(":outbox:r1")) for d in deliveries] == [
        (0, "pending", False),
        (1, "pending", True),
    ]
    row = store.review.row(job_id)
    assert row is not None and (row.approved_revision, row.reviewed_by) == (1, "Ada")
    assert store.jobs.result_of(job_id, 1).revision == 1  # type: ignore[union-attr]
    client.post(f"/jobs/{job_id}/approve", data={"csrf_token": token, "page": "1"})
    assert len(store.deliveries.of_job(job_id)) == 2  # approving the same revision twice queues nothing new


def test_review_required_holds_deliveries_until_approved(tmp_path: Path, registry: Registry) -> None:
    config = make_config(tmp_path, registry, review="required")
    store = Store(config.state_dir)
    client = TestClient(create_app(lambda: config), base_url="http://127.0.0.1:8765", follow_redirects=False)
    job_id = add_done_job(store, config, sample_result())
    assert [d.state for d in store.deliveries.of_job(job_id)] == ["held"] and store.deliveries.due() == []
    token = csrf_of(client, f"/jobs/{job_id}")
    client.post(f"/jobs/{job_id}/approve", data={"csrf_token": token, "page": "1"})
    assert [(d.state, d.revision) for d in store.deliveries.of_job(job_id)] == [("pending", 0)]

    second = add_done_job(store, config, sample_result("ef" * 32), "second.png")
    client.post(f"/jobs/{second}/save", data={"csrf_token": token, "page": "1", "line-1": "fixed"})
    client.post(f"/jobs/{second}/approve", data={"csrf_token": token, "page": "1"})
    assert [(d.state, d.revision) for d in store.deliveries.of_job(second)] == [("superseded", 0), ("pending", 1)]


def test_add_word_protects_it_from_spelling(setup: tuple[Config, Store, TestClient], registry: Registry) -> None:
    from hwdaemon.pipeline import Pipeline

    config, store, client = setup
    job_id = add_done_job(store, config, sample_result())
    pipeline = Pipeline.from_profile("default", config.profile("default"), config.models, registry)
    spelling = pipeline.postprocessors[0]
    doubtful = (Line("Dear Margarett", 0.2, ((0, 0), (1, 0), (1, 1), (0, 1))),)
    assert spelling.apply(doubtful)[0].text == "Dear Margaret"
    token = csrf_of(client, f"/jobs/{job_id}")
    assert client.post(f"/jobs/{job_id}/words", data={"word": "Margarett"}).status_code == 403
    assert client.post(f"/jobs/{job_id}/words", data={"csrf_token": token, "word": "two words"}).status_code == 400
    added = client.post(f"/jobs/{job_id}/words", data={"csrf_token": token, "word": "Margarett", "page": "1"})
    assert added.status_code == 303 and "added" in added.headers["location"]
    assert (config.state_dir.parent / "words.txt").read_text() == "Margarett\n"
    assert (
        "already"
        in client.post(f"/jobs/{job_id}/words", data={"csrf_token": token, "word": "margarett"}).headers["location"]
    )
    assert (
        "already"
        in client.post(f"/jobs/{job_id}/words", data={"csrf_token": token, "word": "legros"}).headers["location"]
    )  # listed
    assert (config.state_dir.parent / "words.txt").read_text() == "Margarett\n"
    assert spelling.apply(doubtful)[0].text == "Dear Margarett"


def test_token_is_required_by_bearer_or_login_cookie(tmp_path: Path, registry: Registry) -> None:
    config = make_config(tmp_path, registry, token=TOKEN)
    store = Store(config.state_dir)
    job_id = add_done_job(store, config, sample_result())
    client = TestClient(create_app(lambda: config), base_url="http://127.0.0.1:8765", follow_redirects=False)
    refused = client.get("/jobs")
    assert (
        refused.status_code == 401
        and refused.headers["www-authenticate"].startswith("Bearer")
        and 'name="token"' in refused.text
    )
    assert client.get(f"/jobs/{job_id}/pages/1.jpg").status_code == 401
    assert client.get("/jobs", headers={"Authorization": "Bearer wrong-token-of-enough-length"}).status_code == 401
    assert client.get("/jobs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200

    token = csrf_of(client, "/login")
    assert client.post("/login", data={"token": TOKEN}).status_code == 403
    assert client.post("/login", data={"csrf_token": token, "token": "nope"}).status_code == 401
    signed_in = client.post("/login", data={"csrf_token": token, "token": TOKEN, "next": "//evil.example/"})
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/jobs"
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and TOKEN not in cookie
    assert client.get("/jobs").status_code == 200


def test_serving_off_loopback_without_a_token_is_refused(
    tmp_path: Path, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HWDAEMON_UI_TOKEN", raising=False)
    config = make_config(tmp_path, registry, host="0.0.0.0")
    with pytest.raises(ConfigError, match="not loopback"):
        create_app(lambda: config)
    monkeypatch.setenv("HWDAEMON_UI_TOKEN", TOKEN)
    create_app(lambda: config)


def test_multi_page_documents_are_reviewed_page_by_page(setup: tuple[Config, Store, TestClient]) -> None:
    config, store, client = setup
    one = sample_result()
    second_page = PageResult(2, 400, 200, (Line("Yours sincerely,", 0.4, ((10, 10), (300, 10), (300, 50), (10, 50))),))
    result = Result(one.source, one.sha256, one.profile, (one.pages[0], second_page))
    job_id = add_done_job(store, config, result, preview=False)
    first = client.get(f"/jobs/{job_id}").text
    assert f'href="/jobs/{job_id}?page=2"' in first and "Dear Margaret," in first and "Yours sincerely," not in first
    page_two = client.get(f"/jobs/{job_id}", params={"page": 2}).text
    assert "Yours sincerely," in page_two and "Dear Margaret," not in page_two and 'name="page" value="2"' in page_two
    token = csrf_of(client, f"/jobs/{job_id}?page=2")
    saved = client.post(f"/jobs/{job_id}/save", data={"csrf_token": token, "page": "2", "line-0": "Yours truly,"})
    assert saved.headers["location"].startswith(f"/jobs/{job_id}?page=2")
    revised = store.jobs.result_of(job_id, 1)
    assert revised is not None and revised.pages[1].lines[0].text == "Yours truly," and revised.pages[0] == one.pages[0]


def test_review_actions_need_no_http(tmp_path: Path, registry: Registry) -> None:
    """The page's actions are plain functions over a store, for any caller (the API to come); refusals are ReviewErrors."""
    config = make_config(tmp_path, registry, review="required")
    store = Store(config.state_dir)
    job_id = add_done_job(store, config, sample_result(), preview=False)
    with pytest.raises(review.JobNotFoundError, match="no job 999"):
        review.save_revision(store, 999, 1, {0: "x"}, "Ada")
    assert review.save_revision(store, job_id, 1, {1: "the rose garden"}, "Ada") == 1
    assert review.save_revision(store, job_id, 1, {1: "the rose garden"}, "Ada") is None  # nothing changed
    approval = review.approve(store, config, job_id, "Ada")
    assert approval.revision == 1 and len(approval.queued_delivery_ids) == 1
    assert [(d.state, d.revision) for d in store.deliveries.of_job(job_id)] == [("superseded", 0), ("pending", 1)]
    assert review.approve(store, config, job_id, "Ada").queued_delivery_ids == ()  # already on its way
    added = review.add_word(store, config, job_id, " Margarett ")
    assert (added.word, added.is_new, added.words_file.path) == ("Margarett", True, tmp_path / "words.txt")
    assert not review.add_word(store, config, job_id, "margarett").is_new
    with pytest.raises(review.WordRefusedError, match="one word"):
        review.add_word(store, config, job_id, "two words")
    failed = store.jobs.add(str(tmp_path / "inbox" / "bad.png"), str(tmp_path / "inbox"), "default", "ef" * 32, 10, 1)
    store.jobs.fail(failed.id, "not an image")
    with pytest.raises(review.ReviewConflictError, match="only a read job can be approved"):
        review.approve(store, config, failed.id, "Ada")
    with pytest.raises(review.ReviewConflictError, match="no result to correct"):
        review.save_revision(store, failed.id, 1, {0: "x"}, "Ada")
