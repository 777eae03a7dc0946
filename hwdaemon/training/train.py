"""Fine-tuning the CRNN on line samples, with checkpoints, resume, validation and early stopping.

Batches group lines of similar width (less padding, ~5 lines/s on 2 CPU cores).
Each epoch's batch order and each batch's augmentation come from their own seed
(run seed, epoch, batch number), so loader processes (`workers`, which keep a
GPU fed) change nothing in what is learnt, and a resumed run sees what it would
have. A checkpoint (model, optimiser, epoch, step, best CER) is written
atomically every `checkpoint_every` steps and at each epoch's end, so an
interrupted run resumes where it stopped. The best model by validation CER is
saved to `out/model` as a `handwriting` recognizer model folder.
"""

from __future__ import annotations

import math
import random
import time
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageFilter
from rapidfuzz.distance import Levenshtein
from torch import nn

from hwdaemon.builtins.recognizers.handwriting_model import HandwritingModel, to_batch
from hwdaemon.errors import ConfigError
from hwdaemon.evaluation import normalise
from hwdaemon.training.crnn import CHARSET_V1, from_english_g2, load_network, save_model, torch_forward
from hwdaemon.training.data import LineSample
from hwdaemon.training.processes import before_fork

Progress = Callable[[dict[str, Any]], None]
TRAINING_SEED = 1  # batch order and augmentation; train --seed N adds N
# What a fine-tune may change: every layer, or only the recurrent layers and the output layer on the
# network's convolutional features (about half the compute a step: no gradient flows through the features).
TRAINED_LAYERS = ("all", "recurrent")


@dataclass(frozen=True, slots=True)
class TrainSettings:
    epochs: float = 1.0
    batch_size: int = 16
    learning_rate: float = 3e-4
    max_width: int = 1600
    checkpoint_every: int = 200
    patience: int = 3
    seed: int = TRAINING_SEED
    augment: bool = True
    augment_strength: float = 1.0  # scales every augmentation range; 1: today's light variation
    max_minutes: float | None = None
    device: str = "auto"
    schedule: str = "constant"  # or "cosine": the rate falls to 5% of itself by the run's last step
    workers: int = 0  # processes preparing batches beside the training one (0: it does it itself)
    trained_layers: str = "all"  # or "recurrent": the convolutional features stay as they are (TRAINED_LAYERS)


@dataclass
class TrainState:
    epoch: int = 0  # epochs completed
    batches_done: int = 0  # in the current epoch
    steps: int = 0  # optimiser steps in all
    best_cer: float = math.inf
    epochs_without_gain: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


def encodable(samples: list[LineSample], charset: str) -> tuple[list[LineSample], int]:
    """Samples whose text the charset can spell (after NFC); returns them and how many were dropped."""
    known = set(charset)
    kept = [sample for sample in samples if set(unicodedata.normalize("NFC", sample.text)) <= known]
    return kept, len(samples) - len(kept)


def augment(crop: np.ndarray, rng: random.Random, strength: float = 1.0) -> np.ndarray:
    """Light, label-preserving variation: slant, height jitter, blur, ink contrast; `strength` scales each range."""
    image = Image.fromarray(crop)
    shear = rng.uniform(-0.3, 0.3) * strength
    width, height = image.size
    image = image.transform(
        (width + int(abs(shear) * height), height), Image.Transform.AFFINE,
        (1, shear, -shear * height if shear > 0 else 0, 0, 1, 0), fillcolor=int(np.percentile(crop, 90)),
    )  # fmt: skip
    scale = 1 + rng.uniform(-0.2, 0.15) * strength
    stretch = 1 + rng.uniform(-0.1, 0.1) * strength
    image = image.resize((max(8, int(image.width * stretch)), max(8, int(height * scale))))
    if rng.random() < 0.3 * min(1.0, strength):
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    pixels = np.asarray(image, dtype=np.float32)
    paper = np.percentile(pixels, 90)
    pixels = paper - (paper - pixels) * (1 + rng.uniform(-0.4, 0.2) * strength)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def character_error_rate(model: HandwritingModel, samples: list[LineSample], batch_size: int = 16) -> float:
    edits = characters = 0
    ordered = sorted(samples, key=lambda sample: sample.image.shape[1] / max(1, sample.image.shape[0]))
    for start in range(0, len(ordered), batch_size):
        chunk = ordered[start : start + batch_size]
        for sample, (text, _) in zip(chunk, model.read([sample.image for sample in chunk]), strict=True):
            reference = normalise(sample.text)
            edits += Levenshtein.distance(reference, normalise(text))
            characters += len(reference)
    return edits / max(1, characters)


