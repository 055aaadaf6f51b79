"""``voltproof migrate --from sqlite:PATH --to postgresql://...``: move a deployment's store.

The copy is :func:`gateway.store.postgresql.copy.copy_sqlite_to_postgres` (one transaction,
into an empty database). Then both sides are read through the store interface and compared:
the log size and root each store serves, the root recomputed from every leaf it holds, the
device index root (evidence v2) at that size, and the checkpoints. Exit 0 when all agree, 1
when the copy failed or a figure differs, 2 for wrong arguments. On a terminal, a progress
bar follows the rows copied and then each side's leaves replayed (``--quiet``: none).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .exits import CommandFailedError, ExitCode, UsageError
from .options import command
from .progress import Done, progress_bar

if TYPE_CHECKING:
    from gateway.store import StoreReader

_SQLITE_PREFIX = "sqlite:"
_PAGE = 10_000


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``migrate`` to the ``voltproof`` parser."""
    parser = subparsers.add_parser(
        "migrate",
        help="copy a gateway store from SQLite into PostgreSQL and verify the copy",
        description=(
            "Copy every table of a gateway's SQLite store (read-only) into an empty "
            "PostgreSQL database in one transaction, then recompute on both sides the log "
            "root from every leaf and the device index root, and compare them and the "
            "checkpoints. Stop the gateway first. Exit 0 when the copy is verified."
        ),
    )
    parser.add_argument(
        "--from", dest="source", required=True, metavar="sqlite:PATH",
        help="the SQLite store, e.g. sqlite:voltproof-demo/gateway/gateway.db",
    )  # fmt: skip
    parser.add_argument(
        "--to", dest="target", required=True, metavar="URL",
        help="an empty PostgreSQL database: postgresql://user:password@host:port/dbname",
    )  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress bars on stderr")
    command(parser, _run)


@dataclass(frozen=True, slots=True, kw_only=True)
class Figures:
    """What must be equal on both sides of a migration."""

    size: int
    served_root: bytes
    replayed_root: bytes
    index_root: bytes
    checkpoints: tuple[tuple[int, bytes], ...]


async def figures(reader: StoreReader, *, progress: Done | None = None) -> Figures:
    """The log and device index figures of ``reader``, recomputed from its leaves (``progress``
    is told how many leaves are replayed)."""
    from ledger.merkle import MemoryLog

    head = await reader.log_head()
    replayed = MemoryLog()
    after = -1
    while after + 1 < head.size:
        page = await reader.leaves_page(after=after, limit=min(_PAGE, head.size - after - 1))
        if not page:
            break
        replayed.append(leaf.cose for leaf in page)
        after = page[-1].leaf_index
        if progress is not None:
            progress(replayed.size)
    index = await reader.device_index_at(head.size)
    checkpoints = await reader.checkpoints(limit=2**31)
    return Figures(
        size=head.size,
        served_root=head.root,
        replayed_root=replayed.root() if replayed.size == head.size else b"",
        index_root=index.root(),
        checkpoints=tuple(sorted((c.size, c.root) for c in checkpoints)),
    )


async def _recomputed(reader: StoreReader, name: str, *, quiet: bool) -> Figures:
    """:func:`figures` of ``reader`` under a progress bar over its leaves."""
    total = (await reader.log_head()).size
    with progress_bar(total, quiet=quiet, what=f"recomputing the {name} log") as bar:
        return await figures(reader, progress=bar)


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from gateway.store import SqliteReader, StoreError
    from gateway.store.postgresql import PostgresStore, describe, is_postgres_url
    from gateway.store.postgresql.copy import copy_sqlite_to_postgres, open_source, source_rows
    from ledger.placeholders import has_placeholder_password

    source_text: str = args.source
    if not source_text.startswith(_SQLITE_PREFIX):
        raise UsageError(f"--from must be sqlite:PATH, got {source_text!r}")
    if not is_postgres_url(args.target):
        raise UsageError("--to must be a postgresql:// URL")
    if has_placeholder_password(args.target):
        raise UsageError("--to: the password in the URL is a placeholder; set the real one")
    path = Path(source_text.removeprefix(_SQLITE_PREFIX))
    where = describe(args.target)

    async def run() -> tuple[dict[str, int], Figures, Figures]:
        source = open_source(path)
        try:
            with progress_bar(source_rows(source), quiet=args.quiet, what="copying rows") as bar:
                tables: dict[str, int] = {}

                def copied(table: str, rows: int) -> None:
                    tables[table] = rows
                    bar(sum(tables.values()))

                counts = await copy_sqlite_to_postgres(source, args.target, progress=copied)
        finally:
            source.close()
        async with await SqliteReader.open(path) as reader:
            before = await _recomputed(reader, "SQLite", quiet=args.quiet)
        async with await PostgresStore.open(args.target) as store:
            after = await _recomputed(store, "PostgreSQL", quiet=args.quiet)
        return counts, before, after

    try:
        counts, before, after = asyncio.run(run())
    except StoreError as exc:
        raise CommandFailedError(exc) from exc
    copied = ", ".join(f"{table} {rows}" for table, rows in counts.items())
    print(f"copied {path} -> {where}: {copied}")
    rows = [
        ("log size", str(before.size), str(after.size)),
        ("log root (served)", before.served_root.hex(), after.served_root.hex()),
        ("log root (from the leaves)", before.replayed_root.hex(), after.replayed_root.hex()),
        ("device index root", before.index_root.hex(), after.index_root.hex()),
        ("checkpoints", str(len(before.checkpoints)), str(len(after.checkpoints))),
    ]
    for name, old, new in rows:
        print(f"{name:27} {'same' if old == new else 'DIFFERENT'}  {old}  {new}")
    if before != after or before.served_root != before.replayed_root:
        raise CommandFailedError("the copy differs from the source (see above)")
    print("verified: the PostgreSQL store serves the same log, index and checkpoints")
    return ExitCode.OK
