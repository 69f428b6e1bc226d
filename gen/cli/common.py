"""What the commands share: the argument parser, network arguments, design
options and the progress display."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

from nnloom.hw.errors import InputError

__all__ = ["UsageError", "Parser", "network_path", "add_design_options", "design_options",
           "check_options_batch", "Progress"]


class UsageError(InputError):
    """Bad command-line input: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """``argparse`` whose errors are one :class:`UsageError` line, not a usage dump."""

    def error(self, message):
        raise UsageError(f"{self.prog.split(' ', 1)[-1]}: {message}")


def network_path(text: str) -> Path:
    """A network argument: a file, or the name of a shipped example
    (``digits_mlp``, ``lenet_digits``, ...: ``nnloom.examples.names()``),
    which a plain ``pip install`` carries as package data."""
    path = Path(text)
    if path.exists() or path.suffix:
        return path
    from nnloom import examples

    try:
        return examples.path(text)
    except FileNotFoundError:
        raise UsageError(f"{text}: file: expected a network file or one of the shipped "
                         f"examples ({', '.join(examples.names())}), got neither") from None


def add_design_options(ap: argparse.ArgumentParser, *, board_required: bool = False) -> None:
    """``--board``, ``--size`` and ``--batch``, the design options
    ``generate``, ``simulate`` and the ``fpga`` commands share."""
    from nnloom.gen.accelerator import DEFAULT_SIDE
    from nnloom.gen.planner import BOARDS

    ap.add_argument("--board", required=board_required,
                    help=f"build the planner's design for this board, the one `nnloom plan "
                         f"--board` prints ({', '.join(BOARDS)})")
    ap.add_argument("--size", type=int,
                    help=f"a square P x P array (P = 2, or a multiple of 4 up to 32) instead of "
                         f"the board's plan{'' if board_required else f'; default: the plan, else {DEFAULT_SIDE}'}")
    ap.add_argument("--batch", type=int, default=1,
                    help="samples per run: fully connected layers stream them through each "
                         "weight tile (1..255, default 1)")


def design_options(args) -> dict:
    """``{"board", "size", "batch"}`` for :func:`nnloom.gen.accelerator.build`,
    checked against the one size rule (:func:`nnloom.gen.accelerator.check_size`)
    and the batches the generator builds
    (:func:`nnloom.gen.accelerator.check_batch`): a bad one is a usage error."""
    from nnloom.gen.accelerator import check_size
    from nnloom.hw.params import ParamError

    if args.size is not None:
        try:
            check_size(args.size)
        except ParamError as e:
            raise UsageError(f"--{e}") from None
    check_options_batch(args.batch)
    return {"board": args.board, "size": args.size, "batch": args.batch}


def check_options_batch(batch) -> int:
    """``--batch``: 1..255, else a :class:`UsageError` of one line."""
    from nnloom.gen.accelerator import check_batch
    from nnloom.hw.errors import InputError

    try:
        return check_batch(batch)
    except InputError as e:
        raise UsageError(str(e)) from None


class Progress:
    """Progress on stderr: a rich spinner or bar on a terminal, one plain line
    per step otherwise (logs and CI see what runs, and for how long)."""

    EVERY_S = 5.0       #: seconds between plain progress lines

    def __init__(self, quiet: bool = False):
        from rich.console import Console

        self.console = Console(stderr=True)
        self.live = self.console.is_terminal and not quiet
        self.quiet = quiet

    def _line(self, text: str) -> None:
        if not self.quiet:
            print(f"nnloom: {text}", file=sys.stderr, flush=True)

    @contextlib.contextmanager
    def step(self, text: str):
        """A status line while the block runs."""
        start = time.monotonic()
        if self.live:
            with self.console.status(f"{text} ..."):
                yield
        else:
            self._line(f"{text} ...")
            yield
        if not self.live:
            self._line(f"{text}: done in {time.monotonic() - start:.0f} s")

    @contextlib.contextmanager
    def bar(self, text: str, total: int | None):
        """A progress bar; yields ``advance(n=1, total=None)`` (``total``
        sets the bar's length when it was not known at the start)."""
        if self.live:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress,
                                       TextColumn, TimeElapsedColumn)

            with RichProgress(TextColumn("{task.description}"), BarColumn(),
                              MofNCompleteColumn(), TimeElapsedColumn(),
                              console=self.console, transient=True) as bar:
                task = bar.add_task(text, total=total)
                yield lambda n=1, total=None: bar.update(task, advance=n, total=total)
            return
        state = {"done": 0, "total": total, "shown": 0.0}
        start = time.monotonic()
        self._line(f"{text} ...")

        def advance(n=1, total=None):
            # a plain line at most every few seconds, and at the end
            state["done"] += n
            state["total"] = total or state["total"]
            now = time.monotonic()
            if state["done"] == state["total"] or now - state["shown"] >= self.EVERY_S:
                state["shown"] = now
                of = f"/{state['total']}" if state["total"] else ""
                self._line(f"{text}: {state['done']}{of} ({now - start:.0f} s)")

        yield advance
