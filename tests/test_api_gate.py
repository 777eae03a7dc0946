"""The API's gate and its uploads against a hostile client, over real HTTP to the real server (uvicorn on 127.0.0.1).

No daemon here: an upload becomes a queued job in the store whether or not a
daemon is running to read it, and that is what these tests look at — who is
let in, what is kept, and that nothing half-sent or too large ever is.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from openapi_spec_validator import validate

from api_harness import (
    ADMIN,
    READ,
    SUBMIT,
    api_config,
    files_under,
    jobs_of,
    raw_request,
    serving,
    tiny_png,
)
from daemon_harness import wait_for
from hwdaemon.config import Config
from hwdaemon.plugins import Registry


@pytest.fixture
def config(tmp_path: Path, registry: Registry) -> Config:
    return api_config(tmp_path, registry)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_every_route_needs_a_token_even_on_loopback(config: Config) -> None:
    with serving(config) as url:
        for method, path in (
            ("GET", "/api/v1/documents"),
            ("GET", "/api/v1/documents/1"),
            ("GET", "/api/v1/documents/1/result.txt"),
            ("POST", "/api/v1/documents"),
            ("DELETE", "/api/v1/documents/1"),
            ("GET", "/api/v1/openapi.json"),
        ):
            for headers in ({}, bearer("not-a-token-of-ours-at-all"), {"Authorization": SUBMIT}):
                answer = requests.request(method, url + path, headers=headers, timeout=10)
                assert answer.status_code == 401, (method, path, headers)
                assert answer.json()["error"].startswith("send Authorization: Bearer")
                assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert jobs_of(config.state_dir) == []


def test_a_token_without_the_scope_is_forbidden(config: Config) -> None:
    with serving(config) as url:
        refused = requests.post(url + "/api/v1/documents", data=tiny_png(1), headers=bearer(READ), timeout=10)
        assert refused.status_code == 403 and "submit" in refused.json()["error"]
        sent = requests.post(
            url + "/api/v1/documents?filename=a.png", data=tiny_png(1), headers=bearer(SUBMIT), timeout=10
        )
        assert sent.status_code == 202
        job_id = sent.json()["id"]
        assert (
            requests.delete(f"{url}/api/v1/documents/{job_id}", headers=bearer(SUBMIT), timeout=10).status_code == 403
        )
        assert requests.get(f"{url}/api/v1/documents/{job_id}", headers=bearer(READ), timeout=10).status_code == 200
        assert requests.delete(f"{url}/api/v1/documents/{job_id}", headers=bearer(ADMIN), timeout=10).status_code == 204
        assert requests.get(f"{url}/api/v1/documents/{job_id}", headers=bearer(READ), timeout=10).status_code == 404
        assert files_under(config.state_dir / "uploads") == []  # forgetting removed our copy of the upload


def test_each_token_has_its_own_rate_limit(tmp_path: Path, registry: Registry) -> None:
    config = api_config(tmp_path, registry, rate_limit_per_minute=3)
    with serving(config) as url:
        answers = [requests.get(url + "/api/v1/documents", headers=bearer(READ), timeout=10) for _ in range(4)]
        assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
        assert 1 <= int(answers[-1].headers["Retry-After"]) <= 61
        assert requests.get(url + "/api/v1/documents", headers=bearer(SUBMIT), timeout=10).status_code == 200


def test_the_same_bytes_answer_with_the_existing_job_unless_reprocess(config: Config) -> None:
    with serving(config) as url:
        first = requests.post(
            url + "/api/v1/documents", files={"file": ("a.png", tiny_png(7))}, headers=bearer(SUBMIT), timeout=10
        )
        again = requests.post(
            url + "/api/v1/documents?filename=b.png", data=tiny_png(7), headers=bearer(SUBMIT), timeout=10
        )
        forced = requests.post(
            url + "/api/v1/documents?filename=c.png&reprocess=true",
            data=tiny_png(7),
            headers=bearer(SUBMIT),
            timeout=10,
        )
    assert first.status_code == 202 and first.json()["state"] == "queued" and first.json()["file"] == "a.png"
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert again.json()["duplicate_of"] == first.json()["id"]
    assert forced.status_code == 202 and forced.json()["id"] != first.json()["id"]
    assert first.headers["Location"] == f"/api/v1/documents/{first.json()['id']}"
    assert sorted(files_under(config.state_dir / "uploads")) == ["a.png", "c.png"]


def test_announced_oversize_upload_is_refused_before_a_byte_is_read(tmp_path: Path, registry: Registry) -> None:
    config = api_config(tmp_path, registry, max_upload_bytes=100_000)
    with serving(config) as url:
        head = (
            b"POST /api/v1/documents?filename=big.png HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Authorization: Bearer {SUBMIT}\r\nContent-Length: 5000000000\r\nConnection: close\r\n\r\n".encode()
        )
        answer = raw_request(url, head)  # no body is sent at all: the answer must not wait for it
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"api.max_upload_bytes" in answer
    assert jobs_of(config.state_dir) == [] and files_under(config.state_dir / "uploads") == []


def test_chunked_oversize_upload_is_cut_off_and_nothing_kept(tmp_path: Path, registry: Registry) -> None:
    config = api_config(tmp_path, registry, max_upload_bytes=100_000)

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(50):
            yield b"\0" * 10_000

    with serving(config) as url:
        for upload in (
            {"data": chunks()},
            {"files": {"file": ("big.png", b"\x89PNG" + b"\0" * 200_000)}},
        ):
            answer = requests.post(
                url + "/api/v1/documents?filename=big.png", headers=bearer(SUBMIT), timeout=10, **upload
            )  # type: ignore[arg-type]
            assert answer.status_code == 413, answer.text
    assert jobs_of(config.state_dir) == [] and files_under(config.state_dir / "uploads") == []


def test_upload_cut_off_half_way_leaves_no_job_and_no_file(config: Config) -> None:
    body = tiny_png(3) * 1000
    with serving(config) as url:
        for content_type in (b"application/octet-stream", b"multipart/form-data; boundary=xyz"):
            head = (
                b"POST /api/v1/documents?filename=half.png HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                + f"Authorization: Bearer {SUBMIT}\r\nContent-Length: {len(body)}\r\n".encode()
                + b"Content-Type: "
                + content_type
                + b"\r\n\r\n"
            )
            prefix = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="half.png"\r\n\r\n'
            raw_request(
                url, head, (prefix if b"multipart" in content_type else b"") + body[: len(body) // 2], close_early=True
            )
        # the server notices the client has gone once it reads on: ask until both spool files are gone
        wait_for(lambda: files_under(config.state_dir / "uploads") == [], timeout=10, what="spool files removed")
        complete = requests.post(
            url + "/api/v1/documents?filename=whole.png", data=body, headers=bearer(SUBMIT), timeout=10
        )
    assert complete.status_code == 202
    assert [Path(path).name for _, path, _, _ in jobs_of(config.state_dir)] == ["whole.png"]


def test_malformed_requests_get_a_reason_and_keep_nothing(config: Config) -> None:
    with serving(config) as url:
        cases = {
            "no file part": requests.post(
                url + "/api/v1/documents", files={"other": ("a.png", b"x")}, headers=bearer(SUBMIT), timeout=10
            ),
            "unknown format": requests.post(
                url + "/api/v1/documents?formats=docx", data=b"x", headers=bearer(SUBMIT), timeout=10
            ),
            "unknown inbox": requests.post(
                url + "/api/v1/documents?inbox=/etc", data=b"x", headers=bearer(SUBMIT), timeout=10
            ),
            "unknown profile": requests.post(
                url + "/api/v1/documents",
                files={"file": ("a.png", b"x")},
                data={"profile": "nope"},
                headers=bearer(SUBMIT),
                timeout=10,
            ),
            "unknown parameter": requests.get(url + "/api/v1/documents?stat=done", headers=bearer(READ), timeout=10),
            "callbacks off": requests.post(
                url + "/api/v1/documents?callback_url=http://10.0.0.1/", data=b"x", headers=bearer(SUBMIT), timeout=10
            ),
            "bad cursor": requests.get(url + "/api/v1/documents?cursor=abc", headers=bearer(READ), timeout=10),
        }
    for case, answer in cases.items():
        assert answer.status_code == 400, (case, answer.text)
        assert answer.json()["error"], case
    assert jobs_of(config.state_dir) == [] and files_under(config.state_dir / "uploads") == []


def test_client_file_names_cannot_escape_the_uploads_folder(config: Config) -> None:
    names = ["../../../etc/passwd.png", "C:\\scans\\letter.png", "....", "\x00\x1b[31mred.png", "a" * 400 + ".png"]
    with serving(config) as url:
        for number, name in enumerate(names):
            answer = requests.post(
                url + "/api/v1/documents",
                files={"file": (name, tiny_png(100 + number))},
                headers=bearer(SUBMIT),
                timeout=10,
            )
            assert answer.status_code == 202, answer.text
    uploads = config.state_dir / "uploads"
    placed = files_under(uploads)
    assert len(placed) == len(names) and all("/" not in name for name in placed)
    assert "passwd.png" in placed and "letter.png" in placed and "upload" in placed
    assert all(len(name.encode()) <= 255 for name in placed)


def test_list_pages_with_a_cursor_and_filters(config: Config) -> None:
    with serving(config) as url:
        for number in range(5):
            requests.post(
                f"{url}/api/v1/documents?filename=n{number}.png",
                data=tiny_png(number),
                headers=bearer(SUBMIT),
                timeout=10,
            )
        seen: list[int] = []
        cursor = None
        while True:
            params = {"limit": "2", "state": "queued", **({"cursor": cursor} if cursor else {})}
            page = requests.get(url + "/api/v1/documents", params=params, headers=bearer(READ), timeout=10).json()
            seen += [document["id"] for document in page["documents"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        none_done = requests.get(url + "/api/v1/documents?state=done", headers=bearer(READ), timeout=10).json()
    assert seen == [5, 4, 3, 2, 1]
    assert none_done == {"documents": [], "next_cursor": None}


def test_openapi_document_validates_and_lists_every_route_and_format(config: Config) -> None:
    with serving(config) as url:
        document = requests.get(url + "/api/v1/openapi.json", headers=bearer(READ), timeout=10).json()
    validate(document)  # OpenAPI 3.1, by openapi-spec-validator
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {
        "/api/v1/documents",
        "/api/v1/documents/{id}",
        "/api/v1/documents/{id}/result.{format}",
        "/api/v1/documents/{id}/retry",
        "/api/v1/documents/{id}/approve",
        "/api/v1/openapi.json",
    }
    format_parameter = next(
        parameter
        for parameter in document["paths"]["/api/v1/documents/{id}/result.{format}"]["get"]["parameters"]
        if parameter["name"] == "format"
    )
    from hwdaemon.export import FORMATS

    assert format_parameter["schema"]["enum"] == list(FORMATS)
    assert "Document" in document["components"]["schemas"]


def test_a_thousand_uploads_from_eight_clients_become_a_thousand_jobs(tmp_path: Path, registry: Registry) -> None:
    config = api_config(tmp_path, registry, rate_limit_per_minute=100_000)
    count, clients = 1000, 8
    with serving(config) as url:

        def send(number: int) -> tuple[int, int]:
            with requests.Session() as session:
                answer = session.post(
                    f"{url}/api/v1/documents?filename=note{number}.png",
                    data=tiny_png(number),
                    headers=bearer(SUBMIT),
                    timeout=30,
                )
            return answer.status_code, answer.json()["id"]

        with ThreadPoolExecutor(clients) as pool:
            answers = list(pool.map(send, range(count)))
    assert {status for status, _ in answers} == {202}
    ids = [job_id for _, job_id in answers]
    assert len(set(ids)) == count
    jobs = jobs_of(config.state_dir)
    assert len(jobs) == count and {job_id for job_id, *_ in jobs} == set(ids)
    assert len({sha for *_, sha in jobs}) == count and all(state == "queued" for _, _, state, _ in jobs)
    assert len(files_under(config.state_dir / "uploads")) == count


def test_tokens_never_reach_the_logs(config: Config) -> None:
    import io

    import structlog

    from hwdaemon.logging import configure_logging

    logged = io.StringIO()
    configure_logging("debug", "json", stream=logged)
    try:
        with serving(config) as url:
            requests.post(
                url + "/api/v1/documents?filename=a.png", data=tiny_png(9), headers=bearer(SUBMIT), timeout=10
            )
            requests.get(url + "/api/v1/documents", headers=bearer("wrong-token-0123456789"), timeout=10)
    finally:
        structlog.reset_defaults()
    text = logged.getvalue()
    assert "upload_accepted" in text and '"token": "scanner"' in text
    for secret in (SUBMIT, "wrong-token-0123456789"):
        assert secret not in text


def test_ids_and_numbers_past_any_job_are_not_found_not_errors(config: Config) -> None:
    with serving(config) as url:
        answers = {
            "huge id": requests.get(f"{url}/api/v1/documents/{10**30}", headers=bearer(READ), timeout=10),
            "huge id result": requests.get(
                f"{url}/api/v1/documents/{2**63}/result.txt", headers=bearer(READ), timeout=10
            ),
            "unknown format": requests.get(f"{url}/api/v1/documents/1/result.docx", headers=bearer(READ), timeout=10),
            "nan wait": requests.get(f"{url}/api/v1/documents/1?wait=nan", headers=bearer(READ), timeout=10),
            "huge revision": requests.get(
                f"{url}/api/v1/documents/1/result.txt?revision={10**30}", headers=bearer(READ), timeout=10
            ),
            "huge cursor": requests.get(
                f"{url}/api/v1/documents?cursor=YmVmb3JlOjk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5",
                headers=bearer(READ),
                timeout=10,
            ),
        }
    assert {case: answer.status_code for case, answer in answers.items()} == {
        "huge id": 404,
        "huge id result": 404,
        "unknown format": 404,
        "nan wait": 400,
        "huge revision": 400,
        "huge cursor": 400,
    }


def test_bytes_outside_the_file_part_count_against_the_limit(tmp_path: Path, registry: Registry) -> None:
    config = api_config(tmp_path, registry, max_upload_bytes=100_000)

    def endless_epilogue():  # type: ignore[no-untyped-def]
        yield (
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
            + tiny_png(1)
            + b"\r\n--b--\r\n"
        )
        for _ in range(100):
            yield b"x" * 10_000  # after the closing boundary: bytes a parser skips, never part of the file

    with serving(config) as url:
        answer = requests.post(
            url + "/api/v1/documents",
            data=endless_epilogue(),
            headers={**bearer(SUBMIT), "Content-Type": "multipart/form-data; boundary=b"},
            timeout=10,
        )
    assert answer.status_code == 413
    assert jobs_of(config.state_dir) == [] and files_under(config.state_dir / "uploads") == []
