"""The `s3` sink: each result becomes objects in a bucket of any S3-compatible store.

One object per configured format, at a key made from `key_template`. The key
is fixed per document, so a retried delivery overwrites its own object:
at-least-once delivery leaves exactly one copy. botocore's own retries are off;
the daemon's durable delivery retries with backoff instead.
"""

from __future__ import annotations

from typing import Any, Literal, cast

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError, NoCredentialsError
from pydantic import Field, SecretStr, field_validator

from hwdaemon.plugin_api import (
    BINARY_FORMATS,
    NAME_FIELDS,
    Artifacts,
    DeliveryReceipt,
    Format,
    PermanentDeliveryError,
    Result,
    RetryableDeliveryError,
    Sink,
    SinkOptions,
    check_name_template,
    extension,
    files_of,
    hookimpl,
    output_name,
    render,
    render_bytes,
    with_part,
)

CONTENT_TYPES: dict[str, str] = {
    "txt": "text/plain; charset=utf-8",
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "alto": "application/xml",  # ALTO has no registered media type of its own
    "page": "application/vnd.prima.page+xml",  # the media type PRImA proposes for PAGE
    "pdf": "application/pdf",
    "hocr": "application/xhtml+xml",
}
# Errors that retrying cannot fix without a change of configuration.
PERMANENT_CODES = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "NoSuchBucket",
        "InvalidBucketName",
        "AuthorizationHeaderMalformed",
        "InvalidArgument",
        "KMS.NotFoundException",
    }
)


class S3Options(SinkOptions):
    bucket: str = Field(min_length=3)
    endpoint_url: str | None = Field(default=None, description="for MinIO, Swift, Ceph…; None means AWS")
    region: str = "us-east-1"
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    key_template: str = Field(default="{date}/{stem}-{sha8}.{ext}", description=f"fields: {NAME_FIELDS}")
    formats: list[Format] = Field(default_factory=lambda: cast(list[Format], ["json"]), min_length=1)
    access_key_id: str | None = Field(default=None, description="else boto3's chain: env, ~/.aws, instance role")
    secret_access_key: SecretStr | None = None
    profile: str | None = Field(default=None, description="a named profile from ~/.aws/credentials")
    server_side_encryption: Literal["AES256", "aws:kms"] | None = None
    kms_key_id: str | None = None
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    read_timeout_seconds: float = Field(default=60.0, gt=0)

    @field_validator("key_template")
    @classmethod
    def _template_fields(cls, value: str) -> str:
        return check_name_template(value)


class S3Sink(Sink[S3Options]):
    name = "s3"
    Options = S3Options

    def __init__(self, options: S3Options, instance_name: str) -> None:
        super().__init__(options, instance_name)
        session = boto3.session.Session(profile_name=options.profile) if options.profile else boto3.session.Session()
        secret = options.secret_access_key.get_secret_value() if options.secret_access_key else None
        self._client = session.client(
            "s3",
            endpoint_url=options.endpoint_url,
            region_name=options.region,
            aws_access_key_id=options.access_key_id,
            aws_secret_access_key=secret,
            config=BotoConfig(
                signature_version="s3v4",
                s3={"addressing_style": options.addressing_style},
                retries={"max_attempts": 1, "mode": "standard"},
                connect_timeout=options.connect_timeout_seconds,
                read_timeout=options.read_timeout_seconds,
            ),
        )

    def deliver(self, result: Result, artifacts: Artifacts) -> DeliveryReceipt:
        options = self.options
        keys = []
        files = [(format, part, document) for format in options.formats for part, document in files_of(result, format)]
        for format, part, document in files:
            key = with_part(output_name(options.key_template, result, artifacts, extension(format)), part)
            extra: dict[str, Any] = {}
            if options.server_side_encryption:
                extra["ServerSideEncryption"] = options.server_side_encryption
                if options.kms_key_id:
                    extra["SSEKMSKeyId"] = options.kms_key_id
            try:
                self._client.put_object(
                    Bucket=options.bucket,
                    Key=key,
                    Body=_body(document, format, artifacts),
                    ContentType=CONTENT_TYPES[format],
                    Metadata={
                        "idempotency-key": artifacts.idempotency_key,
                        "source-name": artifacts.original_name.encode("ascii", "replace").decode(),
                    },
                    **extra,
                )
            except ClientError as exc:
                raise _classify(exc, options.bucket, key) from exc
            except NoCredentialsError as exc:
                raise PermanentDeliveryError(
                    "no S3 credentials: set access_key_id/secret_access_key, a profile, or AWS_* variables"
                ) from exc
            except (ConnectionError, HTTPClientError, BotoCoreError) as exc:
                raise RetryableDeliveryError(f"S3 {options.endpoint_url or 'AWS'} unreachable: {exc}") from exc
            keys.append(f"s3://{options.bucket}/{key}")
        return DeliveryReceipt(location=", ".join(keys))

    def close(self) -> None:
        self._client.close()


def _classify(exc: ClientError, bucket: str, key: str) -> Exception:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    message = f"S3 put s3://{bucket}/{key} failed: {code} ({status}): {error.get('Message', '')}"
    if code in ("SignatureDoesNotMatch", "InvalidAccessKeyId"):
        return PermanentDeliveryError(message + "; check access_key_id and secret_access_key")
    if code in PERMANENT_CODES or (400 <= status < 500 and status not in (408, 429)):
        return PermanentDeliveryError(message)
    retry_after = 1.0 if code == "SlowDown" else None
    return RetryableDeliveryError(message, retry_after_seconds=retry_after)


@hookimpl
def hwdaemon_register_sinks() -> list[type[Sink[Any]]]:
    return [S3Sink]


def _body(result: Result, format: Format, artifacts: Artifacts) -> bytes:
    """The object's bytes: text formats as UTF-8; the pdf made over the original scan (which must still be there)."""
    if format not in BINARY_FORMATS:
        return render(result, format).encode("utf-8")
    if artifacts.original_path is None:
        raise RetryableDeliveryError(
            f"the {format} format is made from the original scan, and {artifacts.original_name} is not there"
        )
    return render_bytes(result, format, "formfeed", artifacts.original_path)
