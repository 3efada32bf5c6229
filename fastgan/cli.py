"""The `fastgan` command line. Heavy imports (torch, accelerate, DALI) happen inside commands,
so `fastgan --help` answers instantly.

The help follows the habits of other command lines (git, pip, StyleGAN2-ADA's click scripts):
`-h` and `--help`, `--version`, flags shown without a value, and placeholders in capitals
(`SOURCE`, `--out FILE`) instead of Typer's `{source}` and `<list[str]>` (`Command`, `Group`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from fastgan.errors import FastganError, UsageError

QUICKSTART = "fastgan train fashion-r3gan"
PLACEHOLDERS = {"Path": "PATH", "int": "N", "float": "NUMBER", "str": "TEXT"}


class PlainArgument(TyperArgument):
    def display_type_rich(self, ctx: Any) -> str | None:
        return None  # the name says it: SOURCE, CONFIG


def plain(param: Any) -> None:
    """Show `param` as other command lines do: a flag alone, a value as one capitalised word."""
    if isinstance(param, TyperOption):
        if param.is_flag:
            param.metavar = ""
        elif param.metavar is None:
            choices = param.type_descriptor.choices
            name = getattr(param.type_descriptor.annotation, "__name__", "")
            param.metavar = "|".join(str(getattr(c, "value", c)) for c in choices) if choices else PLACEHOLDERS.get(name, "VALUE")
    elif isinstance(param, TyperArgument):
        param.metavar = param.metavar or (param.name or "").upper()
        param.__class__ = PlainArgument  # only the help changes: the type column is dropped


class PlainHelp:
    """Options and arguments shown plainly (`plain`), the help option included."""

    params: list[Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            plain(param)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            plain(option)
        return option


class Command(PlainHelp, TyperCommand):
    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """`fastgan sample [OPTIONS] SOURCE`, `fastgan train [OPTIONS] [CONFIG]`."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = (param.metavar or "") + ("..." if param.nargs != 1 else "")
                pieces.append(name if param.required else f"[{name}]")
        return pieces


class Group(PlainHelp, TyperGroup):
    pass


HELP = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(
    cls=Group,
    context_settings=HELP,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help=f"fastgan: train GANs fast, on one CPU, one GPU or many. Start with: {QUICKSTART} (fastgan presets lists the presets)",
)


def show_version(value: bool) -> None:
    if value:
        import fastgan

        typer.echo(f"fastgan {fastgan.__version__}")
        raise typer.Exit()


VersionOption = Annotated[bool, typer.Option("--version", help="Print fastgan's version and exit", callback=show_version, is_eager=True)]


@app.callback()
def options(version: VersionOption = False) -> None:
    pass


F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Bad input and failed runs become one line on stderr and their exit code (fastgan.errors), with no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except FastganError as e:
            if str(e):  # empty: another process of the run already said it
                typer.echo(f"{e.prefix}{e}", err=True)
            raise typer.Exit(e.exit_code) from None

    return wrapper  # type: ignore[return-value]


SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set", metavar="KEY=VALUE", help="Override one config value: section.key=value (repeatable), e.g. --set train.batch_size=128"
    ),
]


