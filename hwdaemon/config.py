"""The configuration: YAML → one frozen, validated `Config`.

Errors name the file, the line and the key path, and say the fix. Options of
pipeline pieces and sinks belong to their plugins, so `load_config` validates
them against a `PieceValidator` (the `Registry` built by `hwdaemon.plugins`) —
a typo in a step's option is caught at load, not when the first scan arrives.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from hwdaemon.errors import ConfigError
from hwdaemon.yamlfile import KeyPath, YamlDocument, format_key, parse_yaml

DEFAULT_CONFIG_NAME = "default.yaml"


class Strict(BaseModel):
    """Unknown keys are errors: a misspelt option must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PieceConfig(Strict):
    """A pipeline piece or sink: `type` names the plugin class, the other keys are its options.

    In YAML a piece is either a bare name (`- grayscale`) or a mapping
    (`- {type: clahe, clip_limit: 2.0}`).
    """

    type: str
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _split_type_from_options(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"type": value, "options": {}}
        if isinstance(value, dict) and "options" not in value:
            options = {key: item for key, item in value.items() if key != "type"}
            return {"type": value.get("type"), "options": options}
        return value


class LearningConfig(Strict):
    """A profile's continuous learning: the daemon fine-tunes its model on approved lines in the background (docs/learning.md)."""

    enabled: bool = Field(default=False, description="train in the background when enough new lines are approved")
    min_new_lines: int = Field(
        default=50, ge=4, description="approved lines with text since the last training that start the next one"
    )
    epochs: float | None = Field(
        default=None, gt=0, le=100, description="passes over the lines; default the corrections recipe's"
    )
    learning_rate: float | None = Field(
        default=None, gt=0, le=1, description="the fine-tune's learning rate; default the corrections recipe's"
    )
    holdout_fraction: float = Field(
        default=0.25,
        gt=0,
        lt=1,
        description="the user's documents held back to judge a new model against the current one",
    )
    check_interval_seconds: float = Field(
        default=60.0, gt=0, description="how often the daemon counts the newly approved lines"
    )


class ProfileConfig(Strict):
    """A named pipeline: languages, preprocessing steps, detector, recognizer, post-processing."""

    # What a key left out means is the embedded default profile's (default.yaml): a profile
    # that names only its languages reads as the default does.
    languages: list[str] = Field(default_factory=lambda: ["en"], min_length=1)
    preprocess: list[PieceConfig] = Field(
        default_factory=lambda: [PieceConfig(type="grayscale"), PieceConfig(type="deskew")]
    )
    detector: PieceConfig = PieceConfig(type="linenet")
    recognizer: PieceConfig = PieceConfig(type="handwriting")
    postprocess: list[PieceConfig] = Field(default_factory=lambda: [PieceConfig(type="normalize_whitespace")])
    # auto measured on rotated copies of the dev pages (docs/accuracy.md, benchmarks/orientation.py): every
    # quarter turn read as well as upright, no upright page turned; 0.08-0.24 s a page (line stretches read twice).
    orientation: Literal["auto", "off"] = Field(
        default="auto",
        description="auto: pages that arrive sideways or upside down are turned upright first; off: read as they come",
    )
    user_words: list[str] = Field(
        default_factory=list, description="names and jargon: the decoder spells them, spelling never corrects them"
    )
    user_words_file: Path | None = Field(
        default=None,
        description='more of them, one per line; the review page\'s "add word" appends here; default state_dir/words/PROFILE.txt',
    )
    # 0.85 measured on the dev lines with handwriting v3 (docs/accuracy.md): confidence tracks CER
    # (r = -0.83); below 0.85 flags 63 of 114 lines and catches 48 of the 55 with CER > 20%, while
    # the lines above it average 12% CER. v3 is surer of itself than v2: 0.8 would catch 37 of 55.
    review_below: float = Field(
        default=0.85, ge=0, le=1, description="lines read with less confidence are flagged on the review page"
    )
    learning: LearningConfig = LearningConfig()

    @model_validator(mode="after")
    def _learning_needs_handwriting(self) -> ProfileConfig:
        if self.learning.enabled and self.recognizer.type != "handwriting":
            raise ValueError(
                f"learning.enabled: the {self.recognizer.type!r} recognizer cannot learn; use recognizer: handwriting or set enabled: false"
            )
        return self

    @field_validator("orientation", mode="before")
    @classmethod
    def _orientation_off_unquoted(cls, value: object) -> object:
        """YAML reads a bare `off` as false (and `on` as true): they mean what was written."""
        return {False: "off", True: "auto"}.get(value, value) if isinstance(value, bool) else value


