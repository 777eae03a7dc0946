"""hwdaemon as OCRmyPDF's OCR engine: `ocrmypdf --plugin hwdaemon.ocrmypdf in.pdf out.pdf`.

OCRmyPDF rasterises each page, hands the image to this engine and grafts the
text it returns onto the page as an invisible layer (its own renderer, then its
PDF/A conversion). The engine reads the image with a hwdaemon profile's
pipeline (`--hwdaemon-profile`, `--hwdaemon-config`; the daemon's config format)
and answers with OCRmyPDF's page tree (`generate_ocr`), so handwriting becomes
searchable in any PDF OCRmyPDF can open — and in Paperless-ngx, whose OCR is
OCRmyPDF (docs/ocrmypdf.md).

The rule: loading this plugin selects it. `--ocr-engine auto` (the default) gets
hwdaemon, as a plugin given by `--plugin` is asked before the built-in
Tesseract; `--ocr-engine tesseract` or `none` still get those. Orientation and
deskew are reported as none: the pipeline turns and straightens the page itself
and returns every word in the image's own coordinates, which is where OCRmyPDF
places them. Each worker process builds its pipeline once, on its first page.

Two OCRmyPDF generations load it: 17 (options as a pydantic model, `--ocr-engine`,
`generate_ocr`) and 16.11, which Paperless-ngx 2.x pins (options as an argparse
namespace, a `get_ocr_engine()` without arguments, hOCR handed back through
`generate_hocr`). The hooks are declared for the generation installed, since pluggy
refuses an implementation asking for an argument its spec lacks.
"""

from __future__ import annotations

import functools
from argparse import ArgumentParser
from pathlib import Path
from typing import TYPE_CHECKING

from ocrmypdf import __version__ as ocrmypdf_version
from ocrmypdf import hookimpl
from ocrmypdf.exceptions import ExitCode, ExitCodeException
from ocrmypdf.pluginspec import OcrEngine, OrientationConfidence
from pydantic import BaseModel

from hwdaemon import __version__
from hwdaemon.errors import ConfigError, HwdaemonError, InputFileError, ModelMissingError, PluginError

if TYPE_CHECKING:
    from ocrmypdf._options import OcrOptions
    from ocrmypdf.hocrtransform import OcrElement

    from hwdaemon.config import InputsConfig
    from hwdaemon.model import Result
    from hwdaemon.pipeline import Pipeline

ENGINE_NAME = "hwdaemon"
# ISO 639-2 codes OCRmyPDF's -l accepts: the Latin-script languages hwdaemon has word lists for
# (its recognizer reads Latin script; the language steers spelling and the beam decoder's lexicon).
LANGUAGES = frozenset({"eng", "fra", "deu", "spa", "ita", "nld", "por", "lav", "eus"})
HAS_OPTION_MODELS = int(ocrmypdf_version.split(".")[0]) >= 17  # OCRmyPDF 17: register_options, get_ocr_engine(options)


class HwdaemonOptions(BaseModel):
    """The engine's options, `options.hwdaemon.<name>` inside OCRmyPDF."""

    profile: str = "default"
    config: str | None = None


class HwdaemonEngineError(ExitCodeException):
    """A hwdaemon error ending OCRmyPDF's run, with OCRmyPDF's exit code for it; the message says the fix."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.other_error) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    @classmethod
    def of(cls, exc: HwdaemonError) -> HwdaemonEngineError:
        """A bad config is OCRmyPDF's invalid_config (9); missing weights or plugins missing_dependency (3)."""
        if isinstance(exc, ConfigError):
            return cls(f"hwdaemon: {exc}", ExitCode.invalid_config)
        if isinstance(exc, ModelMissingError | PluginError):
            return cls(f"hwdaemon: {exc}", ExitCode.missing_dependency)
        return cls(f"hwdaemon: {exc}", ExitCode.input_file if isinstance(exc, InputFileError) else ExitCode.other_error)


class HwdaemonEngine(OcrEngine):
    """OCRmyPDF's OcrEngine, backed by a hwdaemon profile's pipeline."""

    @staticmethod
    def version() -> str:
        return __version__

    @staticmethod
    def creator_tag(options: OcrOptions) -> str:
        return f"hwdaemon {__version__} (profile {_options(options).profile})"

    def __str__(self) -> str:
        return f"hwdaemon {__version__}"

    @staticmethod
    def languages(options: OcrOptions) -> set[str]:
        return set(LANGUAGES)

    @staticmethod
    def get_orientation(input_file: Path, options: OcrOptions) -> OrientationConfidence:
        """None to correct: the pipeline finds the page's orientation itself and answers in the image's frame."""
        return OrientationConfidence(angle=0, confidence=0.0)

    @staticmethod
    def get_deskew(input_file: Path, options: OcrOptions) -> float:
        return 0.0

    @staticmethod
    def supports_generate_ocr() -> bool:
        return True

    @staticmethod
    def generate_ocr(input_file: Path, options: OcrOptions, page_number: int = 0) -> tuple[OcrElement, str]:
        """The page image read by the pipeline, as OCRmyPDF's page tree and plain text."""
        from hwdaemon.searchable_pdf import ocr_page

        result = _read(_original_image(input_file, options, page_number + 1), options)
        page = ocr_page(result.pages[0])
        page.page_number = page_number
        return page, result.text

    @staticmethod
    def generate_hocr(input_file: Path, output_hocr: Path, output_text: Path, options: OcrOptions) -> None:
        """hOCR of the page (hwdaemon's `hocr` export) and its text, for OCRmyPDF's hOCR renderers."""
        from hwdaemon.export import render

        result = _read(input_file, options)
        output_hocr.write_text(render(result, "hocr"), encoding="utf-8")
        output_text.write_text(result.text, encoding="utf-8")

    @staticmethod
    def generate_pdf(input_file: Path, output_pdf: Path, output_text: Path, options: OcrOptions) -> None:
        """A text-only PDF the size of the image (at its dpi), for `--pdf-renderer sandwich`.

        OCRmyPDF 17's renderer places each word (hwdaemon's `pdf` export uses it too);
        16 has none, so there the page's hOCR goes through 16's own hOCR transform.
        """
        result = _read(input_file, options)
        if HAS_OPTION_MODELS:
            from hwdaemon.searchable_pdf import text_layer_pdf

            output_pdf.write_bytes(text_layer_pdf(result))
        else:
            from ocrmypdf.hocrtransform import HocrTransform  # type: ignore[attr-defined]  # OCRmyPDF 16 only

            from hwdaemon.export import render
            from hwdaemon.searchable_pdf import ASSUMED_IMAGE_DPI

            hocr = output_pdf.with_suffix(".hwdaemon.hocr")
            hocr.write_text(render(result, "hocr"), encoding="utf-8")
            dpi = result.pages[0].dpi or ASSUMED_IMAGE_DPI
            HocrTransform(hocr_filename=hocr, dpi=dpi).to_pdf(out_filename=output_pdf)
        output_text.write_text(result.text, encoding="utf-8")