@app.command(cls=Command)
@user_errors
def train(
    config: Annotated[
        Path | None,
        typer.Argument(help="A preset by name, e.g. fashion-r3gan (the quickstart; fastgan presets lists all), or a TOML file"),
    ] = None,
    set_: SetOption = None,
    out: Annotated[Path | None, typer.Option("--out", metavar="RUN", help="Run folder (default: runs/<preset>-<time>)")] = None,
    resume: Annotated[
        Path | None, typer.Option("--resume", metavar="RUN", help="Continue the run in this folder from its newest checkpoint")
    ] = None,
    from_: Annotated[
        str | None,
        typer.Option(
            "--from", metavar="CHECKPOINT", help="With --resume: the checkpoint to continue from, e.g. nimg-000060000 (default: the newest)"
        ),
    ] = None,
    auto_resume: Annotated[
        bool,
        typer.Option("--auto-resume", help="With CONFIG --out RUN: continue RUN if it has a checkpoint, else start it (for schedulers)"),
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the resolved config and exit")] = False,
    init: Annotated[
        Path | None,
        typer.Option(
            "--init",
            metavar="RUN|CHECKPOINT|FILE",
            help="Fine-tune: a new run starting from the G, D and G_ema of this run, checkpoint or generator.safetensors",
        ),
    ] = None,
) -> None:
    """Train a GAN from a config preset."""
    from fastgan.commands.train import TrainArgs, run_train

    run_train(TrainArgs(config, set_ or [], out, resume, from_, auto_resume, dry_run, init))


SigmaRelOption = Annotated[
    float | None,
    typer.Option("--sigma-rel", help="Post-hoc EMA: G_ema rebuilt for this sigma_rel from the run's snapshots (SOURCE: a run folder)"),
]


@app.command(cls=Command)
@user_errors
def sample(
    source: Annotated[Path, typer.Argument(help="A run folder, a checkpoint folder, or a generator.safetensors")],
    n: Annotated[int | None, typer.Option("--n", min=1, help="How many images (default 64, or what --grid holds)")] = None,
    out: Annotated[
        str,
        typer.Option(
            "--out",
            metavar="FILE|DIR/",
            help="FILE.png (a grid), FILE.npy (uint8 [N, C, H, W]), DIR/ (one PNG per image), FILE.gif (walks: one frame per step)",
        ),
    ] = "samples.png",
    seed: Annotated[int, typer.Option("--seed", help="Seed for the latents")] = 0,
    truncation: Annotated[
        float, typer.Option("--truncation", help="psi in [0, 1]: scale z toward its mean; lower = more typical, less diverse")
    ] = 1.0,
    grid: Annotated[str | None, typer.Option("--grid", metavar="RxC", help="The .png grid's rows x columns, e.g. 4x8")] = None,
    interpolate: Annotated[
        int | None, typer.Option("--interpolate", help="Write this many rows instead, each a walk between two random latents")
    ] = None,
    steps: Annotated[
        int | None, typer.Option("--steps", help="Images per walk, both ends included (with --interpolate; default 8)")
    ] = None,
    between_classes: Annotated[
        bool, typer.Option("--between-classes", help="Conditional models: walk from class i to class i+1 with z fixed (with --interpolate)")
    ] = False,
    sigma_rel: SigmaRelOption = None,
) -> None:
    """Write samples of the EMA generator: a PNG grid, a .npy array or a folder of PNGs; or latent walks with --interpolate."""
    if interpolate is None:
        if steps is not None or between_classes:
            raise UsageError("--steps and --between-classes shape a walk; add --interpolate N (the number of walks)")
        from fastgan.commands.sample import run_sample

        run_sample(source, n, out, seed, truncation, grid, sigma_rel)
        return
    if n is not None:
        raise UsageError(
            f"--n and --interpolate both set how many images; with --interpolate {interpolate} there are {interpolate} x --steps"
        )
    if grid is not None:
        raise UsageError(f"--grid shapes a sample grid; walks are laid out as --interpolate {interpolate} rows of --steps images")
    from fastgan.commands.sample import run_interpolation

    run_interpolation(source, interpolate, 8 if steps is None else steps, out, seed, between_classes, truncation, sigma_rel)


@app.command(cls=Command)
@user_errors
def export(
    source: Annotated[Path, typer.Argument(help="A run folder, a checkpoint folder, or a generator.safetensors")],
    onnx: Annotated[
        Path,
        typer.Option("--onnx", metavar="FILE.onnx", help="The ONNX file: z (+ labels) -> float32 images [N, C, H, W] in [-1, 1], any N"),
    ],
    sigma_rel: SigmaRelOption = None,
) -> None:
    """Write the EMA generator as an ONNX file, to sample with numpy and onnxruntime alone (docs/export.md)."""
    from fastgan.commands.export import run_export

    run_export(source, onnx, sigma_rel)


class Split(StrEnum):
    train = "train"
    test = "test"


class Features(StrEnum):
    fashion = "fashion"
    inception = "inception"


@app.command("eval", cls=Command)
@user_errors
def evaluate(
    source: Annotated[Path, typer.Argument(help="A run folder, a checkpoint folder, or a generator.safetensors")],
    metrics: Annotated[str, typer.Option("--metrics", metavar="LIST", help="Comma-separated, from: fd, kid, pr")] = "fd,kid,pr",
    n: Annotated[
        int, typer.Option("--n", min=10, help="Generated images, and real images (up to the split's size)")
    ] = 10_000,  # eval.DEFAULT_N
    split: Annotated[Split, typer.Option("--split", help="The real split to compare with")] = Split.test,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the latents")] = 0,
    features: Annotated[
        Features, typer.Option("--features", help="fashion: the shipped 28x28 CNN (offline); inception: the TorchScript Inception-v3")
    ] = Features.fashion,
    weights: Annotated[
        Path | None, typer.Option("--weights", metavar="FILE", help="--features inception: path to inception-2015-12-05.pt")
    ] = None,
    weights_sha256: Annotated[
        str | None,
        typer.Option("--weights-sha256", metavar="HEX", help="Accept --weights with this SHA-256 instead of the published file's"),
    ] = None,
    truncation: Annotated[
        float,
        typer.Option("--truncation", help="psi in [0, 1] for the generated latents; written beside the others (eval-truncation-PSI.json)"),
    ] = 1.0,
    sigma_rel: Annotated[
        str | None,
        typer.Option("--sigma-rel", metavar="LIST", help="Post-hoc EMA: score G_ema rebuilt for each, e.g. 0.05,0.07,0.10; names the best"),
    ] = None,
) -> None:
    """FD, KID and precision/recall of the EMA generator, beside the real-vs-real floor; writes eval.json."""
    if sigma_rel is not None:
        from fastgan.commands.ema import run_eval_posthoc

        run_eval_posthoc(source, sigma_rel, metrics, n, split.value, seed, truncation, features.value, weights, weights_sha256)
        return
    from fastgan.commands.eval import run_eval

    run_eval(source, metrics, n, split.value, seed, truncation, features.value, weights, weights_sha256)


@app.command(cls=Command)
@user_errors
def ema(
    run: Annotated[Path, typer.Argument(help="A run folder trained with train.phema_every > 0 (its snapshots are in RUN/phema/)")],
    sigma_rel: Annotated[float, typer.Option("--sigma-rel", help="EMA length relative to training time, e.g. 0.07")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", metavar="FILE", help="The .safetensors to write, config.toml beside it (default: RUN/posthoc-ema/sSIGMA/...)"
        ),
    ] = None,
) -> None:
    """Post-hoc EMA: rebuild G_ema for any sigma_rel from the run's snapshots (EDM2's least squares) and export it."""
    from fastgan.commands.ema import run_ema

    run_ema(run, sigma_rel, out)


