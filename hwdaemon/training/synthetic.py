"""Synthetic handwriting lines: words rendered in handwriting fonts, then roughed up like a scan.

Real modern English handwriting is scarce in public data, so English letter
shapes come from many fonts (Debian's fonts-dkg-handwriting, fonts-sjfonts,
… and Google's handwriting families from npm @fontsource) and augmentation:
slant, rotation, elastic distortion (every stroke wobbles a little, as a pen
does), ink width, a wavy baseline, ruled lines, paper tone, noise and blur.
Text is drawn from the spelling dictionaries' frequent words, with capitals,
digits and punctuation mixed in. A font only writes characters it actually has
(a missing glyph would teach the model to read blanks).
"""

from __future__ import annotations

import math
import multiprocessing
import random
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import cast

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from hwdaemon.builtins import wordlists
from hwdaemon.training.data import LineSample
from hwdaemon.training.processes import before_fork

SYNTHETIC_SOURCE = "synthetic"
SYNTHETIC_SEED = 7  # the synthetic lines; train --seed N adds N
GROUP_SIZE = 100  # lines per synthetic "document"
DEBIAN_FONTS = (
    "/usr/share/fonts/truetype/fifthhorseman/dkg.ttf",
    "/usr/share/fonts/truetype/fifthhorseman/dkgIt.ttf",
    "/usr/share/fonts/truetype/sjfonts/SteveHand.ttf",
    "/usr/share/fonts/truetype/sjfonts/Delphine.ttf",
    "/usr/share/fonts/truetype/breip/Breip.ttf",
    "/usr/share/fonts/truetype/femkeklaver/femkeklaver.ttf",
    "/usr/share/fonts/truetype/rufscript/Rufscript010.ttf",
)
PUNCTUATION = [",", ".", ",", ".", "'", "-", "?", "!", ";", ":", "(", ")", '"']


def default_fonts() -> list[Path]:
    return [Path(path) for path in DEBIAN_FONTS if Path(path).is_file()]


@cache
def frequent_words(language: str, count: int = 20000) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """The `count` most frequent words of pyspellchecker's dictionary for `language`, with weights."""
    ranked = [(word, frequency) for word, frequency in wordlists.ranked(language) if word.isalpha()][:count]
    return tuple(word for word, _ in ranked), tuple(
        float(frequency) ** 0.5 for _, frequency in ranked
    )  # flatten: rarer words appear too


def sentence(rng: random.Random, languages: list[str], max_characters: int = 48) -> str:
    words, weights = frequent_words(rng.choice(languages))
    chosen = rng.choices(words, weights=weights, k=rng.randint(2, 8))
    parts = []
    for index, word in enumerate(chosen):
        if rng.random() < 0.12:
            word = word.capitalize()
        if rng.random() < 0.06:
            word = str(rng.choice([rng.randint(1, 31), rng.randint(1, 999), rng.randint(1900, 2030)]))
        if rng.random() < 0.1 and index < len(chosen) - 1:
            word += rng.choice(PUNCTUATION[:6])
        parts.append(word)
    text = " ".join(parts)
    if rng.random() < 0.5:
        text = text[0].upper() + text[1:]
    if rng.random() < 0.4:
        text += rng.choice(PUNCTUATION[:2] + PUNCTUATION[6:8])
    if len(text) > max_characters:
        text = text[:max_characters].rsplit(" ", 1)[0]
    return text.rstrip()


@cache
def covered(font_path: Path, characters: str) -> frozenset[str]:
    """Which of `characters` the font really draws (not its empty or .notdef box)."""
    font = ImageFont.truetype(str(font_path), 40)
    missing = _glyph(font, "\uffff")
    return frozenset(
        character for character in characters if character.isspace() or (_glyph(font, character) not in (missing, b""))
    )


def _glyph(font: ImageFont.FreeTypeFont, character: str) -> bytes:
    mask = font.getmask(character)
    return bytes(mask) if mask.size[0] and mask.size[1] and any(bytes(mask)) else b""


