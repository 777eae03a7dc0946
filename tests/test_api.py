"""The HTTP API end to end: a real `hwdaemon run` serving it (ui.enabled), real uploads, real reading.

One daemon for the module (its models load once); the test that reloads its
config runs last. An upload must be read, delivered, filed and refused
exactly as the same file dropped in the inbox would be.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from pytest_httpserver import HTTPServer
from standardwebhooks.webhooks import Webhook
from werkzeug import Request, Response

from api_harness import ADMIN, CALLBACK_SECRET, READ, SUBMIT, api_settings, files_under
from conftest import DEV_DATA
from daemon_harness import Daemon, wait_for, write_config
from rendering import render_lines, save
from test_inputs import _png_claiming_size

pytestmark = pytest.mark.slow

PAGE = DEV_DATA / "iam" / "a01-000u_paragraph.jpg"


class Running:
    def __init__(self, folder: Path, daemon: Daemon, url: str) -> None:
        self.folder = folder
        self.daemon = daemon
        self.url = url

    def post(self, token: str = SUBMIT, **kwargs: Any) -> requests.Response:
        return requests.post(
            self.url + "/api/v1/documents", headers={"Authorization": f"Bearer {token}"}, timeout=30, **kwargs
        )

    def post_as(self, token: str, path: str) -> requests.Response:
        return requests.post(self.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def get(self, path: str, token: str = READ, **kwargs: Any) -> requests.Response:
        return requests.get(self.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=200, **kwargs)

    def ended(self, job_id: int) -> dict[str, Any]:
        document: dict[str, Any] = self.get(f"/api/v1/documents/{job_id}", params={"wait": "120"}).json()
        assert document["state"] in ("done", "failed"), document
        return document


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("api")
    config = write_config(
        folder,
        ui={"enabled": True, "port": 0},
        api=api_settings(callback_secret=CALLBACK_SECRET, callback_allowed_hosts=["localhost", "127.0.0.1"]),
        delivery={"backoff_base_seconds": 0.2, "backoff_max_seconds": 0.5},
        inboxes=[
            {"path": str(folder / "inbox"), "settle_seconds": 0.5, "sinks": ["outbox"]},
            {"path": str(folder / "held"), "settle_seconds": 0.5, "sinks": ["outbox"], "review": "required"},
        ],
    )
    daemon = Daemon(config).start()
    url = next(event["url"] for event in daemon.events() if event.get("event") == "ui_listening")
    yield Running(folder, daemon, url)
    daemon.stop()


def test_uploaded_page_is_read_delivered_and_filed_as_process_reads_it(running: Running) -> None:
    if not PAGE.exists():
        pytest.skip(f"the dev page {PAGE} is absent (../shared/data)")
    sent = running.post(files={"file": (PAGE.name, PAGE.read_bytes())}, data={"formats": "txt,json"})
    assert sent.status_code == 202, sent.text
    job_id = sent.json()["id"]
    assert set(sent.json()["links"]["results"]) == {"txt", "json"}
    document = running.ended(job_id)
    assert document["state"] == "done" and document["pages"][0]["lines"] > 3
    assert set(document["timings"]) >= {"detect", "recognize"}

    text = running.get(f"/api/v1/documents/{job_id}/result.txt")
    assert text.headers["content-type"].startswith("text/plain")
    result = running.get(f"/api/v1/documents/{job_id}/result.json").json()
    processed = subprocess.run(
        [sys.executable, "-m", "hwdaemon", "process", str(PAGE)], capture_output=True, text=True, check=True
    )
    assert text.text == processed.stdout  # the daemon read the upload exactly as `process` reads the file
    assert "\n".join(line["text"] for page in result["pages"] for line in page["lines"]) + "\n" == text.text

    again = running.post(files={"file": ("copy.jpg", PAGE.read_bytes())})
    assert again.status_code == 200 and again.json()["id"] == job_id  # same bytes: the same job

    wait_for(lambda: (running.folder / "outbox" / f"{PAGE.stem}.txt").exists(), timeout=30, what="the outbox copy")
    assert (running.folder / "outbox" / f"{PAGE.stem}.txt").read_text() == text.text
    delivered = running.get(f"/api/v1/documents/{job_id}").json()["deliveries"]
    assert [(d["sink"], d["state"]) for d in delivered] == [("outbox", "delivered")]
    assert files_under(running.folder / "state" / "uploads") == [f"processed/{PAGE.name}"]  # the inbox's after: move


def test_submit_command_waits_and_saves_the_result(running: Running, tmp_path: Path) -> None:
    note = save(render_lines(["Send the parcel on Monday"]), tmp_path / "parcel.png")
    environment = {**os.environ, "HWDAEMON_API_TOKEN": SUBMIT, "HWDAEMON_URL": running.url}
    command = [sys.executable, "-m", "hwdaemon", "submit", str(note)]
    done = subprocess.run(
        [*command, "--wait", "--format", "json", "--output", str(tmp_path / "out")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "out" / "parcel.json").read_text())
    assert result["pages"][0]["lines"]

    refused = subprocess.run(
        command,
        env={**environment, "HWDAEMON_API_TOKEN": "no-such-token-123456"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 77 and "Bearer" in refused.stderr
    unreachable = subprocess.run(
        command, env={**environment, "HWDAEMON_URL": "http://127.0.0.1:9"}, capture_output=True, text=True, timeout=60
    )
    assert unreachable.returncode == 69 and "cannot reach" in unreachable.stderr
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    failed = subprocess.run(
        [*command[:-1], str(tmp_path / "bad.png"), "--wait"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 1 and "bad.png" in failed.stderr


def test_submit_reports_a_file_it_cannot_open_and_sends_the_others(running: Running, tmp_path: Path) -> None:
    note = save(render_lines(["Water the ferns on Friday"]), tmp_path / "ferns.png")
    missing = tmp_path / "missing.jpg"
    sent = subprocess.run(
        [sys.executable, "-m", "hwdaemon", "submit", str(missing), str(tmp_path), "--json"],
        env={**os.environ, "HWDAEMON_API_TOKEN": SUBMIT, "HWDAEMON_URL": running.url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert sent.returncode == 1, sent.stderr
    assert f"{missing}: cannot open: No such file or directory" in sent.stderr and "Traceback" not in sent.stderr
    outcomes = {Path(outcome["path"]).name: outcome for outcome in json.loads(sent.stdout)["files"]}
    assert not outcomes["missing.jpg"]["ok"] and outcomes["missing.jpg"]["job"] is None
    assert outcomes[note.name]["ok"] and running.ended(outcomes[note.name]["job"])["state"] == "done"


def test_hostile_uploads_get_the_records_dropped_files_get(running: Running, tmp_path: Path) -> None:
    whole = save(render_lines(["cut short"]), tmp_path / "whole.png").read_bytes()
    cases = {
        "empty.png": b"",
        "letter.jpg": b"Dear Sir, this is a text file",
        "truncated.png": whole[: len(whole) // 3],
        "bomb.png": _png_claiming_size(tmp_path / "bomb.png", 40_000, 40_000).read_bytes(),
    }
    inbox, failed_uploads = running.folder / "inbox", running.folder / "state" / "uploads" / "failed"
    for name, content in cases.items():
        (inbox / name).write_bytes(content)
    for name in cases:
        wait_for(lambda name=name: (inbox / "failed" / f"{name}.error.json").exists(), what=f"{name} failed")
    sent = {name: running.post(data=content, params={"filename": name}) for name, content in cases.items()}
    for name, answer in sent.items():
        assert answer.status_code == 202, (name, answer.text)  # failed jobs do not count as known bytes
        document = running.ended(answer.json()["id"])
        dropped = json.loads((inbox / "failed" / f"{name}.error.json").read_text())
        uploaded = json.loads((failed_uploads / f"{name}.error.json").read_text())
        assert document["state"] == "failed" and document["error"] == uploaded["error"] == dropped["error"], name
        assert uploaded["job_id"] == answer.json()["id"] and (failed_uploads / name).read_bytes() == cases[name]

    job_id = sent["letter.jpg"].json()["id"]
    retried = running.post_as(ADMIN, f"/api/v1/documents/{job_id}/retry")
    assert retried.status_code == 202, retried.text
    again = running.ended(retried.json()["job"]["id"])
    assert again["state"] == "failed" and again["id"] != job_id and again["file"] == "letter.jpg"
    assert running.post_as(ADMIN, f"/api/v1/documents/{job_id}/retry").status_code == 409  # its file moved on

    forgotten = requests.delete(
        f"{running.url}/api/v1/documents/{again['id']}", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30
    )
    assert forgotten.status_code == 204
    assert running.get(f"/api/v1/documents/{again['id']}").status_code == 404
    assert not (failed_uploads / "letter.jpg").exists() and not (failed_uploads / "letter.jpg.error.json").exists()
    assert (inbox / "failed" / "letter.jpg").exists()  # an inbox's files are never the API's to remove


def test_upload_to_a_reviewed_inbox_waits_for_approval(running: Running, tmp_path: Path) -> None:
    note = save(render_lines(["Hold this until approved"]), tmp_path / "held.png")
    inbox = str(running.folder / "held")
    sent = running.post(files={"file": ("held.png", note.read_bytes())}, data={"inbox": inbox})
    assert sent.status_code == 202, sent.text
    document = running.ended(sent.json()["id"])
    assert document["inbox"] == inbox and [d["state"] for d in document["deliveries"]] == ["held"]
    assert running.post_as(SUBMIT, f"/api/v1/documents/{document['id']}/approve").status_code == 403
    approved = running.post_as(ADMIN, f"/api/v1/documents/{document['id']}/approve")
    assert approved.status_code == 200 and approved.json()["revision"] == 0
    wait_for(lambda: (running.folder / "outbox" / "held.txt").exists(), timeout=30, what="the approved delivery")
    reviewed = running.get(f"/api/v1/documents/{document['id']}").json()
    assert reviewed["revision"]["approved"] == 0 and reviewed["revision"]["reviewed_by"] == "operator"


def test_callback_gets_the_result_signed_and_retried(running: Running, httpserver: HTTPServer, tmp_path: Path) -> None:
    received: list[Request] = []

    def receiver(request: Request) -> Response:
        received.append(request)
        return Response("busy", status=503) if len(received) == 1 else Response("ok", status=200)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(receiver)
    note = save(render_lines(["Call me back"]), tmp_path / "call.png")
    sent = running.post(
        data=note.read_bytes(), params={"filename": "call.png", "callback_url": httpserver.url_for("/hook")}
    )
    assert sent.status_code == 202, sent.text
    running.ended(sent.json()["id"])
    wait_for(lambda: len(received) == 2, timeout=60, what="the callback, retried once")
    body = received[1].get_data()
    headers = {key.lower(): value for key, value in received[1].headers.items()}
    Webhook(CALLBACK_SECRET).verify(body, headers)  # raises unless signed with api.callback_secret
    assert json.loads(body)["original_name"] == "call.png"
    assert received[0].headers["webhook-id"] == received[1].headers["webhook-id"]  # the same delivery, retried
    document = running.get(f"/api/v1/documents/{sent.json()['id']}").json()
    assert ("api-callback", "delivered") in [(d["sink"], d["state"]) for d in document["deliveries"]]

    far = running.post(
        data=note.read_bytes() + b"x", params={"filename": "x.png", "callback_url": "http://10.1.2.3/hook"}
    )
    assert far.status_code == 400 and "callback_allowed_hosts" in far.json()["error"]


GENERATOR = Path(__file__).resolve().parents[1] / ".venv" / "openapi-client"
CLIENT_SCRIPT = """
import sys
from hwdaemon_client import AuthenticatedClient
from hwdaemon_client.api.default import get_document, get_result, submit_document
from hwdaemon_client.models import GetResultFormat, SubmitDocumentFilesBody
from hwdaemon_client.types import File