def _batches(samples: list[LineSample], batch_size: int, rng: random.Random) -> list[list[LineSample]]:
    """Similar widths together, batch order shuffled."""
    ordered = sorted(samples, key=lambda sample: sample.image.shape[1] / max(1, sample.image.shape[0]) + rng.random())
    batches = [ordered[start : start + batch_size] for start in range(0, len(ordered), batch_size)]
    rng.shuffle(batches)
    return batches


class _PreparedBatches(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """Batch `number` of an epoch as the network's input: its lines augmented with the batch's own seed, stacked."""

    def __init__(self, batches: list[list[LineSample]], first: int, settings: TrainSettings, epoch: int) -> None:
        self.batches, self.first, self.settings, self.epoch = batches, first, settings, epoch

    def __len__(self) -> int:
        return len(self.batches) - self.first

    def __getitem__(self, position: int) -> tuple[int, torch.Tensor, list[str]]:
        number = self.first + position
        batch = self.batches[number]
        rng = random.Random(f"{self.settings.seed}/{self.epoch}/{number}")
        settings = self.settings
        images = [
            augment(sample.image, rng, settings.augment_strength) if settings.augment else sample.image
            for sample in batch
        ]
        return (
            number,
            torch.from_numpy(to_batch(images, self.settings.max_width)[0]),
            [unicodedata.normalize("NFC", sample.text) for sample in batch],
        )


def _one_thread(_: int) -> None:
    """A loader process uses one core: several of them, each with a thread per core, would fight over the cores."""
    torch.set_num_threads(1)


def planned_steps(samples: int, settings: TrainSettings) -> int:
    """Optimiser steps the whole run takes, as the loop below counts them."""
    batches = math.ceil(samples / settings.batch_size)
    whole, fraction = divmod(settings.epochs, 1)
    return int(whole) * batches + (max(1, int(batches * fraction)) if fraction else 0)


def learning_rate_at(step: int, total: int, settings: TrainSettings) -> float:
    if settings.schedule == "constant" or total <= 0:
        return settings.learning_rate
    floor = 0.05
    return settings.learning_rate * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / total))))


def _trained_parameters(network: nn.Module, layers: str) -> list[nn.Parameter]:
    """The parameters the optimiser changes; with "recurrent" the convolutional features are frozen."""
    if layers not in TRAINED_LAYERS:
        raise ConfigError(f"trained layers {layers!r}: use one of {', '.join(TRAINED_LAYERS)}")
    if layers == "recurrent":
        for parameter in network.get_submodule("FeatureExtraction").parameters():
            parameter.requires_grad_(False)
    return [parameter for parameter in network.parameters() if parameter.requires_grad]


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"--device {name}: torch sees no CUDA GPU on this machine; use --device auto (the GPU when there is one) or cpu"
        )
    return torch.device(name)


