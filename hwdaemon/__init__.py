"""hwdaemon: handwritten scans in an inbox folder become text delivered to sinks.

Importing the package does nothing and loads nothing: the plugin API's names
(`from hwdaemon import Sink, hookimpl`) are the names of `hwdaemon.plugin_api`,
imported on first use.
"""

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing; type checkers read it as True
if TYPE_CHECKING:
    from hwdaemon.plugin_api import *  # noqa: F403

__version__ = "0.1.0"

# hwdaemon.plugin_api.__all__, spelled out so that a submodule import (`from hwdaemon import config`) never loads the plugin API;
# tests/test_plugin_api.py keeps the two lists equal.
PLUGIN_API_NAMES = frozenset(
    {
        "NAME_FIELDS",
        "BINARY_FORMATS",
        "Artifacts",
        "Box",
        "DeliveryReceipt",
        "Detector",
        "FailedJob",
        "Format",
        "Image",
        "Line",
        "ModelMissingError",
        "NoOptions",
        "PageResult",
        "PageSeparator",
        "PermanentDeliveryError",
        "Piece",
        "PieceContext",
        "PieceOptions",
        "Point",
        "Postprocessor",
        "Recognizer",
        "Result",
        "RetryableDeliveryError",
        "Sink",
        "SinkOptions",
        "Step",
        "UserWords",
        "check_name_template",
        "extension",
        "hookimpl",
        "line_crop",
        "output_name",
        "redact_url",
        "redact_urls_in",
        "redact_values",
        "render",
        "render_bytes",
        "files_of",
        "with_part",
        "secrets_of_url",
    }
)


def __getattr__(name: str) -> object:
    """`hwdaemon.Sink` and friends: the plugin API, imported on first use."""
    if name in PLUGIN_API_NAMES:
        from hwdaemon import plugin_api

        return getattr(plugin_api, name)
    raise AttributeError(f"module 'hwdaemon' has no attribute {name!r}")