url, token, path = sys.argv[1:]
client = AuthenticatedClient(base_url=url, token=token)
with open(path, "rb") as stream:
    sent = submit_document.sync(client=client, body=SubmitDocumentFilesBody(file=File(payload=stream, file_name="generated.png")))
document = get_document.sync(sent.id, client=client, wait=120)
text = get_result.sync_detailed(document.id, GetResultFormat.TXT, client=client)
print(document.state, text.status_code, text.content.decode().strip(), sep="|")
"""


def test_a_client_generated_from_the_openapi_document_submits_and_fetches(running: Running, tmp_path: Path) -> None:
    if not (GENERATOR / "openapi_python_client").is_dir():
        pytest.skip("openapi-python-client is not in .venv/openapi-client (scripts/setup --test installs it)")
    spec = tmp_path / "openapi.json"
    spec.write_text(running.get("/api/v1/openapi.json").text)
    environment = {
        **os.environ,
        "PYTHONPATH": str(GENERATOR),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(spec),
            "--output-path",
            str(tmp_path / "client"),
        ],
        env=environment,
        check=True,
        capture_output=True,
        timeout=120,
    )
    note = save(render_lines(["Generated clients work"]), tmp_path / "generated.png")
    environment["PYTHONPATH"] = f"{GENERATOR}:{tmp_path / 'client'}"
    outcome = subprocess.run(
        [sys.executable, "-c", CLIENT_SCRIPT, running.url, SUBMIT, str(note)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert outcome.returncode == 0, outcome.stderr
    state, status, text = outcome.stdout.strip().split("|", 2)
    assert (state, status) == ("done", "200") and text


def test_token_removed_by_a_reload_is_refused_at_once(running: Running) -> None:
    assert running.get("/api/v1/documents", token=READ).status_code == 200
    config_path = running.folder / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["api"]["tokens"] = [token for token in config["api"]["tokens"] if token["token"] != READ]
    config_path.write_text(yaml.safe_dump(config))
    reloads = running.daemon.count("config_reloaded")
    running.daemon.signal(signal.SIGHUP)
    running.daemon.wait_event("config_reloaded", count=reloads + 1)
    assert running.get("/api/v1/documents", token=READ).status_code == 401
    assert running.get("/api/v1/documents", token=SUBMIT).status_code == 200