def render(text: str, font_path: Path, rng: random.Random) -> np.ndarray:
    """One line of `text` in the font, as a greyscale scan crop."""
    font = ImageFont.truetype(str(font_path), rng.randint(30, 52))
    width = int(font.getlength(text)) + 80
    height = int(font.size * 2.2)
    ink = rng.randint(0, 70)
    canvas = Image.new("L", (width, height), 255)
    ImageDraw.Draw(canvas).text((40, height // 2), text, font=font, fill=ink, anchor="lm")
    image = np.asarray(canvas, dtype=np.uint8).copy()
    image = _distort(image, rng)
    if rng.random() < 0.2:  # ruled paper
        row, thickness = int(height * rng.uniform(0.62, 0.75)), rng.randint(1, 2)
        image[row : row + thickness, :] = np.minimum(image[row : row + thickness, :], rng.randint(140, 200))
    paper = rng.randint(200, 252)
    pixels = (image.astype(np.float32) * (paper / 255.0)).astype(np.float32)
    pixels += np.random.default_rng(rng.randint(0, 2**31)).normal(0, rng.uniform(0, 9), pixels.shape)
    if rng.random() < 0.5:
        pixels = cast(npt.NDArray[np.float32], cv2.GaussianBlur(pixels, (0, 0), rng.uniform(0.3, 1.1)))
    image = np.clip(pixels, 0, 255).astype(np.uint8)
    return _crop_to_ink(image, rng.randint(3, 12))


def _distort(image: np.ndarray, rng: random.Random) -> np.ndarray:
    height, width = image.shape
    shear = rng.uniform(-0.35, 0.25)
    angle = np.deg2rad(rng.uniform(-1.5, 1.5))
    matrix = np.array(
        [[np.cos(angle), shear - np.sin(angle), -shear * height / 2], [np.sin(angle), np.cos(angle), 0]],
        dtype=np.float32,
    )
    image = cv2.warpAffine(image, matrix, (width, height), borderValue=255)
    amplitude, period, phase = rng.uniform(0, 2.5), rng.uniform(60, 240), rng.uniform(0, 2 * np.pi)
    columns = np.arange(width, dtype=np.float32)
    map_x = np.tile(columns, (height, 1))
    map_y = (
        np.arange(height, dtype=np.float32)[:, None] + amplitude * np.sin(columns / period * 2 * np.pi + phase)[None, :]
    )
    image = cv2.remap(image, map_x, map_y.astype(np.float32), cv2.INTER_LINEAR, borderValue=255)
    if rng.random() < 0.5:
        image = elastic(image, rng)
    stroke = rng.random()
    if stroke < 0.25:
        image = cv2.erode(image, np.ones((2, 2), np.uint8))  # thicker ink (erosion of white)
    elif stroke < 0.4:
        image = cv2.dilate(image, np.ones((2, 2), np.uint8))  # thinner ink
    return image


def elastic(
    image: np.ndarray, rng: random.Random, alpha: float | None = None, sigma: float | None = None
) -> np.ndarray:
    """Local elastic distortion (Simard et al. 2003): a smooth random displacement field of a few pixels.

    A font draws every "a" alike; a hand never does. Smoothing over `sigma` pixels
    (about a stroke's length) bends strokes without breaking them.
    """
    alpha = rng.uniform(1.5, 3.5) if alpha is None else alpha
    sigma = rng.uniform(5, 9) if sigma is None else sigma
    noise = np.random.default_rng(rng.randint(0, 2**31))
    height, width = image.shape
    fields = []
    for _ in range(2):
        field = cv2.GaussianBlur(noise.uniform(-1, 1, (height, width)).astype(np.float32), (0, 0), sigma)
        fields.append(field * (alpha / max(1e-6, float(np.abs(field).max()))))
    map_x = np.arange(width, dtype=np.float32)[None, :] + fields[0]
    map_y = np.arange(height, dtype=np.float32)[:, None] + fields[1]
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderValue=255)


def _crop_to_ink(image: np.ndarray, margin: int) -> np.ndarray:
    rows, columns = np.where(image < 160)
    if rows.size == 0:
        return image
    top, bottom = max(0, rows.min() - margin), min(image.shape[0], rows.max() + margin + 1)
    left, right = max(0, columns.min() - margin), min(image.shape[1], columns.max() + margin + 1)
    return image[top:bottom, left:right]


def synthetic_samples(
    count: int, fonts: Iterable[Path], charset: str, languages: list[str], seed: int = SYNTHETIC_SEED, workers: int = 1,
) -> list[LineSample]:  # fmt: skip
    """`count` rendered lines spread over the fonts, in documents of 100 so validation holds out whole groups.

    Each group is drawn from its own seed (run seed, group number): `workers`
    processes render the groups side by side and the lines stay the same.
    """
    usable = [font for font in fonts if len(covered(font, charset)) > 60]
    if not usable:
        raise FileNotFoundError(
            "no handwriting font found for synthetic lines; install fonts-dkg-handwriting or pass --font"
        )
    groups = [
        (group, min(GROUP_SIZE, count - group * GROUP_SIZE), usable, charset, languages, seed)
        for group in range(math.ceil(count / GROUP_SIZE))
    ]
    if workers <= 1 or len(groups) == 1:
        return [sample for arguments in groups for sample in _render_group(*arguments)]
    before_fork()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return [sample for rendered in pool.starmap(_render_group, groups) for sample in rendered]


def _render_group(
    group: int, size: int, fonts: list[Path], charset: str, languages: list[str], seed: int
) -> list[LineSample]:
    rng = random.Random(f"{seed}/{group}")
    document = f"{SYNTHETIC_SOURCE}/{group}"
    samples: list[LineSample] = []
    while len(samples) < size:
        font = fonts[(group * GROUP_SIZE + len(samples)) % len(fonts)]
        text = sentence(rng, languages)
        if set(text) <= covered(font, charset):
            samples.append(LineSample(text, SYNTHETIC_SOURCE, document, render(text, font, rng)))
    return samples