def train(
    train_samples: list[LineSample],
    validation_samples: list[LineSample],
    out: Path,
    base_weights: Path,
    settings: TrainSettings,
    progress: Progress | None = None,
) -> TrainState:
    """Train (or resume training) into `out`; returns the final state with the per-epoch history.

    `base_weights` is EasyOCR's english_g2.pth (a new model) or one of our model folders (fine-tuning it).
    """
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(settings.seed)  # the output rows english_g2 lacks start random
    device = _device(settings.device)
    checkpoint_path = out / "checkpoint.pt"
    if base_weights.is_dir():  # one of our models: fine-tune it as it is
        network, card = load_network(base_weights)
        network, charset, base_name = network.to(device), card["charset"], str(card.get("name", base_weights.name))
    else:
        network, charset, base_name = from_english_g2(base_weights, CHARSET_V1).to(device), CHARSET_V1, "english_g2"
    optimiser = torch.optim.Adam(_trained_parameters(network, settings.trained_layers), lr=settings.learning_rate)
    state = TrainState()
    if checkpoint_path.exists():
        saved = torch.load(checkpoint_path, map_location=device, weights_only=False)
        network.load_state_dict(saved["model"])
        optimiser.load_state_dict(saved["optimiser"])
        state = TrainState(**saved["state"])
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    index = {char: position + 1 for position, char in enumerate(charset)}
    started = time.monotonic()
    total_epochs = math.ceil(settings.epochs)
    total_steps = planned_steps(len(train_samples), settings)

    def save_checkpoint() -> None:
        temporary = out / ".checkpoint.pt.tmp"
        torch.save(
            {
                "model": network.state_dict(),
                "optimiser": optimiser.state_dict(),
                "state": asdict(state),
                "settings": asdict(settings),
            },
            temporary,
        )
        temporary.replace(checkpoint_path)

    if settings.workers:
        before_fork()
    while state.epoch < total_epochs:
        batches = _batches(train_samples, settings.batch_size, random.Random(f"{settings.seed}/{state.epoch}"))
        fraction = settings.epochs - state.epoch
        limit = len(batches) if fraction >= 1 else max(1, int(len(batches) * fraction))
        prepared = torch.utils.data.DataLoader(
            _PreparedBatches(batches[:limit], state.batches_done, settings, state.epoch), batch_size=None,
            num_workers=settings.workers, worker_init_fn=_one_thread if settings.workers else None, prefetch_factor=4 if settings.workers else None,
        )  # fmt: skip
        network.train()
        if settings.trained_layers == "recurrent":
            network.get_submodule("FeatureExtraction").eval()  # its batch-norm statistics stay the base model's too
        for number, inputs, texts in prepared:
            inputs = inputs.to(device, non_blocking=True)
            log_probs = network(inputs, None).log_softmax(2).permute(1, 0, 2)
            targets = torch.tensor([index[char] for text in texts for char in text], dtype=torch.long, device=device)
            target_lengths = torch.tensor([len(text) for text in texts], dtype=torch.long, device=device)
            input_lengths = torch.full((len(texts),), log_probs.size(0), dtype=torch.long, device=device)
            loss = ctc(log_probs, targets, input_lengths, target_lengths)
            for group in optimiser.param_groups:
                group["lr"] = learning_rate_at(state.steps, total_steps, settings)
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(network.parameters(), 5.0)
            optimiser.step()
            state.batches_done, state.steps = number + 1, state.steps + 1
            if progress:
                progress(
                    {
                        "epoch": state.epoch + 1,
                        "batch": number + 1,
                        "batches": limit,
                        "loss": float(loss.detach()),
                        "steps": state.steps,
                    }
                )
            if state.steps % settings.checkpoint_every == 0:
                save_checkpoint()
            if settings.max_minutes is not None and time.monotonic() - started > settings.max_minutes * 60:
                save_checkpoint()
                return state
        state.epoch, state.batches_done = state.epoch + 1, 0
        cer = (
            character_error_rate(HandwritingModel(torch_forward(network), charset, {}), validation_samples)
            if validation_samples
            else math.nan
        )
        state.history.append({"epoch": state.epoch, "validation_cer": round(cer, 4)})
        if progress:
            progress({"epoch": state.epoch, "validation_cer": cer})
        if not validation_samples or cer < state.best_cer:
            state.best_cer, state.epochs_without_gain = cer, 0
            save_model(
                network,
                charset,
                out / "model",
                {"base": base_name, "epoch": state.epoch, "steps": state.steps, "validation_cer": round(cer, 4)},
            )
        else:
            state.epochs_without_gain += 1
        save_checkpoint()
        if state.epochs_without_gain >= settings.patience:
            break
    return state
