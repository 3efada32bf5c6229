"""What a run tells its user: a progress bar, metrics.jsonl, TensorBoard, and failure warnings.

Only the main process reports. Values arrive once per log interval, already on the host.
Warnings are printed and also appended to warnings.jsonl, so `fastgan report` can show them.
Where stderr is not a terminal (nohup, SLURM, CI) there is no bar: each log line says the
percent done, the elapsed time and an ETA instead, and when log lines are far apart a progress
line comes between them (fastgan.progress: the first within 10 s, then at most every minute).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from fastgan import files
from fastgan.config import Config
from fastgan.progress import LineClock, eta_text
from fastgan.sampling.timeline import TimelineWriter

# Keys shown in the log line and the progress bar, in order.
SHOWN = ("loss_D", "loss_G", "D_real", "D_gen", "gnorm_D", "gnorm_G")


def failure_warnings(values: dict[str, float], cfg: Config) -> list[str]:
    """ganhacks "track failures early": signals that training is going wrong."""
    out: list[str] = []
    for key in ("loss_D", "loss_G"):
        if key in values and not math.isfinite(values[key]):
            out.append(f'{key} is {values[key]}: training diverged (try a lower lr, or precision = "bf16")')
    if cfg.loss.name in ("minimax", "nonsaturating", "lsgan") and values.get("loss_D", 1.0) < 1e-2:
        out.append(f"D loss is {values['loss_D']:.2e}, near 0: D wins and G gets no signal (ganhacks: track failures early)")
    for net in ("D", "G"):
        # The interval's mean, not its max: single-step spikes past 100 are routine early in a
        # healthy DCGAN run (the max stays in metrics.jsonl as gnorm_<net>_max).
        mean = values.get(f"gnorm_{net}", 0.0)
        if mean > cfg.train.warn_grad_norm:
            peak = values.get(f"gnorm_{net}_max", mean)
            out.append(
                f"{net} gradient norm averaged {mean:.0f} (peak {peak:.0f}) over the interval, above train.warn_grad_norm = "
                f"{cfg.train.warn_grad_norm:g}: unstable training (try a lower lr or tricks.label_smoothing)"
            )
    for net in ("D", "G"):
        skipped = values.get(f"skipped_{net}_total", 0.0)
        if skipped > 0:
            nonfinite_loss = values.get(f"nonfinite_loss_{net}_total", 0.0)
            if nonfinite_loss > 0:
                cause = f"{net}'s loss itself was inf/NaN in {nonfinite_loss:.0f}: training is diverging (try a lower optim.{net}.lr)"
            elif cfg.train.precision == "fp16":
                cause = "fp16 overflow in the gradients; the loss scale backs off"
            else:
                cause = "non-finite gradients with a finite loss"
            out.append(f"{skipped:.0f} {net} step(s) skipped: {cause}")
    return out


def json_line(record: dict[str, Any]) -> str:
    """Strict JSON: inf and NaN become null (bare NaN is rejected by strict parsers)."""
    return files.json_text(record, indent=None)


class Reporter:
    def __init__(
        self, run_dir: Path, total_images: int, *, enabled: bool, tensorboard: bool = True, purge_after: int | None = None
    ) -> None:
        """`purge_after`: a resumed run's images seen; TensorBoard hides what an earlier run logged past it."""
        self.run_dir = run_dir
        self.total = total_images
        self.enabled = enabled
        self.console = Console(stderr=True, soft_wrap=True)
        self.progress: Progress | None = None
        self.writer: Any = None
        if enabled and tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if purge_after is None else purge_after + 1
            quiet_tensorboard_thread()
            with tensorboard_errors(run_dir / "tensorboard"):
                self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=purge)
        self.started = time.time()
        self.timeline = TimelineWriter(run_dir / "samples")
        self.lines = LineClock()  # plain progress lines, where there is no bar
        self.start_nimg = 0
        self.carried: dict[str, float] = {}  # values measured between log rows, for the next one

    def start(self, cur_nimg: int) -> None:
        if not self.enabled:
            return
        self.lines, self.start_nimg = LineClock(), cur_nimg
        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("img"),
            TextColumn("{task.fields[speed]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[stats]}"),
            console=self.console,
            transient=False,
            disable=not self.console.is_terminal,  # logs and CI get the per-interval lines only
        )
        self.task = self.progress.add_task("train", total=self.total, completed=cur_nimg, speed="", stats="")
        self.progress.start()

    def advance(self, cur_nimg: int) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=min(cur_nimg, self.total))
        if self.enabled and not self.console.is_terminal and self.lines.due():
            self.lines.said()
            self.console.print(f"[dim]{cur_nimg:>10,} img[/dim]  {self.eta(cur_nimg)}", highlight=False)

    def eta(self, cur_nimg: int) -> str:
        """'42% 1:05 elapsed, ETA 1:30' for this session (a resumed run's rate counts from its resume)."""
        return eta_text(min(cur_nimg, self.total), self.total, self.lines.elapsed(), self.start_nimg)

    def log(self, cur_nimg: int, values: dict[str, float], warnings: list[str]) -> None:
        if not self.enabled:
            return
        shown = {k: values[k] for k in SHOWN if k in values}
        record: dict[str, Any] = {
            "nimg": cur_nimg,
            "time_s": self.elapsed(),
            **{
                k: v
                for k, v in values.items()
                if not (k.endswith("_total") and not k.startswith("skipped")) and not (k.endswith("_max") and not k.startswith("gnorm"))
            },
        }
        if self.writer is not None:
            with tensorboard_errors(self.run_dir / "tensorboard"):
                for k, v in record.items():
                    if k not in ("nimg", "time_s") and v is not None and math.isfinite(v):
                        self.writer.add_scalar(k, v, cur_nimg)
        record.update(self.carried)  # already in TensorBoard at the images seen they were measured at
        self.carried = {}
        files.append_line(self.run_dir / "metrics.jsonl", json_line(record), files.THEN_RESUME)
        text = "  ".join(f"{k} {v:.3f}" for k, v in shown.items())
        if self.progress is not None:
            self.progress.update(self.task, speed=f"{values.get('images_per_s', 0):,.0f} img/s", stats=text)
        line = f"[dim]{cur_nimg:>10,} img[/dim]  {text}  {values.get('images_per_s', 0):,.0f} img/s"
        if not self.console.is_terminal:  # no bar to say how far along the run is: the line says it
            line += f"  {self.eta(cur_nimg)}"
            self.lines.said()
        self.console.print(line, highlight=False)
        for w in warnings:
            self.warn(cur_nimg, w)

    def scalar(self, cur_nimg: int, name: str, value: float) -> None:
        if self.writer is not None:
            with tensorboard_errors(self.run_dir / "tensorboard"):
                self.writer.add_scalar(name, value, cur_nimg)

    def carry(self, cur_nimg: int, name: str, value: float) -> None:
        """A value measured at its own interval (e.g. a sample grid's diversity): TensorBoard now,
        and metrics.jsonl in the next log row, so that file keeps one row per log interval. The
        final log row comes before the final grid, so the final value reaches TensorBoard only."""
        self.scalar(cur_nimg, name, value)
        self.carried[name] = value

    def metrics(self, cur_nimg: int, values: dict[str, float]) -> None:
        """Extra values at their own interval (e.g. in-training FD): jsonl and TensorBoard."""
        if not self.enabled:
            return
        record = {"nimg": cur_nimg, "time_s": self.elapsed(), **values}
        files.append_line(self.run_dir / "metrics.jsonl", json_line(record), files.THEN_RESUME)
        for k, v in values.items():
            self.scalar(cur_nimg, k, v)

    def grid(self, cur_nimg: int, image_hwc: Any) -> None:
        """A fixed-z sample grid, uint8 [H, W, C] (numpy), just saved to samples/: to TensorBoard
        at its images-seen step, and into samples/timeline.gif."""
        if not self.enabled:
            return
        if self.writer is not None:
            with tensorboard_errors(self.run_dir / "tensorboard"):
                self.writer.add_image("samples", image_hwc, cur_nimg, dataformats="HWC")
        self.timeline.update()

    def elapsed(self) -> float:
        """Seconds since this process started reporting (a resumed run starts again from 0)."""
        return round(time.time() - self.started, 3)

    def warn(self, cur_nimg: int, message: str) -> None:
        if self.enabled:
            self.console.print(f"[yellow]warning[/yellow] at {cur_nimg:,} img: {message}", highlight=False)
            record = {"nimg": cur_nimg, "time_s": self.elapsed(), "message": message}
            files.append_line(self.run_dir / "warnings.jsonl", json_line(record), files.THEN_RESUME)

    def finish(self, cur_nimg: int) -> None:
        if self.progress is not None:
            self.progress.stop()
        if self.enabled:
            self.timeline.flush()
        if self.writer is not None:
            with tensorboard_errors(self.run_dir / "tensorboard"):
                self.writer.close()


@contextlib.contextmanager
def tensorboard_errors(folder: Path) -> Iterator[None]:
    """TensorBoard's writer raises a full disk without a file name (its thread wrote the file):
    name the newest event file, so the run's one line says which file (fastgan.run.session)."""
    try:
        yield
    except OSError as e:
        if e.filename is None:
            events = sorted(folder.glob("events.out.tfevents.*"), key=lambda f: f.stat().st_mtime)
            e.filename = str(events[-1] if events else folder / "events.out.tfevents.*")  # not made yet: its pattern
        raise


def quiet_tensorboard_thread() -> None:
    """TensorBoard's writer thread prints the traceback of an OSError (a full disk) before the
    writer raises it again in the main thread, where it becomes one line: keep the one line."""
    previous = threading.excepthook
    if getattr(previous, "fastgan_quiet", False):
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        if type(args.thread).__name__ == "_AsyncWriterThread" and isinstance(args.exc_value, OSError):
            return
        previous(args)

    hook.fastgan_quiet = True  # type: ignore[attr-defined]
    threading.excepthook = hook
