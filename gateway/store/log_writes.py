"""The log's write transactions, shared by every store backend: chain decisions, leaf
indexes, registry rules.

A backend provides ``_write()`` (one transaction in which the committed log size and border
nodes are read and no other writer of the same log can run: SQLite's ``BEGIN IMMEDIATE``,
PostgreSQL's transaction-scoped advisory lock) and a connection that speaks the statements of
:mod:`gateway.store.writes`; the decisions here are the same for both.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from typing import Final

from ledger.birth import BirthCertificateError
from ledger.merkle import hash_leaf, plan_append
from ledger.registry import RegistryEntryError, check_registry

from ..chain import Accept, ChainBook, Fork, fetch_keys
from .audit_reads import AuditReads
from .checkpoints import CheckpointStore
from .cosignatures import CosignatureStore
from .errors import RegistryConflictError
from .records import (
    Appended,
    Candidate,
    QuarantineEntry,
    RegistryAction,
    RegistryChange,
    StoredOutcome,
)
from .writes import (
    FORK_REASON,
    append_rows,
    check_registry_change,
    insert_telemetry,
    load_chain,
    registry_device_updates,
    telemetry_alarms,
    write_chain,
    write_quarantine,
)

IDS_PER_QUERY = 500
KEYED_ACTIONS: Final = frozenset({RegistryAction.ENROLL, RegistryAction.ROTATE})
"""Registry changes that give a device a public key."""
"""Device ids per ``IN (...)`` query of the registry reads."""


class LogWrites(CosignatureStore, CheckpointStore, AuditReads):
    """``commit`` and ``apply_registry`` over a backend's ``_write`` transaction."""

    quarantine_max_rows: int
    max_seq_jump: int

    async def commit(
        self, candidates: Sequence[Candidate], rejections: Sequence[QuarantineEntry]
    ) -> list[StoredOutcome]:
        """Decide each candidate against the stored chains and write the batch in ONE commit.

        Accepted messages become leaves (in candidate order) with their samples and alarms;
        duplicates are counted; forks are quarantined with an alarm; a message more than
        ``max_seq_jump`` seqs ahead of its head is appended with an alarm; ``rejections``
        are quarantined. Returns one outcome per candidate, after the commit. Raises
        :class:`~gateway.store.errors.UnstorableValueError` (nothing written) when a value
        of the batch does not fit the store.
        """
        async with self._write() as db:
            state = await self._log_state()
            heads, gaps, links = await load_chain(db, candidates, key_filter=fetch_keys)
            book = ChainBook(heads=heads, gaps=gaps, links=links)
            outcomes: list[StoredOutcome] = []
            accepted: list[tuple[int, Candidate]] = []
            duplicates: Counter[str] = Counter()
            quarantined = list(rejections)
            gateway_alarms: list[tuple[Candidate, str]] = []
            next_index = state.size
            for candidate in candidates:
                decision = book.decide(
                    device=candidate.device_id,
                    seq=candidate.seq,
                    prev=candidate.prev,
                    message_hash=candidate.message_hash,
                )
                if isinstance(decision, Accept):
                    book.record(
                        device=candidate.device_id,
                        seq=candidate.seq,
                        prev=candidate.prev,
                        message_hash=candidate.message_hash,
                        leaf_index=next_index,
                    )
                    accepted.append((next_index, candidate))
                    jump = decision.skipped if decision.skipped > self.max_seq_jump else 0
                    if jump:
                        gateway_alarms.append((candidate, _jump_alarm(candidate, jump)))
                    outcomes.append(Appended(leaf_index=next_index, seq_jump=jump))
                    next_index += 1
                    continue
                outcomes.append(decision)
                if isinstance(decision, Fork):
                    quarantined.append(_fork_entry(candidate, decision))
                    gateway_alarms.append((candidate, f"fork: {decision.detail}"))
                else:
                    duplicates[candidate.device_id] += 1
            if accepted:
                plan = plan_append(state, [hash_leaf(c.cose) for _, c in accepted])
                await append_rows(db, plan)
                await insert_telemetry(db, accepted)
            await write_chain(db, book, duplicates)
            await telemetry_alarms(db, accepted, gateway_alarms)
            if quarantined:
                await write_quarantine(db, quarantined, max_rows=self.quarantine_max_rows)
        return outcomes

    async def apply_registry(
        self, changes: Sequence[RegistryChange], *, operator_key: bytes
    ) -> list[int]:
        """Append registry leaves and update the devices, all in one transaction.

        Inside the transaction the registry rules (v2, ``ledger.registry.check_registry``, the
        function the verifier runs) are applied to every logged entry of the devices the
        changes name followed by the new entries at the leaf indexes they will get; signers
        are checked against ``operator_key``. Raises
        :class:`~gateway.store.errors.RegistryConflictError` (nothing is written) naming the
        broken rule: a second enrolment of an id, a change after a revocation, a rotation not
        signed by the current key, a replace that does not fit, a birth certificate for
        another device.
        """
        async with self._write() as db:
            state = await self._log_state()
            named = sorted({device for change in changes for device in change.devices})
            logged = await self._registry_entries(named)
            indexes = list(range(state.size, state.size + len(changes)))
            try:
                check_registry(
                    [*logged, *zip(indexes, (change.cose for change in changes), strict=True)],
                    operator_key=operator_key,
                    scope=named,
                )
            except (RegistryEntryError, BirthCertificateError) as exc:
                raise RegistryConflictError(str(exc)) from exc
            await self._check_keys_unshared(changes)
            pending: dict[str, str] = {}
            for change in changes:
                current = pending.get(change.device_id) or await self._device_status(
                    change.device_id
                )
                pending[change.device_id] = check_registry_change(change, current)
            plan = plan_append(state, [hash_leaf(change.cose) for change in changes])
            await append_rows(db, plan)
            for leaf_index, change in zip(indexes, changes, strict=True):
                await db.execute(
                    "INSERT INTO leaves (leaf_index, kind, device, received_at_ms, "
                    "message_hash, cose) VALUES (?, 'registry', ?, ?, ?, ?)",
                    (
                        leaf_index,
                        change.device_id,
                        change.recorded_at_ms,
                        hashlib.sha256(change.cose).digest(),
                        change.cose,
                    ),
                )
                await db.executemany(
                    "INSERT INTO registry_events (leaf_index, action, device, recorded_at_ms) "
                    "VALUES (?, ?, ?, ?)",
                    [
                        (leaf_index, change.action.value, device, change.recorded_at_ms)
                        for device in change.devices
                    ],
                )
                for sql, params in registry_device_updates(change, leaf_index):
                    await db.execute(sql, params)
        return indexes

    async def _check_keys_unshared(self, changes: Sequence[RegistryChange]) -> None:
        """Refuse a key that another device has, or ever had: whoever holds it could sign as
        both devices, and a thief of one device's key would hold two."""
        owners: dict[bytes, str] = {}
        for change in changes:
            key = change.public_key
            if change.action not in KEYED_ACTIONS or key is None:
                continue
            other = owners.setdefault(key, change.device_id)
            if other != change.device_id:
                raise RegistryConflictError(
                    f"{change.device_id} and {other} are given the same public key; "
                    "each device needs a key of its own"
                )
        keys = list(owners)
        for start in range(0, len(keys), IDS_PER_QUERY):
            chunk = keys[start : start + IDS_PER_QUERY]
            async with self._db.execute(
                "SELECT public_key, device FROM device_keys "  # noqa: S608 -- placeholders only
                f"WHERE public_key IN ({', '.join('?' * len(chunk))}) ORDER BY device",
                chunk,
            ) as cursor:
                for key, holder in await cursor.fetchall():
                    wanted = owners[bytes(key)]
                    if holder != wanted:
                        raise RegistryConflictError(
                            f"the public key given to {wanted} is (or was) the key of {holder}; "
                            "each device needs a key of its own"
                        )

    async def _registry_entries(self, devices: Sequence[str]) -> list[tuple[int, bytes]]:
        """Every logged registry entry naming one of ``devices``: ``(leaf index, COSE)``."""
        found: dict[int, bytes] = {}
        for start in range(0, len(devices), IDS_PER_QUERY):
            chunk = devices[start : start + IDS_PER_QUERY]
            async with self._db.execute(
                "SELECT DISTINCT e.leaf_index, l.cose FROM registry_events AS e "  # noqa: S608 -- placeholders only
                "JOIN leaves AS l ON l.leaf_index = e.leaf_index "
                f"WHERE e.device IN ({', '.join('?' * len(chunk))})",
                chunk,
            ) as cursor:
                found.update((int(row[0]), bytes(row[1])) for row in await cursor.fetchall())
        return sorted(found.items())

    async def _device_status(self, device_id: str) -> str | None:
        async with self._db.execute(
            "SELECT status FROM devices WHERE id = ?", (device_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else str(row[0])


def _fork_entry(candidate: Candidate, decision: Fork) -> QuarantineEntry:
    return QuarantineEntry(
        reason=FORK_REASON,
        detail=decision.detail,
        topic=candidate.topic,
        device_id=candidate.device_id,
        raw=candidate.cose,
        raw_size=len(candidate.cose),
        received_at_ms=candidate.received_at_ms,
    )


def _jump_alarm(candidate: Candidate, skipped: int) -> str:
    return f"seq_jump: seq {candidate.seq} skips {skipped} seqs past the head (stored as one gap)"
