"""Render text pages with a handwriting-style font, so tests know the truth exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/fifthhorseman/dkg.ttf"),  # Debian fonts-dkg-handwriting
    Path("/usr/share/fonts/truetype/sjfonts/SteveHand.ttf"),  # Debian fonts-sjfonts
)


def handwriting_font(size: int) -> ImageFont.FreeTypeFont:
    for candidate in FONT_CANDIDATES:
        if candidate.is_file():
            return ImageFont.truetype(str(candidate), size)
    raise FileNotFoundError("no handwriting font; install Debian fonts-dkg-handwriting (scripts/setup does)")


def render_lines(lines: list[str], font_size: int = 40, line_spacing: float = 1.9, ruled: bool = False) -> np.ndarray:
    """A white greyscale page with `lines` written one under the other, left-aligned."""
    font = handwriting_font(font_size)
    pitch = int(font_size * line_spacing)
    width = max(int(font.getlength(text)) for text in lines) + 2 * font_size
    height = pitch * len(lines) + 2 * font_size
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    for index, text in enumerate(lines):
        top = font_size + index * pitch
        draw.text((font_size, top), text, font=font, fill=20)
        if ruled:
            baseline = top + int(font_size * 1.05)
            draw.line([(0, baseline), (width, baseline)], fill=150, width=2)
    return np.asarray(page, dtype=np.uint8)


def save(image: np.ndarray, path: Path) -> Path:
    Image.fromarray(image).save(path)
    return path
