"""The benchmark's progress display on stderr: a bar per step, redrawn in place on a terminal."""

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

# stderr, so that stdout carries the report alone. Elsewhere than on a terminal, rich prints each
# bar once, in its final state.
CONSOLE = Console(stderr=True)
LABEL_WIDTH = 46


@contextlib.contextmanager
def progress_bar(label: str, total: int) -> Iterator[Callable[[], None]]:
    """A bar for one step of `total` pieces of work; yields the function that counts one done."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.elapsed:6.1f} s"),
        console=CONSOLE,
    ) as progress:
        task = progress.add_task(label.ljust(LABEL_WIDTH), total=total)
        yield lambda: progress.advance(task)
