"""Decoding inputs: formats, pages, orientation, and a clear error for each kind of bad file."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hwdaemon.config import InputsConfig
from hwdaemon.errors import InputFileError
from hwdaemon.inputs import open_document
from hwdaemon.model import Document

LIMITS = InputsConfig()


def load_document(path: Path, inputs: InputsConfig) -> Document:
    """Every page decoded, for looking at them side by side."""
    with open_document(path, inputs) as document:
        return Document(document.source, document.sha256, tuple(document.pages))


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
        ("notes.jpg", b"Dear diary, today I", "not a supported file"),
        ("cut.png", None, "truncated or corrupt"),
    ],
)
def test_bad_files_get_a_reason_and_are_left_untouched(
    tmp_path: Path, name: str, content: bytes | None, reason: str
) -> None:
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
    with pytest.raises(InputFileError, match=r"over inputs.max_pixels \(40000000 pixels\)"):
        load_document(bomb, LIMITS)


def test_pixel_limit_is_configurable(tmp_path: Path) -> None:
    path = tmp_path / "page.png"
    Image.new("L", (300, 200), 255).save(path)
    with pytest.raises(InputFileError, match=r"300×200, over inputs.max_pixels \(50000 pixels\)"):
        load_document(path, InputsConfig(max_pixels=50_000))


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


def _pdf_of(images: list[Image.Image], path: Path) -> Path:
    images[0].save(path, format="PDF", save_all=True, append_images=images[1:], resolution=100)
    return path


def test_pdf_pages_are_rendered_at_the_configured_dpi(tmp_path: Path) -> None:
    pages = [Image.new("L", (850, 1100), shade) for shade in (40, 140, 240)]  # 8.5×11 in at 100 dpi
    document = load_document(_pdf_of(pages, tmp_path / "scan.pdf"), InputsConfig(pdf_dpi=50))
    assert len(document.pages) == 3
    assert document.pages[0].image.shape == (550, 425)
    assert [int(page.image[10, 10]) for page in document.pages] == [40, 140, 240]


def test_pdf_page_limit_names_its_key(tmp_path: Path) -> None:
    path = _pdf_of([Image.new("L", (100, 100), 255)] * 3, tmp_path / "long.pdf")
    with pytest.raises(InputFileError, match=r"PDF has 3 pages, over inputs.max_pages \(2\)"):
        load_document(path, InputsConfig(max_pages=2))


def test_pdf_page_pixels_are_checked_before_rendering(tmp_path: Path) -> None:
    path = _pdf_of([Image.new("L", (1100, 1100), 255)], tmp_path / "big.pdf")  # 11×11 in: 6600² px at 600 dpi
    with pytest.raises(InputFileError, match=r"at 600 dpi, over inputs.max_pixels"):
        load_document(path, InputsConfig(pdf_dpi=600))


def test_encrypted_pdf_is_refused_with_a_reason(tmp_path: Path) -> None:
    import pikepdf

    plain = _pdf_of([Image.new("L", (100, 100), 255)], tmp_path / "plain.pdf")
    with pikepdf.open(plain) as pdf:
        pdf.save(tmp_path / "locked.pdf", encryption=pikepdf.Encryption(owner="owner", user="secret"))
    with pytest.raises(InputFileError, match="PDF is encrypted"):
        load_document(tmp_path / "locked.pdf", LIMITS)


def test_damaged_pdf_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cut.pdf"
    path.write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog")
    with pytest.raises(InputFileError, match="PDF is damaged"):
        load_document(path, LIMITS)


def test_heic_from_a_phone_is_decoded(tmp_path: Path) -> None:
    from pillow_heif import from_pillow

    path = tmp_path / "IMG_0001.HEIC"
    from_pillow(Image.new("RGB", (64, 48), (250, 250, 250))).save(str(path), quality=90)
    image = load_document(path, LIMITS).pages[0].image
    assert image.shape == (48, 64, 3) and image.mean() > 200


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    path = tmp_path / "print.jpg"
    Image.new("CMYK", (20, 10), (0, 0, 0, 0)).save(path)
    image = load_document(path, LIMITS).pages[0].image
    assert image.shape == (10, 20, 3) and image.min() > 240
