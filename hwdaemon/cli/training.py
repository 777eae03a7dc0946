"""Commands that make models: fine-tune the recognizer (on public data or on corrections), train the line detector, pack and average.

torch is imported by the commands that train, never at module load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import structlog
from click.core import ParameterSource

from hwdaemon.cli.loading import CONFIG_OPTION, build_pipeline, load, open_store
from hwdaemon.errors import ConfigError
from hwdaemon.logging import configure_logging
from hwdaemon.training.options import TrainingOptions
from hwdaemon.yamlfile import parse_yaml


@click.command()
@click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="REPO=PATH",
    help="Training data: owner/repo=PATH, PATH an ALTO/PAGE .xml, a folder of them, or a manifest .jsonl. Repeatable.",
)
@click.option(
    "--exclusions",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="DO-NOT-TRAIN.tsv: documents that must never be trained on (required with --source).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run folder: checkpoint.pt, model/ (best), train.jsonl log.",
)
@click.option(
    "--from-corrections",
    is_flag=True,
    help="Fine-tune PROFILE's model on lines approved on the review page (or --manifest).",
)
@click.option(
    "--profile",
    default="default",
    show_default=True,
    help="With --from-corrections: whose model learns and is replaced.",
)
@click.option(
    "--manifest",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With --from-corrections: labelled lines of your own (manifest.jsonl) instead of the review page's.",
)
@CONFIG_OPTION
@click.option(
    "--options",
    "options_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML file of these options, keyed by their names with underscores (batch_size: 32, sources: [REPO=PATH, …]); "
    "options given here win over it.",
)
@click.option(
    "--epochs", type=float, help="May be fractional (0.5 = half an epoch). Default 1, or 10 with --from-corrections."
)
@click.option("--batch-size", type=int, help="Lines per step. Default 16, or 8 with --from-corrections.")
@click.option("--learning-rate", type=float, help="Default 3e-4.")
@click.option(
    "--validation-fraction",
    type=float,
    default=0.05,
    show_default=True,
    help="Documents held back to choose the best epoch.",
)
@click.option(
    "--holdout-fraction",
    type=float,
    default=0.25,
    show_default=True,
    help="With --from-corrections: your documents held back to judge the new model.",
)
@click.option(
    "--max-repeats",
    type=int,
    default=3,
    show_default=True,
    help="Keep a line text at most this often (boilerplate on every form).",
)
@click.option(
    "--drop-pattern",
    "drop_patterns",
    multiple=True,
    help="Regex; lines whose text matches are dropped (e.g. file ids).",
)
@click.option("--max-minutes", type=float, help="Stop (with a checkpoint) after this long; run again to resume.")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda.")
@click.option(
    "--base",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Continue from one of our model folders instead of english_g2.",
)
@click.option(
    "--synthetic", type=int, default=0, show_default=True, help="Add this many lines rendered in handwriting fonts."
)
@click.option(
    "--font",
    "fonts",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A font for --synthetic (.ttf/.otf/.woff); repeatable. Default: the Debian handwriting fonts installed.",
)
@click.option(
    "--synthetic-language",
    "synthetic_languages",
    multiple=True,
    default=("en",),
    show_default=True,
    help="Dictionary the synthetic words come from (en, fr, de, es, it, …); repeatable.",
)
@click.option(
    "--line-type",
    "line_types",
    multiple=True,
    metavar="REPO=TYPE",
    help="Keep only REPO's lines tagged TYPE in its XML (e.g. Handwritten; Stanford mixes in typescript). Repeatable.",
)
@click.option(
    "--oversample",
    "oversample",
    multiple=True,
    metavar="REPO=N",
    help="Repeat REPO's training lines N times per epoch (a small source). Repeatable.",
)
@click.option(
    "--schedule",
    type=click.Choice(["constant", "cosine"]),
    default="constant",
    show_default=True,
    help="Learning rate: constant, or cosine decay to 5% over the run.",
)
@click.option(
    "--trained-layers",
    type=click.Choice(["all", "recurrent"]),
    help="With --from-corrections: all layers (the default), or only the recurrent and output layers "
    "(faster, reads worse: docs/accuracy.md).",
)
@click.option(
    "--augment-strength",
    type=click.FloatRange(min=0),
    help="With --from-corrections: scale the augmentation (slant, size, blur, ink); 0 none, 1 the default.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Vary the synthetic lines, batch order and augmentation (a run continued from another sees new ones). "
    "The documents held out for validation stay the same.",
)
@click.option(
    "--workers",
    type=int,
    default=0,
    show_default=True,
    help="Processes that render synthetic lines and prepare batches beside training; a GPU needs several to stay busy. "
    "They change nothing in what is learnt.",
)
@click.pass_context
def train(ctx: click.Context, /, config_path: Path | None, options_file: Path | None, **flags: Any) -> None:  # fmt: skip
    """Fine-tune the handwriting recognizer on labelled lines; resumes an interrupted run.

    From public data: `--source … --exclusions … --out DIR` starts from english_g2;
    evaluation documents on the exclusion list are never loaded. The best model by
    validation CER lands in OUT/model; use it with
    `recognizer: {type: handwriting, model_dir: OUT/model}` and measure it with `hwdaemon eval`.

    From your corrections: `--from-corrections [--profile NAME]` fine-tunes the
    profile's current model on the lines approved on the review page (or
    `--manifest`), holds back some of your documents, and installs the new model
    for that profile only if it reads them better; otherwise it changes nothing.

    Examples:
      hwdaemon train --source banq-dcn/Copiste-d-un-jour=copiste/alto --exclusions DO-NOT-TRAIN.tsv --out runs/v1
      hwdaemon train --from-corrections --profile default --config /etc/hwdaemon/config.yaml
      hwdaemon train --options runs/v2.yaml --max-minutes 60
    """
    options = training_options(ctx, options_file, flags)
    configure_logging("info")
    if options.from_corrections:
        report = _train_from_corrections(config_path, options)
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
        if not report["installed"]:
            click.echo(
                f"kept the current model: neither the fine-tuned one nor its mean with the current one read your held-back "
                f"lines better (CER {report['fine_tuned_cer']:.1%} and {report['mean_cer']:.1%} vs {report['current_cer']:.1%})", err=True,
            )  # fmt: skip
        return
    if not options.sources or options.exclusions is None or options.out is None:
        raise click.UsageError(
            "training from public data needs --source, --exclusions and --out (or use --from-corrections)"
        )
    from hwdaemon.training.run import run_training

    click.echo(json.dumps(run_training(options.public_data_request()), indent=2, ensure_ascii=False))


def training_options(ctx: click.Context, options_file: Path | None, flags: dict[str, Any]) -> TrainingOptions:
    """The options the flags give, over those of `options_file`, over the defaults."""
    values = {name: _typed(name, value) for name, value in flags.items()}
    if options_file is not None:
        from_file = _read_options_file(ctx, options_file)
        values |= {
            name: value
            for name, value in from_file.items()
            if ctx.get_parameter_source(name) is ParameterSource.DEFAULT
        }
    return TrainingOptions(**values)


def _read_options_file(ctx: click.Context, path: Path) -> dict[str, Any]:
    """An options file's values, converted and checked as the same flags would be; ConfigError (78) naming the line and key."""
    document = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    if not isinstance(document.data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of option names (batch_size:, sources:, …)")
    params = {param.name: param for param in ctx.command.params if param.name in TrainingOptions.names()}
    values = {}
    for name, raw in document.data.items():
        if name not in params:
            raise ConfigError(
                f"{document.where((name,))}: not a training option; use one of {', '.join(sorted(params))}"
            )
        param = params[name]
        try:
            values[name] = _typed(
                name, param.type_cast_value(ctx, [raw] if param.multiple and isinstance(raw, str) else raw)
            )
        except click.BadParameter as exc:
            raise ConfigError(f"{document.where((name,))}: {exc.message}") from exc
        except (TypeError, ValueError) as exc:  # a list or mapping where one value goes
            raise ConfigError(f"{document.where((name,))}: {raw!r} is not a valid {param.type.name}") from exc
    return values


def _typed(name: str, value: Any) -> Any:
    """A flag's value as TrainingOptions holds it: `REPO=…` pairs parsed, repeated options as tuples."""
    if name == "sources":
        return tuple((repository, Path(path)) for repository, path in _repository_pairs(value, "--source"))
    if name == "line_types":
        return _line_types(value)
    if name == "oversample":
        return _oversample(value)
    return tuple(value) if isinstance(value, list | tuple) else value


def _train_from_corrections(config_path: Path | None, options: TrainingOptions) -> dict[str, Any]:
    from hwdaemon.builtins.recognizers.handwriting import HandwritingRecognizer
    from hwdaemon.training.corrections import (
        CorrectionsRequest,
        approved_lines,
        check_profile_reads_handwriting,
        learn_from_corrections,
        manifest_lines,
    )
    from hwdaemon.training.data import guard
    from hwdaemon.training.exclusion import ExclusionList

    config, registry = load(config_path)
    profile = options.profile
    check_profile_reads_handwriting(config.profile(profile).recognizer.type, profile)
    recognizer = build_pipeline(config, registry, profile).recognizer
    assert isinstance(recognizer, HandwritingRecognizer)
    if options.manifest is not None:
        samples = manifest_lines(options.manifest)
    else:
        store = open_store(config)
        try:
            samples = approved_lines(store, config.state_dir, profile)
        finally:
            store.close()
    if options.exclusions is not None:
        guard(samples, ExclusionList.load(options.exclusions))
    explicit = recognizer.options.model_dir
    assert config.models.trained_dir is not None
    install_to = explicit.resolve() if explicit is not None else config.models.trained_dir / profile / "handwriting"
    work_dir = config.state_dir / "training"
    work_dir.mkdir(parents=True, exist_ok=True)
    request = CorrectionsRequest(
        profile,
        recognizer.model_dir(),
        install_to,
        samples,
        work_dir,
        options.holdout_fraction,
        options.corrections_settings(),
    )
    return learn_from_corrections(request)


@click.command("train-segmenter")
@click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="REPO=PATH",
    help="Pages: owner/repo=FOLDER, a clone of an ALTO/PAGE set with its images. Repeatable.",
)
@click.option(
    "--exclusions",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="DO-NOT-TRAIN.tsv: documents that must never be trained on (required with --source).",
)
@click.option(
    "--from-approved",
    "approved_profiles",
    multiple=True,
    metavar="PROFILE",
    help="Also the pages approved on the review page for PROFILE (with --config), with the lines as reviewers fixed them. Repeatable.",
)
@CONFIG_OPTION
@click.option(
    "--skip-pages",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File names of pages to leave out, one per line (those benchmarks/segmentation.py measures: --write-pages).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Run folder: checkpoint.pt, model/ (best), train.jsonl log.",
)
@click.option(
    "--minutes",
    type=float,
    default=40.0,
    show_default=True,
    help="Train this long in all; run again with more to go on.",
)
@click.option(
    "--validation-fraction",
    type=float,
    default=0.1,
    show_default=True,
    help="Pages held back to choose the best checkpoint, in tenths.",
)
@click.option("--seed", type=int, default=1, show_default=True)
def train_segmenter(
    sources: tuple[str, ...],
    exclusions: Path | None,
    approved_profiles: tuple[str, ...],
    config_path: Path | None,
    skip_pages: Path | None,
    out: Path,
    minutes: float,
    validation_fraction: float,
    seed: int,
) -> None:
    """Train the `linenet` line detector on the line polygons of transcribed pages; resumes an interrupted run.

    The best checkpoint by validation loss lands in OUT/model; use it with
    `detector: {type: linenet, model_dir: OUT/model}` and measure it with
    benchmarks/segmentation.py and `hwdaemon eval`.

    With --from-approved PROFILE, the pages reviewers approved for that profile
    train it too (or alone, without --source): their corrected lines are the
    targets, regions marked not text are not.

    Example:
      hwdaemon train-segmenter --source HTR-United/CREMMA-AN-TestamentsDePoilus=CREMMA-AN-TestamentsDePoilus \\
        --exclusions DO-NOT-TRAIN.tsv --skip-pages held-out.txt --out runs/linenet
      hwdaemon train-segmenter --from-approved default --config /etc/hwdaemon/config.yaml --out runs/linenet-mine
    """
    from hwdaemon.training.exclusion import ExclusionList
    from hwdaemon.training.segment import SegmentSettings, approved_pages, load_pages, split_validation
    from hwdaemon.training.segment import train_segmenter as run

    if not sources and not approved_profiles:
        raise click.UsageError(
            "give pages to train on: --source REPO=PATH (with --exclusions) or --from-approved PROFILE"
        )
    if sources and exclusions is None:
        raise click.UsageError("--source needs --exclusions DO-NOT-TRAIN.tsv")

    configure_logging("info")
    log = structlog.get_logger("hwdaemon.train_segmenter")

    def progress(event: dict[str, Any]) -> None:
        log.info(event.pop("event"), **event)

    skip = set(skip_pages.read_text().split()) if skip_pages else set()
    folders = {repository: Path(folder) for repository, folder in _repository_pairs(sources, "--source")}
    pages = load_pages(folders, ExclusionList.load(exclusions), skip, progress) if exclusions else []
    if approved_profiles:
        config, _ = load(config_path)
        for profile in approved_profiles:
            config.profile(profile)  # an unknown name is a ConfigError that lists the profiles
        store = open_store(config)
        try:
            pages += approved_pages(store, config.state_dir, approved_profiles, progress)
        finally:
            store.close()
    training, validation = split_validation(pages, validation_fraction)
    log.info("segmenter_pages", training=len(training), validation=len(validation), skipped=len(skip))
    state = run(training, validation, out, SegmentSettings(minutes=minutes, seed=seed), progress)
    click.echo(json.dumps({"model": str(out / "model"), **state}, indent=2))


