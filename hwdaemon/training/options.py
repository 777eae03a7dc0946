"""`hwdaemon train`'s options as one typed object: built from its flags, or from an options file that the flags override.

The defaults here are the command's. Each kind of run turns the options into
what its code takes: a `TrainRequest` (public data) or the `TrainSettings` of a
fine-tune on corrections. This module imports no torch, so `train --help` and
the options file are checked before anything heavy loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hwdaemon.training.run import TrainRequest
    from hwdaemon.training.train import TrainSettings

PUBLIC_DATA_EPOCHS = 1.0
PUBLIC_DATA_LEARNING_RATE = 3e-4
PUBLIC_DATA_BATCH_SIZE = 16


@dataclass(frozen=True, slots=True)
class TrainingOptions:
    """Everything `hwdaemon train` can be told, besides the daemon config it reads profiles and the store from."""

    sources: tuple[tuple[str, Path], ...] = ()  # (owner/repo, ALTO/PAGE file, folder or manifest)
    exclusions: Path | None = None  # DO-NOT-TRAIN.tsv
    out: Path | None = None  # the run folder
    from_corrections: bool = False
    profile: str = "default"  # with from_corrections: whose model learns and is replaced
    manifest: Path | None = None  # with from_corrections: the user's own labelled lines instead of the review page's
    epochs: float | None = None  # None: 1, or CORRECTIONS_SETTINGS' with from_corrections
    batch_size: int | None = None  # None: 16, or CORRECTIONS_SETTINGS' with from_corrections
    learning_rate: float | None = None  # None: 3e-4, or CORRECTIONS_SETTINGS'
    validation_fraction: float = 0.05
    holdout_fraction: float = 0.25
    max_repeats: int = 3
    drop_patterns: tuple[str, ...] = ()
    max_minutes: float | None = None
    device: str = "auto"
    base: Path | None = None
    synthetic: int = 0
    fonts: tuple[Path, ...] = ()  # none: the Debian handwriting fonts installed
    synthetic_languages: tuple[str, ...] = ("en",)
    line_types: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # repository -> the only line types kept
    oversample: Mapping[str, int] = field(default_factory=dict)  # repository -> times its lines come round per epoch
    schedule: str = "constant"
    trained_layers: str | None = None  # with from_corrections: all, or recurrent (None: CORRECTIONS_SETTINGS')
    augment_strength: float | None = None  # with from_corrections: 0 none, 1 light (None: CORRECTIONS_SETTINGS')
    seed: int = 0
    workers: int = 0

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names, as an options file writes its keys."""
        return tuple(option.name for option in fields(cls))

    def public_data_request(self) -> TrainRequest:
        """The run from public data these options ask for; sources, exclusions and out must be given."""
        from hwdaemon.training.run import TrainRequest

        assert self.exclusions is not None and self.out is not None
        return TrainRequest(
            sources=list(self.sources), exclusions=self.exclusions, out=self.out, epochs=self.epochs or PUBLIC_DATA_EPOCHS,
            batch_size=self.batch_size or PUBLIC_DATA_BATCH_SIZE, learning_rate=self.learning_rate or PUBLIC_DATA_LEARNING_RATE,
            validation_fraction=self.validation_fraction, max_repeats=self.max_repeats, drop_patterns=list(self.drop_patterns),
            max_minutes=self.max_minutes, device=self.device, base=self.base, synthetic=self.synthetic,
            fonts=list(self.fonts) or None, synthetic_languages=list(self.synthetic_languages), schedule=self.schedule,
            line_types={repository: list(types) for repository, types in self.line_types.items()},
            oversample=dict(self.oversample), seed=self.seed, workers=self.workers,
        )  # fmt: skip

    def corrections_settings(self) -> TrainSettings:
        """The fine-tune on corrections: its tuned defaults, with what these options set."""
        from hwdaemon.training.corrections import CORRECTIONS_SETTINGS

        defaults = CORRECTIONS_SETTINGS
        return replace(
            defaults, epochs=self.epochs or defaults.epochs, batch_size=self.batch_size or defaults.batch_size,
            learning_rate=self.learning_rate or defaults.learning_rate, device=self.device,
            trained_layers=self.trained_layers or defaults.trained_layers,
            augment_strength=defaults.augment_strength if self.augment_strength is None else self.augment_strength,
        )  # fmt: skip
