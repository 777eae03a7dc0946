"""Average the weights of models fine-tuned from one another (a "model soup").

Runs that continue from the same model stay close enough in weight space that
their mean is itself a good model, and usually a better one: the runs' noise
cancels while what they learnt in common stays. It costs no training time and
reads as fast as any one of them. Models with different alphabets (and so
different output layers) cannot be averaged, and are refused with a message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from hwdaemon.errors import ConfigError
from hwdaemon.training.crnn import build_network, load_network, save_model


def average_models(folders: list[Path], out: Path, card: dict[str, Any] | None = None) -> Path:
    """Write the element-wise mean of the models in `folders` to `out` (a model folder); returns it."""
    if len(folders) < 2:
        raise ConfigError("averaging needs at least two model folders")
    models = [load_network(folder) for folder in folders]
    charset = models[0][1]["charset"]
    for folder, (_, model_card) in zip(folders[1:], models[1:], strict=True):
        if model_card["charset"] != charset:
            raise ConfigError(
                f"{folder} spells with another alphabet than {folders[0]}; only models fine-tuned from one another average"
            )
    states = [network.state_dict() for network, _ in models]
    mean = {key: _mean([state[key] for state in states]) for key in states[0]}
    network = build_network(len(charset) + 1)
    network.load_state_dict(mean)
    note = {
        "averaged_from": [
            _describe(folder, model_card) for folder, (_, model_card) in zip(folders, models, strict=True)
        ]
    }
    save_model(network, charset, out, {**note, **(card or {})})
    return out


def _mean(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Mean of floating tensors; integer buffers (batch-norm counters) are taken from the first model."""
    if not tensors[0].is_floating_point():
        return tensors[0]
    return torch.stack([tensor.float() for tensor in tensors]).mean(dim=0).to(tensors[0].dtype)


def _describe(folder: Path, card: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": card.get("name", str(folder)),
        **{key: card[key] for key in ("base", "steps", "validation_cer") if key in card},
    }