@hookimpl
def add_options(parser: ArgumentParser) -> None:
    group = parser.add_argument_group("hwdaemon", "Handwriting OCR by hwdaemon (plugin hwdaemon.ocrmypdf)")
    group.add_argument("--hwdaemon-profile", default="default", help="hwdaemon profile (pipeline) to read with")
    group.add_argument(
        "--hwdaemon-config", default=None, help="hwdaemon config file (YAML) defining the profile; default: built-in"
    )


@hookimpl
def check_options(options: OcrOptions) -> None:
    """Fail before any page is rasterised when the profile, config or model is wrong."""
    settings = _options(options)
    _pipeline(settings.config, settings.profile)


if HAS_OPTION_MODELS:

    @hookimpl
    def register_options() -> dict[str, type[BaseModel]]:
        return {ENGINE_NAME: HwdaemonOptions}

    @hookimpl
    def get_ocr_engine(options: OcrOptions | None) -> OcrEngine | None:
        if options is not None and getattr(options, "ocr_engine", "auto") not in ("auto", ENGINE_NAME):
            return None
        return HwdaemonEngine()

else:

    @hookimpl(tryfirst=True)
    def get_ocr_engine() -> OcrEngine | None:  # type: ignore[misc]  # OCRmyPDF 16's spec has no options
        """OCRmyPDF 16 has no --ocr-engine: the engine of the last plugin loaded wins, and that is this one."""
        return HwdaemonEngine()


def _options(options: OcrOptions) -> HwdaemonOptions:
    """OCRmyPDF 17 fills `options.hwdaemon` from register_options; 16 leaves `--hwdaemon-*` flat on its namespace."""
    settings = getattr(options, ENGINE_NAME, None)
    if isinstance(settings, HwdaemonOptions):
        return settings
    profile = getattr(options, "hwdaemon_profile", None)
    return HwdaemonOptions(profile=profile or "default", config=getattr(options, "hwdaemon_config", None))


def _original_image(raster: Path, options: OcrOptions, page_number: int) -> Path:
    """The page's own JPEG when the page is exactly one, as large as OCRmyPDF's rasterisation; else the raster.

    OCRmyPDF hands the engine its re-rendering of the page, whose pixels differ from
    the scan's (a mean of 4 grey levels on a dev page, from another JPEG decoder):
    enough to read a hard hand differently from `hwdaemon process` on the same scan.
    Reading the embedded JPEG itself reads what the scanner wrote; same size, so the
    coordinates are the raster's.
    """
    import pikepdf
    from PIL import Image

    source = options.input_file
    if not isinstance(source, str | Path):  # a stream (stdin): only the raster
        return raster
    try:
        with pikepdf.open(source) as pdf:
            page = pdf.pages[page_number - 1]  # pikepdf 10.18 deprecates .images for get_images()
            images = list((page.get_images() if hasattr(page, "get_images") else page.images).values())
            if len(images) != 1 or images[0].get("/Filter") != pikepdf.Name.DCTDecode:
                return raster
            jpeg = raster.with_suffix(".original.jpg")
            jpeg.write_bytes(images[0].read_raw_bytes())
        with Image.open(jpeg) as original, Image.open(raster) as rendered:
            return jpeg if original.size == rendered.size else raster
    except (pikepdf.PdfError, OSError, IndexError, AttributeError, TypeError, ValueError):
        return raster


def _read(image: Path, options: OcrOptions) -> Result:
    from hwdaemon.inputs import open_document

    settings = _options(options)
    pipeline, inputs = _pipeline(settings.config, settings.profile)
    try:
        with open_document(image, inputs) as document:
            return pipeline.run(document)
    except HwdaemonError as exc:
        raise HwdaemonEngineError.of(exc) from exc


@functools.cache
def _pipeline(config_path: str | None, profile: str) -> tuple[Pipeline, InputsConfig]:
    """The profile's pipeline and the config's input limits, built once per process (workers each build their own)."""
    from hwdaemon.config import load_config
    from hwdaemon.pipeline import ready_pipeline
    from hwdaemon.plugins import build_registry

    try:
        registry = build_registry()
        config = load_config(Path(config_path) if config_path else None, registry)
        pipeline = ready_pipeline(config, registry, profile)
    except HwdaemonError as exc:
        raise HwdaemonEngineError.of(exc) from exc
    return pipeline, config.inputs