@click.command("pack-lines")
@click.option(
    "--source",
    "sources",
    multiple=True,
    required=True,
    metavar="OWNER/REPO=PATH",
    help="As for train: a folder of ALTO/PAGE XML, a file, or a manifest.",
)
@click.option(
    "--exclusions",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="DO-NOT-TRAIN.tsv: documents never loaded.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The pack folder (manifest.jsonl and lines/).",
)
@click.option("--line-type", "line_types", multiple=True, metavar="REPO=TYPE", help="As for train.")
@click.option("--drop-pattern", "drop_patterns", multiple=True, help="As for train.")
@click.option("--max-repeats", type=int, default=3, show_default=True, help="As for train.")
def pack_lines_command(
    sources: tuple[str, ...],
    exclusions: Path,
    out: Path,
    line_types: tuple[str, ...],
    drop_patterns: tuple[str, ...],
    max_repeats: int,
) -> None:
    """Pack training sources' lines into a small folder to carry to a GPU machine.

    Reads the sources as `train` does (the exclusion list and filters applied)
    and writes each line at the network's height as WebP, with a manifest that
    `train --source pack/lines=OUT/manifest.jsonl` reads (repositories and
    documents kept: the exclusion list and the validation hold-out still apply).

    Example:
      hwdaemon pack-lines --source banq-dcn/Copiste-d-un-jour=copiste/alto --exclusions DO-NOT-TRAIN.tsv --out pack
    """
    from hwdaemon.training.exclusion import ExclusionList
    from hwdaemon.training.pack import pack_lines
    from hwdaemon.training.run import load_sources

    configure_logging("info")
    pairs = [(repository, Path(path)) for repository, path in _repository_pairs(sources, "--source")]
    kept_types = {repository: list(types) for repository, types in _line_types(line_types).items()}
    samples, skipped = load_sources(pairs, ExclusionList.load(exclusions), kept_types, max_repeats, list(drop_patterns))
    written = pack_lines(samples, out)
    click.echo(
        json.dumps(
            {
                "lines": len(samples),
                "documents_skipped": skipped,
                "megabytes": round(written / 1e6, 1),
                "manifest": str(out / "manifest.jsonl"),
            }
        )
    )


