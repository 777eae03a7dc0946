"""The s3 sink against a real S3-compatible server: OpenStack Swift with s3api, on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from hwdaemon.export import to_json
from hwdaemon.plugin_api import Artifacts, Box, Line, PageResult, PermanentDeliveryError, Result, RetryableDeliveryError
from hwdaemon.plugins import build_registry
from hwdaemon_s3 import S3Options, S3Sink
from swift_server import ACCESS_KEY, REGION, SECRET_KEY, SwiftServer, missing_binaries

RESULT = Result(
    "inbox/lettre.png",
    "cd" * 32,
    "default",
    (PageResult(1, 100, 50, (Line("Chère Émilie", 0.7, Box(1, 2, 30, 10).polygon),)),),
)
ARTIFACTS = Artifacts(idempotency_key=f"{'cd' * 32}:archive", original_name="lettre.png")


@pytest.fixture(scope="module")
def swift(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwiftServer]:
    missing = missing_binaries()
    if missing:
        if __import__("os").environ.get("CI"):
            pytest.fail(f"Swift not installed ({missing}); scripts/setup --test installs it as root")
        pytest.skip(
            f"Swift not installed: {missing} (Debian: swift swift-proxy swift-account swift-container swift-object memcached)"
        )
    with SwiftServer(tmp_path_factory.mktemp("swift")) as server:
        client(server.endpoint).create_bucket(Bucket="scans")
        yield server


def client(endpoint: str, secret: str = SECRET_KEY):  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=secret, region_name=REGION,
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
    )  # fmt: skip


def make_sink(endpoint: str, secret: str = SECRET_KEY, **options: object) -> S3Sink:
    settings = {"bucket": "scans", "endpoint_url": endpoint, "region": REGION, "addressing_style": "path",
                "access_key_id": ACCESS_KEY, "secret_access_key": secret, "key_template": "{stem}-{sha8}.{ext}", **options}  # fmt: skip
    return S3Sink(S3Options(**settings), "archive")  # type: ignore[arg-type]


def test_registered_through_the_entry_point() -> None:
    assert build_registry().get("sink", "s3") is S3Sink


def test_object_is_written_and_reads_back_byte_identical(swift: SwiftServer) -> None:
    receipt = make_sink(swift.endpoint, formats=["json", "txt"]).deliver(RESULT, ARTIFACTS)
    assert receipt.location == "s3://scans/lettre-cdcdcdcd.json, s3://scans/lettre-cdcdcdcd.txt"
    stored = client(swift.endpoint).get_object(Bucket="scans", Key="lettre-cdcdcdcd.json")
    assert stored["Body"].read() == to_json(RESULT).encode("utf-8")
    assert stored["ContentType"] == "application/json"
    assert stored["Metadata"]["idempotency-key"] == ARTIFACTS.idempotency_key
    text = client(swift.endpoint).get_object(Bucket="scans", Key="lettre-cdcdcdcd.txt")["Body"].read().decode()
    assert text == "Chère Émilie\n"
    assert Result.from_dict(json.loads(to_json(RESULT))) == RESULT


def test_redelivery_overwrites_the_same_key(swift: SwiftServer) -> None:
    sink = make_sink(swift.endpoint, key_template="again/{sha256}.{ext}")
    sink.deliver(RESULT, ARTIFACTS)
    sink.deliver(RESULT, ARTIFACTS)
    listed = client(swift.endpoint).list_objects_v2(Bucket="scans", Prefix="again/")
    assert listed["KeyCount"] == 1


def test_wrong_secret_is_permanent_with_a_clear_message(swift: SwiftServer) -> None:
    with pytest.raises(
        PermanentDeliveryError, match=r"SignatureDoesNotMatch.*check access_key_id and secret_access_key"
    ):
        make_sink(swift.endpoint, secret="not-the-secret").deliver(RESULT, ARTIFACTS)


def test_missing_bucket_is_permanent(swift: SwiftServer) -> None:
    with pytest.raises(PermanentDeliveryError, match="NoSuchBucket"):
        make_sink(swift.endpoint, bucket="no-such-bucket").deliver(RESULT, ARTIFACTS)


def test_server_stopped_is_retryable_then_delivers_when_back(swift: SwiftServer) -> None:
    sink = make_sink(
        swift.endpoint, connect_timeout_seconds=1, read_timeout_seconds=2, key_template="outage/{stem}.{ext}"
    )
    swift.stop_proxy()
    try:
        with pytest.raises(RetryableDeliveryError, match="unreachable"):
            sink.deliver(RESULT, ARTIFACTS)
    finally:
        swift.start_proxy()
    assert sink.deliver(RESULT, ARTIFACTS).location == "s3://scans/outage/lettre.json"


def test_bad_key_template_is_a_config_error() -> None:
    with pytest.raises(ValueError, match=r"bad template .*fields are stem, ext, date, sha8, sha256"):
        S3Options(bucket="scans", key_template="{name}.{ext}")


def test_readme_documents_every_option() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert all(f"{name}:" in readme for name in S3Options.model_fields)