@app.command(cls=Command)
@user_errors
def report(
    paths: Annotated[list[Path], typer.Argument(help="Run folders to compare, and any bench.json files from `fastgan bench --out`")],
    out: Annotated[Path, typer.Option("--out", metavar="FILE", help="The HTML file to write")] = Path("report.html"),
    sigma_rel: Annotated[
        float | None,
        typer.Option("--sigma-rel", help="Post-hoc EMA: beside each latest grid, G_ema rebuilt for this sigma_rel (runs with snapshots)"),
    ] = None,
) -> None:
    """One self-contained HTML page: config differences, curves, sample timelines, warnings, bench results."""
    from fastgan.commands.report import run_report

    run_report(paths, out, sigma_rel)


@app.command(cls=Command)
@user_errors
def info() -> None:
    """Print versions, the CPU and devices, what they support (bf16, compile), and the optional parts installed."""
    from fastgan.commands.info import run_info

    run_info()


@app.command(cls=Command)
@user_errors
def presets() -> None:
    """List the presets that train and bench take by name, one line each."""
    from fastgan.commands.presets import run_presets

    run_presets()


data_app = typer.Typer(cls=Group, no_args_is_help=True, help="Check a folder of images, or convert it once into an array file.")
app.add_typer(data_app, name="data")