@click.command("average-models")
@click.argument("folders", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="The new model folder.")
def average_models_command(folders: tuple[Path, ...], out: Path) -> None:
    """Average two or more models fine-tuned from one another into one (a "model soup").

    The mean of runs that continued from the same model is usually better than
    each of them, and reads as fast. Measure it with `hwdaemon eval` before you use it.

    Example:
      hwdaemon average-models hwdaemon/models/handwriting runs/v8/model --out runs/v4/model
    """
    from hwdaemon.training.average import average_models

    click.echo(average_models(list(folders), out))


def _repository_pairs(texts: tuple[str, ...], option: str) -> list[tuple[str, str]]:
    """`owner/repo=VALUE` options as pairs."""
    pairs = []
    for text in texts:
        repository, separator, value = text.partition("=")
        if not separator or not repository or not value:
            raise click.BadParameter(f"{text!r}: write owner/repo=VALUE", param_hint=option)
        pairs.append((repository, value))
    return pairs


def _line_types(texts: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    grouped: dict[str, tuple[str, ...]] = {}
    for repository, line_type in _repository_pairs(texts, "--line-type"):
        grouped[repository] = (*grouped.get(repository, ()), line_type)
    return grouped


def _oversample(texts: tuple[str, ...]) -> dict[str, int]:
    times = {}
    for repository, value in _repository_pairs(texts, "--oversample"):
        if not value.isdigit() or int(value) < 1:
            raise click.BadParameter(f"{value!r}: a whole number of times, 1 or more", param_hint="--oversample")
        times[repository] = int(value)
    return times


COMMANDS = (train, train_segmenter, pack_lines_command, average_models_command)
