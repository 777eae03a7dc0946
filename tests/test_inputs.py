"""Decoding inputs: formats, pages, orientation, and a clear error for each kind of bad file."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hwdaemon.config import LimitsConfig
from hwdaemon.errors import InputFileError
from hwdaemon.inputs import load_document

LIMITS = LimitsConfig()


def _png_claiming_size(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header claims width×height pixels: a decompression bomb's calling card."""
    Image.new("L", (8, 8), 255).save(path)
    data = bytearray(path.read_bytes())
    header = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + header))
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.png", b"", r"file is empty \(0 bytes\)"),
        ("notes.jpg", b"Dear diary, today I", "not a supported image"),
        ("cut.png", None, "truncated or corrupt"),
    ],
)
def test_bad_files_get_a_reason_and_are_left_untouched(tmp_path: Path, name: str, content: bytes | None, reason: str) -> None:
    path = tmp_path / name
    if content is None:
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8)).save(path)
        content = path.read_bytes()[:600]
        path.write_bytes(content)
    else:
        path.write_bytes(content)
    with pytest.raises(InputFileError, match=reason) as caught:
        load_document(path, LIMITS)
    assert caught.value.path == str(path)
    assert path.read_bytes() == content


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    bomb = _png_claiming_size(tmp_path / "bomb.png", 40_000, 40_000)
    with pytest.raises(InputFileError, match=r"over limits.max_pixels \(40000000 pixels\)"):
        load_document(bomb, LIMITS)


def test_pixel_limit_is_configurable(tmp_path: Path) -> None:
    path = tmp_path / "page.png"
    Image.new("L", (300, 200), 255).save(path)
    with pytest.raises(InputFileError, match=r"300×200, over limits.max_pixels \(50000 pixels\)"):
        load_document(path, LimitsConfig(max_pixels=50_000))


def test_multi_page_tiff_gives_every_page(tmp_path: Path) -> None:
    path = tmp_path / "fax.tiff"
    frames = [Image.new("L", (100, 80), shade) for shade in (10, 120, 250)]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    document = load_document(path, LIMITS)
    assert [page.number for page in document.pages] == [1, 2, 3]
    assert [int(page.image[0, 0]) for page in document.pages] == [10, 120, 250]


def test_type_comes_from_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf.png"  # a JPEG under a misleading name
    Image.new("RGB", (40, 30), (200, 10, 10)).save(path, format="JPEG")
    assert load_document(path, LIMITS).pages[0].image.shape == (30, 40, 3)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    Image.new("L", (60, 20), 255).save(path, exif=exif)
    assert load_document(path, LIMITS).pages[0].image.shape == (60, 20)


def test_transparent_png_is_flattened_on_white(tmp_path: Path) -> None:
    path = tmp_path / "clip.png"
    Image.new("RGBA", (10, 10), (0, 0, 0, 0)).save(path)
    assert load_document(path, LIMITS).pages[0].image.min() == 255


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    values = np.array([[0, 30000], [65535, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(path)
    image = load_document(path, LIMITS).pages[0].image
    assert image.dtype == np.uint8 and image.max() == 255 and 100 < image[0, 1] < 130
