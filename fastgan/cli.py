"""The `fastgan` command line. Heavy imports (torch, accelerate, DALI) happen inside commands,
so `fastgan --help` answers instantly."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from fastgan.errors import UsageError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="fastgan: train GANs fast, on one CPU, one GPU or many. Start with: fastgan train configs/fashion-dcgan.toml",
)

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Bad input becomes one line on stderr and exit code 2, with no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UsageError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(e.exit_code) from None

    return wrapper  # type: ignore[return-value]


SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override one config value: section.key=value (repeatable), e.g. --set train.batch_size=128"),
]


@app.command()
@user_errors
def train(
    config: Annotated[Path | None, typer.Argument(help="A TOML preset, e.g. configs/fashion-dcgan.toml")] = None,
    set_: SetOption = None,
    out: Annotated[Path | None, typer.Option("--out", help="Run folder (default: runs/<preset>-<time>)")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Continue the run in this folder from its newest checkpoint")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the resolved config and exit")] = False,
) -> None:
    """Train a GAN from a config preset."""
    from fastgan.commands.train import run_train

    run_train(config, set_ or [], out, resume, dry_run)


@app.command()
@user_errors
def sample(
    source: Annotated[Path, typer.Argument(help="A run folder, a checkpoint folder, or a generator.safetensors")],
    n: Annotated[int, typer.Option("--n", min=1, help="How many images")] = 64,
    out: Annotated[Path, typer.Option("--out", help="FILE.png (a grid) or FILE.npy (uint8 [N, C, H, W])")] = Path("samples.png"),
    seed: Annotated[int, typer.Option("--seed", help="Seed for the latents")] = 0,
) -> None:
    """Write samples of the EMA generator as a PNG grid or a .npy array."""
    from fastgan.commands.sample import run_sample

    run_sample(source, n, out, seed)


@app.command()
@user_errors
def info() -> None:
    """Print versions, devices and what this machine supports (bf16, compile, DALI)."""
    from fastgan.commands.info import run_info

    run_info()


def main() -> None:
    app(prog_name="fastgan")


if __name__ == "__main__":  # pragma: no cover
    main()
