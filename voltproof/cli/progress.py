"""Progress on stderr for commands that can take more than a few seconds (rich).

:func:`stages` shows a bar over a known number of steps, each named as it starts. It draws
only when stderr is a terminal (or ``console`` is given), so pipes, files and tests read the
same output as before, and it is transient: the bar disappears when the work is done.
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