class ModelsConfig(Strict):
    """Where recognition weights live. The embedded English weights are always searched last."""

    dirs: list[Path] = Field(default_factory=list)
    download_enabled: bool = False
    trained_dir: Path | None = Field(
        default=None,
        description="where `hwdaemon train --from-corrections` installs each profile's model; default state_dir/models",
    )


class InputsConfig(Strict):
    """How input files are decoded, and the limits that guard against hostile or accidental input."""

    max_pixels: int = Field(default=40_000_000, gt=0, description="per page: the decompression-bomb guard")
    max_pages: int = Field(default=200, gt=0)
    max_file_bytes: int = Field(default=200_000_000, gt=0)
    max_job_pixels: int = Field(
        default=1_000_000_000, gt=0, description="all pages of one file together (200 A4 pages at 200 dpi: 750 million)"
    )
    pdf_dpi: int = Field(default=200, ge=50, le=600)
    pdf_page_seconds: float = Field(default=60.0, gt=0, description="longest wait for one rendered PDF page")
    pdf_render_memory_mb: int = Field(
        default=1024, ge=64, description="address space the PDF renderer may take beyond its start"
    )


class InboxConfig(Strict):
    """A watched folder: which profile reads its files and which sinks get the results."""

    path: Path
    profile: str = "default"
    recursive: bool = False
    patterns: list[str] = Field(default_factory=lambda: ["*"])
    ignore: list[str] = Field(default_factory=list)
    polling: bool = False
    poll_interval_seconds: float = Field(default=2.0, gt=0)
    settle_seconds: float = Field(default=2.0, ge=0)
    after: Literal["move", "keep", "delete"] = "move"
    sinks: list[str] = Field(default_factory=lambda: ["outbox"])
    review: Literal["optional", "required"] = Field(
        default="optional", description="required: hold deliveries until approved on the review page"
    )


class DeliveryConfig(Strict):
    """Retries towards sinks: exponential backoff with jitter, then a dead letter."""

    max_attempts: int = Field(default=10, ge=1)
    max_age_seconds: float = Field(default=86400.0, gt=0)
    backoff_base_seconds: float = Field(default=2.0, gt=0)
    backoff_max_seconds: float = Field(default=600.0, gt=0)


class MetricsConfig(Strict):
    """The Prometheus /metrics and /healthz endpoint; keep it on loopback unless a firewall guards it."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535, description="0 picks a free port (logged at start)")


class UiConfig(Strict):
    """The review page. Off loopback it needs a token (here or in HWDAEMON_UI_TOKEN)."""

    enabled: bool = Field(default=False, description="the daemon serves the page too (`hwdaemon ui` serves it alone)")
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535, description="0 picks a free port (logged at start)")
    token: str | None = None
    previews: bool = Field(default=True, description="keep a JPEG of each page in state_dir/previews for the page")
    preview_max_side: int = Field(default=2000, ge=200)
    page_size: int = Field(default=50, ge=5, le=500)
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names the page answers besides localhost, 127.0.0.1, [::1] and ui.host (behind a proxy: its public name; `*.example.org` for subdomains)",
    )
    max_request_bytes: int = Field(
        default=1_048_576, ge=16_384, description="a larger request body is refused with 413 before it is read"
    )

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, value: list[str]) -> list[str]:
        for name in value:
            has_port = ":" in name and not (name.startswith("[") and name.endswith("]"))
            bad_wildcard = "*" in name[1:] or (name.startswith("*") and name != "*" and not name.startswith("*."))
            if not name or "/" in name or has_port or bad_wildcard:
                raise ValueError(
                    f"{name!r} is not a host name: write names without scheme or port (review.example.org, *.example.org, [::1])"
                )
        return value


ApiScope = Literal["submit", "read", "review", "admin"]


class ApiTokenConfig(Strict):
    """One program's key to the HTTP API: a name for logs and records, the secret, and what it may do."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="shown in logs and job records; never the token")
    token: SecretStr = Field(description="at least 16 characters; write ${ENV_VAR} to keep it out of the file")
    scopes: list[ApiScope] = Field(
        min_length=1, description="submit, read, review, admin (admin may do everything, including retry and delete)"
    )
    rate_limit_per_minute: int | None = Field(default=None, ge=1, description="default api.rate_limit_per_minute")

    @field_validator("token")
    @classmethod
    def _long_enough(cls, token: SecretStr) -> SecretStr:
        """Checked at load, never quoted."""
        if len(token.get_secret_value()) < 16:
            raise ValueError(
                "is too short: use at least 16 characters (e.g. `python -c 'import secrets; print(secrets.token_urlsafe())'`)"
            )
        return token


