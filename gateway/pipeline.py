"""The gateway pipeline: verify a batch, commit it in one transaction, say what happened.

``Pipeline.process(batch)`` returns only after the commit, so the MQTT intake can acknowledge
every message of the batch when it returns: each one is then a leaf (``accepted``), was one
already (``duplicate``), or is quarantined with a reason. A bad message never stops the
batch; a broken store raises ``StoreError`` and nothing of the batch is acknowledged (the
broker redelivers it, and the repeat is recognised as a duplicate).

``process`` is three stages that the gateway may also call one by one to overlap batches:
:meth:`Pipeline.authorize` (parse, ids, registry lookup), :meth:`Pipeline.verify` (signature,
schema and clock checks in worker threads, no store access) and :meth:`Pipeline.commit`
(chain decisions and the transaction).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial

from .chain import Duplicate
from .quarantine import DEFAULT_MAX_RAW_BYTES, quarantine_entry
from .store import (
    Appended,
    Candidate,
    DeviceRecord,
    QuarantineEntry,
    Store,
    StoredOutcome,
    UnstorableValueError,
)
from .verification import (
    Incoming,
    Parsed,
    Policy,
    Reason,
    Rejected,
    authorize,
    check_payload,
    check_signature,
    guarded,
    parse,
)

log = logging.getLogger(__name__)


class OutcomeKind(StrEnum):
    """What became of one message."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """The fate of one message: its leaf index, or the reason it was quarantined."""

    kind: OutcomeKind
    leaf_index: int | None = None
    reason: Reason | None = None
    detail: str = ""
    seq_jump: int = 0
    """For an accepted message: the seqs it skipped past the head, when that raised an alarm."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Authorized:
    """A batch after stage 1: refusals so far and the messages with their device records."""

    batch: Sequence[Incoming]
    rejected: Mapping[int, Rejected]
    authorized: Mapping[int, tuple[Parsed, DeviceRecord]]
    started: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Verified:
    """A batch after stage 2: every refusal, and the candidates the chain decides on."""

    batch: Sequence[Incoming]
    rejected: Mapping[int, Rejected]
    candidates: Sequence[Candidate]
    started: float


@dataclass(slots=True)
class PipelineStats:
    """Counters the metrics endpoint reads (monotonic unless named ``last_``)."""

    batches: int = 0
    messages: int = 0
    accepted: int = 0
    duplicates: int = 0
    seq_jumps: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    last_batch_size: int = 0
    max_batch_size: int = 0
    commit_seconds_total: float = 0.0
    last_commit_seconds: float = 0.0
    log_size: int = 0


