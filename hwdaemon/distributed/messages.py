"""What travels through the broker: a read request out, a reply back. JSON only (no pickle from the network)."""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One job for a worker: the file inline (`data`, base64) or as a `path` both hosts see."""

    job_id: int
    sha256: str
    profile: str
    name: str
    data: str | None = None
    path: str | None = None
    previews_max_side: int | None = None

    @classmethod
    def inline(
        cls, job_id: int, sha256: str, profile: str, name: str, content: bytes, previews_max_side: int | None
    ) -> ReadRequest:
        return cls(
            job_id,
            sha256,
            profile,
            name,
            data=base64.b64encode(content).decode("ascii"),
            previews_max_side=previews_max_side,
        )

    def content(self) -> bytes | None:
        return None if self.data is None else base64.b64decode(self.data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReadRequest:
        return cls(**{key: data.get(key) for key in cls.__dataclass_fields__})  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ReadReply:
    """A worker's answer: the result (Result.to_dict) and page previews, or an error.

    `refused` means this worker does not serve the job's profile; `permanent`
    means the file itself is bad (retrying cannot help).
    """

    job_id: int
    sha256: str
    worker: str
    result: dict[str, Any] | None = None
    previews: dict[str, str] = field(default_factory=dict)  # page number → base64 JPEG
    error: str | None = None
    permanent: bool = False
    refused: bool = False
    seconds: float = 0.0

    def preview_bytes(self) -> dict[int, bytes]:
        return {int(page): base64.b64decode(jpeg) for page, jpeg in self.previews.items()}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReadReply:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})