class ApiConfig(Strict):
    """The HTTP API under /api/v1 (served with the review page): every request needs one of these tokens."""

    tokens: list[ApiTokenConfig] = Field(default_factory=list, description="no tokens: every API request is refused")
    inbox: Path | None = Field(
        default=None,
        description="the inbox whose profile, sinks, review and after: an upload gets when it names none; default the first inbox",
    )
    max_upload_bytes: int | None = Field(
        default=None,
        gt=0,
        description="default inputs.max_file_bytes (never more); a larger upload is refused with 413",
    )
    rate_limit_per_minute: int = Field(default=600, ge=1, description="requests per token per minute; then 429")
    max_wait_seconds: float = Field(default=60.0, ge=0, le=3600, description="the longest ?wait= long-poll")
    callback_secret: SecretStr | None = Field(
        default=None, description="whsec_… Standard Webhooks secret that signs callback_url posts; callbacks need it"
    )
    callback_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="host names a callback_url may point at (`*.example.org` for subdomains, `*` for any); empty: no callbacks",
    )

    @model_validator(mode="after")
    def _tokens_distinct(self) -> ApiConfig:
        names = [token.name for token in self.tokens]
        secrets = [token.token.get_secret_value() for token in self.tokens]
        if len(set(names)) != len(names):
            raise ValueError("two api.tokens have the same name; give each program its own")
        if len(set(secrets)) != len(secrets):
            raise ValueError("two api.tokens have the same token; give each program its own")
        return self


class QueueConfig(Strict):
    """Where jobs are read: in this process (local) or by `hwdaemon worker` processes on any host, through Celery."""

    backend: Literal["local", "celery"] = "local"
    broker_url: str | None = Field(
        default=None, description="redis://:${REDIS_PASSWORD}@host:6379/0; keep the password in the environment"
    )
    result_backend: str | None = Field(default=None, description="default: the broker_url")
    inline_max_bytes: int = Field(
        default=20_000_000,
        ge=0,
        description="files up to this size travel inside the task; larger ones as a path both hosts must see",
    )
    visibility_timeout_seconds: float = Field(
        default=900.0,
        gt=0,
        description="a job without a result this long is sent again (worker host gone, broker restarted)",
    )
    max_in_flight: int = Field(
        default=64, ge=1, description="jobs out with workers at once; the rest wait in the store"
    )
    serve_profiles: list[str] | None = Field(
        default=None, description="for `hwdaemon worker`: the profiles this host reads (default: all in its config)"
    )

    @model_validator(mode="after")
    def _celery_needs_a_broker(self) -> QueueConfig:
        if self.backend == "celery" and not self.broker_url:
            raise ValueError(
                "queue.backend celery needs queue.broker_url (e.g. redis://:${REDIS_PASSWORD}@127.0.0.1:6379/0)"
            )
        return self


