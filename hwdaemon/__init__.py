"""hwdaemon: handwritten scans in an inbox folder become text delivered to sinks."""

__version__ = "0.1.0"
