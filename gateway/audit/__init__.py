"""``voltproof gateway check``: recompute everything the store derives and compare.

The store is read only through :class:`gateway.store.StoreReader`, in one snapshot, opened
read-only (safe next to a running gateway): the log (:mod:`.log`: leaves, Merkle nodes,
checkpoints), the chains and samples (:mod:`.chains`) and the local anchor table
(:mod:`.anchors`). :class:`CheckReport` (:mod:`.report`) lists every broken fact.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

from ledger.anchors.local_entry import LocalEntry
from ledger.errors import VoltproofError
from ledger.note import verifier_key

from ..store import AnchorStatus, SqliteReader, StoreError, StoreReader
from ..store.anchor_table import read_local_anchors
from ..store.postgresql import describe
from .anchors import check_anchors
from .chains import ChainFacts, check_chains
from .log import check_checkpoints, check_nodes, read_leaves
from .report import CheckReport, Problem

__all__ = ["CheckReport", "Problem", "SelfCheckError", "audit_store", "check_store", "report_lines"]


class SelfCheckError(VoltproofError):
    """The store (or the anchor table) cannot be read at all."""


async def audit_store(
    reader: StoreReader,
    *,
    origin: str,
    key_name: str,
    public_key: bytes,
    anchors: tuple[bytes | None, list[LocalEntry]] | None = None,
) -> CheckReport:
    """Check the store behind ``reader`` (and the local anchor table's owner and entries)."""
    problems: list[Problem] = []
    counts: dict[str, int] = {}
    async with reader.snapshot():
        size = await reader.stored_size()
        tree, telemetry = await read_leaves(reader, size, problems, counts)
        check_nodes(await reader.stored_nodes(), tree, problems)
        check_checkpoints(
            await reader.checkpoints_in(list(AnchorStatus)),
            tree,
            trusted=verifier_key(key_name, public_key),
            origin=origin,
            problems=problems,
            counts=counts,
        )
        facts = ChainFacts(
            telemetry=telemetry,
            keys=await reader.key_ranges(),
            heads=await reader.chain_heads(),
            gaps=await reader.all_chain_gaps(),
            blocks=await reader.sample_blocks(),
            summaries=await reader.sample_summaries(),
        )
    check_chains(facts, problems, counts)
    if anchors is not None:
        owner, entries = anchors
        check_anchors(
            owner, entries, tree, origin=origin, public_key=public_key, problems=problems,
            counts=counts,
        )  # fmt: skip
    return CheckReport(log_size=size, counts=counts, problems=tuple(problems))


def check_store(
    db_path: Path | str,
    *,
    origin: str,
    key_name: str,
    public_key: bytes,
    anchors_path: Path | None = None,
) -> CheckReport:
    """Check the gateway store at ``db_path`` (a SQLite file, or a ``postgresql://`` URL) and
    the local anchor table, if given."""
    for path in (db_path, anchors_path):
        if isinstance(path, Path) and not path.is_file():
            raise SelfCheckError(f"no database at {path}")

    async def open_reader() -> StoreReader:
        if isinstance(db_path, Path):
            return await SqliteReader.open(db_path)
        from ..store.postgresql import PostgresStore

        return await PostgresStore.open(db_path, pool_size=2)

    where = str(db_path) if isinstance(db_path, Path) else describe(db_path)

    async def run() -> CheckReport:
        try:
            anchors = None if anchors_path is None else await read_local_anchors(anchors_path)
            reader = await open_reader()
            try:
                return await audit_store(
                    reader, origin=origin, key_name=key_name, public_key=public_key,
                    anchors=anchors,
                )  # fmt: skip
            finally:
                await reader.close()
        except StoreError as exc:
            raise SelfCheckError(f"cannot read {where}: {exc}") from exc

    return asyncio.run(run())


def report_lines(report: CheckReport) -> Iterator[str]:
    """The report as text, one problem per line."""
    counted = ", ".join(f"{name} {count}" for name, count in sorted(report.counts.items()))
    yield f"log size {report.log_size}; checked {counted}"
    for problem in report.problems:
        yield problem.describe()
    yield "clean" if report.ok else f"{len(report.problems)} problem(s)"