class LogConfig(Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class Config(Strict):
    """The whole configuration. `source` says which file it came from, for messages."""

    source: str = "<embedded default>"
    state_dir: Path = Path("./state")
    workers: int = Field(default=1, ge=1)
    rescan_interval_seconds: float = Field(default=300.0, gt=0)
    max_attempts: int = Field(default=3, ge=1, description="tries per job before its file goes to failed/")
    job_timeout_seconds: float = Field(
        default=600.0, gt=0, description="a job running longer stops the systemd watchdog pings"
    )
    delivery: DeliveryConfig = DeliveryConfig()
    log: LogConfig = LogConfig()
    metrics: MetricsConfig = MetricsConfig()
    ui: UiConfig = UiConfig()
    api: ApiConfig = ApiConfig()
    queue: QueueConfig = QueueConfig()
    models: ModelsConfig = ModelsConfig()
    inputs: InputsConfig = InputsConfig()
    profiles: dict[str, ProfileConfig] = Field(default_factory=lambda: {"default": ProfileConfig()})
    inboxes: list[InboxConfig] = Field(default_factory=list)
    sinks: dict[str, PieceConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _defaults_under_state(self) -> Config:
        """Trained models and each profile's words file live in state_dir unless placed elsewhere."""
        if self.models.trained_dir is None:
            object.__setattr__(
                self, "models", self.models.model_copy(update={"trained_dir": self.state_dir / "models"})
            )
        for name, profile in self.profiles.items():
            if profile.user_words_file is None:
                self.profiles[name] = profile.model_copy(
                    update={"user_words_file": self.state_dir / "words" / f"{name}.txt"}
                )
        return self

    @field_validator("profiles")
    @classmethod
    def _has_profiles(cls, value: dict[str, ProfileConfig]) -> dict[str, ProfileConfig]:
        if not value:
            raise ValueError("at least one profile is needed")
        return value

    def profile(self, name: str) -> ProfileConfig:
        try:
            return self.profiles[name]
        except KeyError:
            raise ConfigError(
                f"{self.source}: no profile {name!r}; defined: {', '.join(sorted(self.profiles))}"
            ) from None

    def review_below(self, profile: str) -> float:
        """The profile's review threshold; the default for a job whose profile was since removed from the config."""
        return self.profiles.get(profile, ProfileConfig()).review_below


class PieceValidator(Protocol):
    """What loading a config needs from the plugin registry (`hwdaemon.plugins.Registry` is one): so config never imports plugins."""

    def validate(self, kind: str, piece: PieceConfig, path: KeyPath, document: YamlDocument | None) -> BaseModel:
        """Check that `piece` names an installed class of `kind` and that its options fit; raise ConfigError if not."""
        ...


def load_config(path: Path | None, registry: PieceValidator) -> Config:
    """Read `path` (or the embedded default when None), validate it and its plugins' options."""
    if path is None:
        text = resources.files("hwdaemon").joinpath(DEFAULT_CONFIG_NAME).read_text(encoding="utf-8")
        source = "<embedded default>"
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from exc
        source = str(path)
    return parse_config(text, source, registry)


def parse_config(text: str, source: str, registry: PieceValidator) -> Config:
    document = parse_yaml(text, source)
    if not isinstance(document.data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys (state_dir:, profiles:, …)")
    try:
        config = Config(source=source, **document.data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, document)) from exc
    _check_references(config, document)
    _validate_pieces(config, document, registry)
    return config


def _check_references(config: Config, document: YamlDocument) -> None:
    """Each inbox names a defined profile and defined sinks."""
    for index, inbox in enumerate(config.inboxes):
        if inbox.profile not in config.profiles:
            where = document.where(("inboxes", index, "profile"))
            raise ConfigError(f"{where}: no profile {inbox.profile!r}; defined: {sorted(config.profiles)}")
        for position, sink in enumerate(inbox.sinks):
            if sink not in config.sinks:
                where = document.where(("inboxes", index, "sinks", position))
                raise ConfigError(f"{where}: no sink {sink!r}; defined: {sorted(config.sinks)}; add it under sinks:")
    if config.api.inbox is not None and inbox_named(config, config.api.inbox) is None:
        where = document.where(("api", "inbox"))
        defined = [str(inbox.path) for inbox in config.inboxes]
        raise ConfigError(f"{where}: no inbox with path {str(config.api.inbox)!r}; defined: {defined}")


def inbox_named(config: Config, path: Path | str) -> InboxConfig | None:
    """The configured inbox whose path is `path` as written in the config (or the same absolute path)."""
    wanted = Path(path)
    for inbox in config.inboxes:
        if Path(inbox.path) == wanted or Path(inbox.path).absolute() == wanted.absolute():
            return inbox
    return None


def _validate_pieces(config: Config, document: YamlDocument, registry: PieceValidator) -> None:
    for name, profile in config.profiles.items():
        base: KeyPath = ("profiles", name)
        for index, step in enumerate(profile.preprocess):
            registry.validate("step", step, (*base, "preprocess", index), document)
        registry.validate("detector", profile.detector, (*base, "detector"), document)
        registry.validate("recognizer", profile.recognizer, (*base, "recognizer"), document)
        for index, step in enumerate(profile.postprocess):
            registry.validate("postprocessor", step, (*base, "postprocess", index), document)
    for name, sink in config.sinks.items():
        registry.validate("sink", sink, ("sinks", name), document)
    if config.api.callback_secret is not None:  # callbacks are posted by the webhook sink: its checks apply
        secret = config.api.callback_secret.get_secret_value()
        callback = PieceConfig(type="webhook", options={"url": "http://callback.invalid/", "secret": secret})
        registry.validate("sink", callback, ("api", "callback_secret"), document)


def _describe(exc: ValidationError, document: YamlDocument) -> str:
    messages = []
    for error in exc.errors():
        path = tuple(part for part in error["loc"] if part != "options")
        hint = " (unknown key: check its spelling in config.example.yaml)" if error["type"] == "extra_forbidden" else ""
        messages.append(f"{document.where(path)}: {error['msg']}{hint}")
    return "\n".join(messages)


def describe_options_error(exc: ValidationError, path: KeyPath, document: YamlDocument | None) -> str:
    """Name the offending option of a piece or sink with its file and line."""
    messages = []
    for error in exc.errors():
        full = path + tuple(error["loc"])
        where = document.where(full) if document else format_key(full)
        hint = " (unknown option)" if error["type"] == "extra_forbidden" else ""
        messages.append(f"{where}: {error['msg']}{hint}")
    return "\n".join(messages)
