"""Progress on stderr for commands that can take more than a few seconds (rich).

:func:`stages` shows a bar over a known number of steps, each named as it starts;
:func:`progress_bar` one over a count of items (leaves replayed, rows copied). They draw only
when stderr is a terminal (or ``console`` is given), so pipes, files and tests read the same
output as before, and they are transient: the bar disappears when the work is done.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

Step = Callable[[str], None]
"""Called with the name of the step that starts now."""


@contextmanager
def stages(title: str, total: int, *, console: Console | None = None) -> Iterator[Step]:
    """A bar of ``total`` steps titled ``title``; yields the function that starts the next."""
    if console is None and not sys.stderr.isatty():
        yield lambda _name: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        transient=True,
    )
    task = progress.add_task(title, total=total)
    started = 0

    def step(name: str) -> None:
        nonlocal started
        progress.update(task, completed=started, description=f"{title}: {name}")
        started += 1

    with progress:
        yield step
        progress.update(task, completed=total)


Done = Callable[[int], None]
"""Called with the number of items done so far."""


@contextmanager
def progress_bar(
    total: int | None, *, quiet: bool, what: str, console: Console | None = None
) -> Iterator[Done]:
    """A bar of ``total`` items (``None``: unknown) titled ``what``; yields the function that
    reports how many are done. ``quiet`` (a command's ``--quiet``) draws nothing."""
    if quiet or (console is None and not sys.stderr.isatty()):
        yield lambda _done: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        f"[progress.description]{what}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(what, total=total)
        yield lambda done: bar.update(task, completed=done)