@data_app.command("check", cls=Command)
@user_errors
def data_check(
    path: Annotated[Path, typer.Argument(help="A folder of images, flat or one sub-folder per class")],
) -> None:
    """Decode every image fully and list each bad file with its reason; exit code 2 if any is bad."""
    from fastgan.commands.data import run_check

    run_check(path)


@data_app.command("prepare", cls=Command)
@user_errors
def data_prepare(
    src: Annotated[Path, typer.Argument(help="A folder of images, flat or one sub-folder per class")],
    dst: Annotated[Path, typer.Argument(help="The array file to write, DST.npy; its labels go to DST.json")],
    resolution: Annotated[int, typer.Option("--resolution", help="Square side in pixels, e.g. 64")],
    channels: Annotated[int, typer.Option("--channels", help="1 (grey) or 3 (RGB)")] = 3,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip undecodable files instead of failing")] = False,
) -> None:
    """Convert a folder once into uint8 [N, C, R, R] (train with --set data.source=npy:DST)."""
    from fastgan.commands.data import run_prepare

    run_prepare(src, dst, resolution, channels, skip_bad)


@app.command(cls=Command)
@user_errors
def bench(
    config: Annotated[Path | None, typer.Argument(help="A preset by name or a TOML file (default: mnist-dcgan)")] = None,
    set_: SetOption = None,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Timed steps per window")] = 20,
    windows: Annotated[int, typer.Option("--windows", min=1, help="Timed windows; the median is reported")] = 5,
    warmup: Annotated[int, typer.Option("--warmup", min=1, help="Untimed steps first (compile happens here)")] = 5,
    batch: Annotated[
        str | None,
        typer.Option(
            "--batch", metavar="N|LIST", help="Global batch size (default: the config's), or a list 128,256,1024 for a batch-scaling table"
        ),
    ] = None,
    ladder: Annotated[str | None, typer.Option("--ladder", metavar="LIST", help="Comma-separated rungs to run (default: all)")] = None,
    grid: Annotated[
        bool, typer.Option("--grid", help="Every combination of precision, compile mode and channels_last instead of the ladder")
    ] = False,
    cells: Annotated[
        str | None,
        typer.Option("--cells", metavar="LIST", help="With --grid: only these cells, e.g. bf16/off/channels_last,no/default/contiguous"),
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option("--budget", metavar="SECONDS", help="Seconds for the whole --grid or --batch list; later cells: not run"),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", metavar="DIR", help="Write bench.json/md/png here (grid.* with --grid, batches.* with a --batch list)"),
    ] = None,
    processes: Annotated[
        str | None, typer.Option("--processes", metavar="LIST", help="Scaling: process counts, e.g. 1,2 (each under accelerate launch)")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json-out", hidden=True)] = None,
    rung_seconds: Annotated[
        float, typer.Option("--rung-seconds", help="Time box per rung or cell, warm-up and compile included; a rung stops timing there")
    ] = 90.0,
) -> None:
    """Measure training images/s and MFU for a ladder of optimisations against the eager baseline, a grid, or batch sizes."""
    from fastgan.commands.bench import run_bench

    run_bench(
        config,
        set_ or [],
        steps=steps,
        windows=windows,
        warmup=warmup,
        batch=batch,
        ladder=ladder,
        out=out,
        processes=processes,
        json_out=json_out,
        rung_seconds=rung_seconds,
        grid=grid,
        budget=budget,
        cells=cells,
    )


def main() -> None:
    app(prog_name="fastgan")


if __name__ == "__main__":  # pragma: no cover
    main()