class Pipeline:
    """Verification and storage of message batches over a :class:`~gateway.store.Store`."""

    def __init__(
        self,
        *,
        store: Store,
        policy: Policy | None = None,
        executor: Executor | None = None,
        workers: int = 2,
        max_raw_bytes: int = DEFAULT_MAX_RAW_BYTES,
        perf_clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.store = store
        self.policy = policy or Policy()
        self.stats = PipelineStats()
        self._executor = executor
        self._workers = workers
        self._max_raw_bytes = max_raw_bytes
        self._perf_clock = perf_clock

    async def process(self, batch: Sequence[Incoming]) -> list[Outcome]:
        """Verify and durably commit ``batch``; one outcome per message, in order."""
        return await self.commit(await self.verify(await self.authorize(batch)))

    async def authorize(self, batch: Sequence[Incoming]) -> Authorized:
        """Stage 1: checks 1-7 (parsing, topic and ids, the registry lookup).

        The only stage that reads the store outside the commit: the gateway runs it for batch
        N+1 before it starts committing batch N, then :meth:`verify` overlaps that commit.
        """
        started = self._perf_clock()
        rejected: dict[int, Rejected] = {}
        parsed: dict[int, Parsed] = {}
        for position, incoming in enumerate(batch):
            result = guarded(partial(parse, incoming, self.policy), incoming)
            if isinstance(result, Rejected):
                rejected[position] = result
            else:
                parsed[position] = result
        devices = await self.store.devices(sorted({p.device_id for p in parsed.values()}))
        authorized: dict[int, tuple[Parsed, DeviceRecord]] = {}
        for position, item in parsed.items():
            device = devices.get(item.device_id)
            refusal = authorize(item, device)
            if refusal is not None:
                rejected[position] = refusal
            elif device is not None:
                authorized[position] = (item, device)
        return Authorized(batch=batch, rejected=rejected, authorized=authorized, started=started)

    async def verify(self, stage: Authorized) -> Verified:
        """Stage 2: checks 8-10 (signature, schema, clock) in ``workers`` threads; no store."""
        checked = await self._check_signatures(list(stage.authorized.items()))
        rejected = dict(stage.rejected)
        candidates: list[Candidate] = []
        for position in stage.authorized:
            result = checked[position]
            if isinstance(result, Rejected):
                rejected[position] = result
            else:
                candidates.append(result)
        return Verified(
            batch=stage.batch, rejected=rejected, candidates=candidates, started=stage.started
        )

    async def commit(self, stage: Verified) -> list[Outcome]:
        """Stage 3: chain decisions and ONE durable transaction; the outcomes, in order."""
        batch, rejected, candidates = stage.batch, stage.rejected, stage.candidates
        entries: list[QuarantineEntry] = [
            quarantine_entry(batch[position], refusal, max_raw_bytes=self._max_raw_bytes)
            for position, refusal in sorted(rejected.items())
        ]
        commit_started = self._perf_clock()
        try:
            stored: Sequence[StoredOutcome | Rejected] = await self.store.commit(
                candidates, entries
            )
        except UnstorableValueError:
            stored = await self._commit_apart(batch, candidates, entries)
        commit_seconds = self._perf_clock() - commit_started
        outcomes: list[Outcome | None] = [None] * len(batch)
        for position, refusal in rejected.items():
            outcomes[position] = Outcome(
                kind=OutcomeKind.QUARANTINED, reason=refusal.reason, detail=refusal.detail
            )
        for candidate, decision in zip(candidates, stored, strict=True):
            outcomes[candidate.position] = _outcome(decision)
        final = [outcome for outcome in outcomes if outcome is not None]
        assert len(final) == len(batch), "every message has an outcome"
        self._count(final, commit_seconds, self._perf_clock() - stage.started)
        return final

    async def _commit_apart(
        self,
        batch: Sequence[Incoming],
        candidates: Sequence[Candidate],
        entries: list[QuarantineEntry],
    ) -> list[StoredOutcome | Rejected]:
        """Commit a batch the store refused one message at a time; quarantine the culprits.

        Only reached when a value slipped past every bound (the store raised
        :class:`UnstorableValueError` and wrote nothing): each candidate gets its own
        transaction, a refused one becomes an ``unstorable`` quarantine row, and the rest of
        the batch is stored as usual. A :class:`StoreError` still propagates.
        """
        results: list[StoredOutcome | Rejected] = []
        for candidate in candidates:
            try:
                (result,) = await self.store.commit([candidate], [])
            except UnstorableValueError as exc:
                refusal = Rejected(
                    reason=Reason.UNSTORABLE, detail=str(exc), device_id=candidate.device_id
                )
                log.exception(
                    "message_unstorable",
                    extra={"device": candidate.device_id, "seq": candidate.seq, "error": str(exc)},
                )
                entries.append(
                    quarantine_entry(
                        batch[candidate.position], refusal, max_raw_bytes=self._max_raw_bytes
                    )
                )
                results.append(refusal)
            else:
                results.append(result)
        await self.store.commit([], entries)
        return results

    async def _check_signatures(
        self, items: list[tuple[int, tuple[Parsed, DeviceRecord]]]
    ) -> dict[int, Candidate | Rejected]:
        """Checks 8-10 split over ``workers`` threads (PyNaCl releases the GIL)."""
        if not items:
            return {}
        chunks = [items[start :: self._workers] for start in range(self._workers)]
        loop = asyncio.get_running_loop()
        policy = self.policy
        results = await asyncio.gather(
            *(
                loop.run_in_executor(self._executor, _verify_chunk, chunk, policy)
                for chunk in chunks
                if chunk
            )
        )
        return {position: result for chunk in results for position, result in chunk}

    def _count(self, outcomes: Sequence[Outcome], commit_seconds: float, seconds: float) -> None:
        stats = self.stats
        accepted = [o.leaf_index for o in outcomes if o.kind is OutcomeKind.ACCEPTED]
        duplicates = sum(o.kind is OutcomeKind.DUPLICATE for o in outcomes)
        jumps = [o for o in outcomes if o.seq_jump]
        stats.seq_jumps += len(jumps)
        for jump in jumps:
            log.warning("seq_jump", extra={"leaf_index": jump.leaf_index, "skipped": jump.seq_jump})
        reasons = Counter(o.reason.value for o in outcomes if o.reason is not None)
        stats.batches += 1
        stats.messages += len(outcomes)
        stats.accepted += len(accepted)
        stats.duplicates += duplicates
        stats.rejected.update(reasons)
        stats.last_batch_size = len(outcomes)
        stats.max_batch_size = max(stats.max_batch_size, len(outcomes))
        stats.commit_seconds_total += commit_seconds
        stats.last_commit_seconds = commit_seconds
        if accepted:
            stats.log_size = max(i for i in accepted if i is not None) + 1
        log.info(
            "batch_committed",
            extra={
                "messages": len(outcomes),
                "accepted": len(accepted),
                "duplicates": duplicates,
                "quarantined": dict(sorted(reasons.items())),
                "first_leaf": min((i for i in accepted if i is not None), default=None),
                "commit_ms": round(commit_seconds * 1000, 3),
                "batch_ms": round(seconds * 1000, 3),
            },
        )


def _verify_chunk(
    chunk: list[tuple[int, tuple[Parsed, DeviceRecord]]], policy: Policy
) -> list[tuple[int, Candidate | Rejected]]:
    return [
        (position, guarded(partial(_check, position, item, device, policy), item.incoming))
        for position, (item, device) in chunk
    ]


def _check(
    position: int, item: Parsed, device: DeviceRecord, policy: Policy
) -> Candidate | Rejected:
    return check_signature(item, device) or check_payload(position, item, device, policy)


def _outcome(decision: StoredOutcome | Rejected) -> Outcome:
    if isinstance(decision, Rejected):
        return Outcome(kind=OutcomeKind.QUARANTINED, reason=decision.reason, detail=decision.detail)
    if isinstance(decision, Appended):
        return Outcome(
            kind=OutcomeKind.ACCEPTED,
            leaf_index=decision.leaf_index,
            seq_jump=decision.seq_jump,
        )
    if isinstance(decision, Duplicate):
        return Outcome(kind=OutcomeKind.DUPLICATE, leaf_index=decision.leaf_index)
    return Outcome(kind=OutcomeKind.QUARANTINED, reason=Reason.FORK, detail=decision.detail)
