"""A third-party sink in 25 lines: append every result to a JSON Lines file."""

import fcntl
import json
import os
from pathlib import Path

from hwdaemon.plugin_api import DeliveryReceipt, RetryableDeliveryError, Sink, SinkOptions, hookimpl


class JsonlOptions(SinkOptions):
    path: Path


class JsonlSink(Sink[JsonlOptions]):
    name = "jsonl"
    Options = JsonlOptions

    def deliver(self, result, artifacts):
        line = json.dumps({"key": artifacts.idempotency_key, "text": result.text}, ensure_ascii=False)
        try:
            with open(self.options.path, "a", encoding="utf-8") as stream:
                fcntl.flock(stream, fcntl.LOCK_EX)
                stream.write(line + "\n")
                stream.flush()
                os.fsync(stream.fileno())
        except OSError as exc:
            raise RetryableDeliveryError(f"cannot append to {self.options.path}: {exc}") from exc
        return DeliveryReceipt(location=str(self.options.path))


@hookimpl
def hwdaemon_register_sinks():
    return [JsonlSink]
