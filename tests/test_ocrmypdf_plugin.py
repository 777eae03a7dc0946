"""hwdaemon as OCRmyPDF's engine (`hwdaemon.ocrmypdf`): the command line, and the exact call Paperless-ngx makes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DEV_DATA, character_error_rate

ocrmypdf = pytest.importorskip("ocrmypdf", reason="the OCRmyPDF plugin needs the ocrmypdf extra")
if shutil.which("pdftotext") is None:
    pytest.skip("poppler-utils (pdftotext) not installed: scripts/setup --test", allow_module_level=True)

PAGES = ("copiste/wikitexte_0135_1_page.jpg", "testaments_poilus/TestamentsDePoilus_will_AN_0215-0_page.jpg")
# PAPERLESS_OCR_USER_ARGS as docs/ocrmypdf.md gives it
PAPERLESS_USER_ARGS = '{"plugins": ["hwdaemon.ocrmypdf"], "hwdaemon_profile": "default"}'


@pytest.fixture(scope="module")
def two_pages(dev_manifest: list[dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-page PDF of real handwriting (two dev pages at 300 dpi)."""
    import img2pdf

    pdf = tmp_path_factory.mktemp("ocrmypdf") / "two.pdf"
    pdf.write_bytes(
        img2pdf.convert(
            [str(DEV_DATA / page) for page in PAGES], layout_fun=img2pdf.get_fixed_dpi_layout_fun((300, 300))
        )
    )
    return pdf


@pytest.fixture(scope="module")
def hwdaemon_text(two_pages: Path) -> str:
    """What `hwdaemon process` reads on the same pages."""
    done = subprocess.run(
        [sys.executable, "-m", "hwdaemon", "process", *(str(DEV_DATA / page) for page in PAGES)],
        check=True,
        capture_output=True,
        text=True,
    )
    return "\n".join(line for line in done.stdout.splitlines() if not line.startswith("==> "))


