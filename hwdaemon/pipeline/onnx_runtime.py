"""Our networks read through ONNX Runtime, so the daemon never imports torch for them.

Training stays in PyTorch and writes an ONNX copy beside its weights (training/crnn.py
save_model, training/linenet_network.py save_linenet; the folder format is modelfolder.py).
Reading through ONNX Runtime computes the same outputs as torch (tests/test_onnx_models.py)
and is as fast on CPU, while importing torch alone costs 650 MB of resident memory with
PyPI's CUDA build, 1.2 s of start-up, and the page-sized im2col buffers of its convolutions.
Part of the framework: the host sets the threads every piece's sessions use (set_threads).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from hwdaemon.errors import ModelMissingError

if TYPE_CHECKING:
    import numpy as np
    import onnxruntime

_threads: int | None = None


def set_threads(threads: int | None) -> None:
    """Threads each network may use (None: all cores); set before the sessions open (`hwdaemon worker --threads`)."""
    global _threads
    _threads = threads


def open_session(path: Path) -> onnxruntime.InferenceSession:
    """A CPU session for one .onnx file; thread-safe, so the daemon's workers share it.

    The memory arena is off: line batches and page bands change shape every call, and
    an arena keeps its largest allocation for the life of the process (on the dev pages
    it read 0.15 s a page faster for 300 MB more). Idle threads sleep rather than spin,
    leaving the cores to the beam decoder between batches (a fifth less CPU time, no slower).
    """
    import onnxruntime

    if not path.is_file():
        raise ModelMissingError(f"missing model file {path}")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = _threads or len(os.sched_getaffinity(0))
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = False
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: its warnings are about graph rewrites users cannot act on
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # ONNX Runtime's errors (InvalidProtobuf, Fail, …) share no base class of their own
        raise ModelMissingError(
            f"{path} is not a readable ONNX model ({error}); the file is damaged or cut short: copy it again, train it again or reinstall hwdaemon"
        ) from error


def run(session: onnxruntime.InferenceSession, inputs: np.ndarray) -> np.ndarray:
    """The network's single output for its single input."""
    output: np.ndarray = session.run(None, {session.get_inputs()[0].name: inputs})[0]
    return output