def pdftotext(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-raw", str(pdf), "-"], check=True, capture_output=True, text=True).stdout


def is_pdfa_2b(pdf: Path) -> bool:
    from pikepdf import pdfa

    return pdfa.validate_written(pdf, "2b").verdict == "pass"


def ocrmypdf_command(profile: str, source: Path, output: Path) -> subprocess.CompletedProcess[str]:
    """`ocrmypdf --plugin hwdaemon.ocrmypdf --hwdaemon-profile PROFILE SOURCE OUTPUT`, as a user types it."""
    command = [sys.executable, "-m", "ocrmypdf", "--plugin", "hwdaemon.ocrmypdf", "--hwdaemon-profile", profile]
    return subprocess.run([*command, str(source), str(output)], capture_output=True, text=True)


def test_ocrmypdf_command_with_the_plugin_reads_handwriting_into_a_pdfa(
    two_pages: Path, hwdaemon_text: str, tmp_path: Path
) -> None:
    output = tmp_path / "out.pdf"
    ocrmypdf_command("default", two_pages, output).check_returncode()
    text = pdftotext(output)
    assert character_error_rate(hwdaemon_text, text) <= 0.01, text
    assert is_pdfa_2b(output)


def test_ocr_api_with_the_plugin_reads_handwriting(two_pages: Path, hwdaemon_text: str, tmp_path: Path) -> None:
    """`ocrmypdf.ocr(..., plugins=["hwdaemon.ocrmypdf"])` on OCRmyPDF 17, the engine's options as keywords."""
    output, sidecar = tmp_path / "out.pdf", tmp_path / "sidecar.txt"
    ocrmypdf.ocr(
        two_pages,
        output,
        plugins=["hwdaemon.ocrmypdf"],
        hwdaemon_profile="default",
        output_type="pdfa",
        sidecar=sidecar,
        progress_bar=False,
    )
    assert character_error_rate(hwdaemon_text, pdftotext(output)) <= 0.01
    assert character_error_rate(hwdaemon_text, sidecar.read_text(encoding="utf-8")) <= 0.01
    assert is_pdfa_2b(output)


# Paperless-ngx 2.x pins ocrmypdf~=16.11; scripts/setup --test puts that release in its own folder.
REPOSITORY = Path(__file__).resolve().parent.parent
OCRMYPDF_16 = REPOSITORY / ".venv" / "ocrmypdf16"
# What Paperless-ngx passes (src/paperless_tesseract/parsers.py, construct_ocrmypdf_parameters) for a PDF
# with its defaults, by PAPERLESS_OCR_MODE: `skip` (the default) and `force`.
PAPERLESS_ARGS = {
    "use_threads": True,
    "jobs": 1,
    "language": "eng",
    "output_type": "pdfa",
    "progress_bar": False,
}
PAPERLESS_MODES = {"skip": {"skip_text": True}, "force": {"force_ocr": True}}
# Paperless's call, as its parser makes it: its arguments, PAPERLESS_OCR_USER_ARGS merged over them.
PAPERLESS_CALL = """
import json, sys
import ocrmypdf
source, archive, sidecar, mode_args, user_args = sys.argv[1:]
args = {"input_file": source, "output_file": archive, "sidecar": sidecar, **json.loads(mode_args)}
ocrmypdf.ocr(**{**args, **json.loads(user_args)})
print(ocrmypdf.__version__)
"""


def ghostscript_refused_with_skip_text() -> bool:
    """OCRmyPDF 16 refuses --skip-text with Ghostscript 10.0.0–10.02.0 (Debian 12's); Paperless's image has newer."""
    done = subprocess.run(["gs", "--version"], capture_output=True, text=True)
    version = tuple(int(part) for part in done.stdout.strip().split(".")[:2])
    return (10, 0) <= version <= (10, 2)


@pytest.mark.parametrize("mode", sorted(PAPERLESS_MODES))
def test_paperless_call_with_user_args_uses_hwdaemon_on_ocrmypdf_16(
    mode: str, two_pages: Path, hwdaemon_text: str, tmp_path: Path
) -> None:
    """The exact call Paperless-ngx 2.x makes, on the OCRmyPDF it pins, with docs/ocrmypdf.md's user args."""
    if not (OCRMYPDF_16 / "ocrmypdf").is_dir():
        pytest.skip(f"OCRmyPDF 16.11 is not in {OCRMYPDF_16}: run scripts/setup --test")
    if mode == "skip" and ghostscript_refused_with_skip_text():
        pytest.skip("OCRmyPDF 16 refuses skip_text with this machine's Ghostscript 10.0–10.02 (any OCR engine)")
    output, sidecar = tmp_path / "archive.pdf", tmp_path / "sidecar.txt"
    mode_args = json.dumps({**PAPERLESS_ARGS, **PAPERLESS_MODES[mode]})
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            PAPERLESS_CALL,
            str(two_pages),
            str(output),
            str(sidecar),
            mode_args,
            PAPERLESS_USER_ARGS,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(OCRMYPDF_16), str(REPOSITORY)])},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("16.11"), done.stdout
    assert character_error_rate(hwdaemon_text, pdftotext(output)) <= 0.01
    assert character_error_rate(hwdaemon_text, sidecar.read_text(encoding="utf-8")) <= 0.01
    assert is_pdfa_2b(output)


def test_a_missing_profile_stops_ocrmypdf_before_any_page_saying_so(two_pages: Path, tmp_path: Path) -> None:
    done = ocrmypdf_command("nope", two_pages, tmp_path / "o.pdf")
    assert done.returncode != 0, done.stderr  # OCRmyPDF reports a check_options error as a crash (1), not its code
    assert "no profile 'nope'" in done.stderr


def test_sandwich_renderer_on_ocrmypdf_16_gets_hwdaemons_text(
    two_pages: Path, hwdaemon_text: str, tmp_path: Path
) -> None:
    """OCRmyPDF 16's `--pdf-renderer sandwich` asks the engine for a text-only PDF (generate_pdf)."""
    if not (OCRMYPDF_16 / "ocrmypdf").is_dir():
        pytest.skip(f"OCRmyPDF 16.11 is not in {OCRMYPDF_16}: run scripts/setup --test")
    output = tmp_path / "out.pdf"
    command = [sys.executable, "-m", "ocrmypdf", "--plugin", "hwdaemon.ocrmypdf", "--pdf-renderer", "sandwich"]
    done = subprocess.run(
        [*command, "--output-type", "pdf", str(two_pages), str(output)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(OCRMYPDF_16), str(REPOSITORY)])},
    )
    assert done.returncode == 0, done.stderr
    assert character_error_rate(hwdaemon_text, pdftotext(output)) <= 0.01
