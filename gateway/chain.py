"""Per-device hash chains (contract 1: ``seq`` + ``prev``), decided purely from stored facts.

Every device's accepted messages form a chain: message ``seq`` carries ``prev`` = SHA-256 of
the complete COSE bytes of message ``seq - 1`` (32 zero bytes for seq 0). The store keeps per
device the *head* (highest accepted seq and its hash) and the *gaps* (seqs below the head not
received yet, as half-open ranges). :class:`ChainBook` decides, for one batch, what each new
message is:

- **in order** (``seq == head + 1``): its ``prev`` must equal the head's hash;
- **ahead** (``seq > head + 1``): accepted, ``[head + 1, seq)`` is recorded as a gap and the
  link is checked when the gap fills;
- **late** (``seq`` inside a gap): it must link to both stored neighbours when they exist;
- **stored already**: identical bytes are an idempotent duplicate, different bytes are an
  equivocation (two messages signed for one seq), treated as a fork.

A message that breaks a link is a fork: it is refused (quarantined by the caller) and the
chain keeps the messages it already has. The book holds what the store fetched plus what this
batch accepted, so several messages of one device in one batch are decided in order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ledger.chain import Step, genesis_problem, step


@dataclass(frozen=True, slots=True, kw_only=True)
class Head:
    """The highest accepted seq of a device and the hash of that message."""

    seq: int
    message_hash: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredLink:
    """What the log holds for one ``(device, seq)``."""

    message_hash: bytes
    prev: bytes
    leaf_index: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Accept:
    """Append the message; the chain is consistent with it.

    ``skipped`` counts the seqs between the head and a message ahead of it (0 in order): a
    gap is one stored range whatever its length, so a jump costs no per-seq work.
    """

    skipped: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Duplicate:
    """The identical message is already in the log at ``leaf_index``."""

    leaf_index: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Fork:
    """The message contradicts the stored chain; ``detail`` says which link."""

    detail: str


Decision = Accept | Duplicate | Fork


def fetch_keys(
    heads: Mapping[str, Head], messages: Iterable[tuple[str, int]]
) -> set[tuple[str, int]]:
    """The stored ``(device, seq)`` links a batch of ``(device, seq)`` messages needs.

    Only seqs at or below the stored head can be stored; for them the message itself and both
    neighbours are needed. A seq above the head needs nothing stored: its left neighbour is the
    head itself or a message of this batch.
    """
    keys: set[tuple[str, int]] = set()
    for device, seq in messages:
        head = heads.get(device)
        if head is None or seq > head.seq:
            continue
        keys.update((device, s) for s in (seq - 1, seq, seq + 1) if 0 <= s <= head.seq)
    return keys


def _broken(previous_seq: int, previous_hash: bytes, seq: int, prev: bytes) -> bool:
    """Whether ``seq`` breaks its link to ``previous_seq`` (``ledger.chain.step``)."""
    found = step(previous_seq=previous_seq, previous_hash=previous_hash, seq=seq, prev=prev)
    return found is Step.BROKEN


def _remove(gaps: list[tuple[int, int]], seq: int) -> bool:
    """Remove ``seq`` from the sorted ranges ``gaps``; return whether it was missing."""
    for position, (start, stop) in enumerate(gaps):
        if start <= seq < stop:
            pieces = [(a, b) for a, b in ((start, seq), (seq + 1, stop)) if b > a]
            gaps[position : position + 1] = pieces
            return True
    return False


@dataclass(slots=True, kw_only=True)
class ChainBook:
    """The chain state of the devices of one batch, advanced as messages are accepted."""

    heads: dict[str, Head]
    gaps: dict[str, list[tuple[int, int]]]
    """The stored gaps the batch can touch (those holding one of its seqs), not every gap."""
    links: dict[tuple[str, int], StoredLink]
    initial: dict[str, Head] = field(init=False)
    initial_gaps: dict[str, set[tuple[int, int]]] = field(init=False)
    changed: set[str] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.initial = dict(self.heads)
        self.gaps = {device: sorted(ranges) for device, ranges in self.gaps.items()}
        self.initial_gaps = {device: set(ranges) for device, ranges in self.gaps.items()}

    def gap_changes(self, device: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """``(removed, added)`` gap ranges of ``device``: the only gap rows to write.

        O(gaps this batch touched), whatever the number of gaps the device has.
        """
        before = self.initial_gaps.get(device, set())
        after = set(self.gaps.get(device, ()))
        return sorted(before - after), sorted(after - before)

    def decide(self, *, device: str, seq: int, prev: bytes, message_hash: bytes) -> Decision:
        """What to do with message ``seq`` of ``device`` (nothing changes until :meth:`record`)."""
        stored = self.links.get((device, seq))
        if stored is not None:
            if stored.message_hash == message_hash:
                return Duplicate(leaf_index=stored.leaf_index)
            return Fork(
                detail=f"equivocation: seq {seq} is stored at leaf {stored.leaf_index} with "
                f"hash {stored.message_hash.hex()}, this message hashes to {message_hash.hex()}"
            )
        genesis = genesis_problem(seq, prev)
        if genesis is not None:
            return Fork(detail=f"seq {seq}: {genesis}")
        head = self.heads.get(device)
        if head is None or seq > head.seq:
            if head is not None and _broken(head.seq, head.message_hash, seq, prev):
                return Fork(
                    detail=f"prev {prev.hex()} of seq {seq} is not the hash "
                    f"{head.message_hash.hex()} of seq {head.seq}"
                )
            return Accept(skipped=seq - (0 if head is None else head.seq + 1))
        return self._decide_late(device=device, seq=seq, prev=prev, message_hash=message_hash)

    def _decide_late(self, *, device: str, seq: int, prev: bytes, message_hash: bytes) -> Decision:
        """A message below the head and not stored: it must fill a gap and link both ways."""
        head = self.heads[device]
        if not any(start <= seq < stop for start, stop in self.gaps.get(device, ())):
            return Fork(detail=f"seq {seq} is below head {head.seq} but is not missing")
        left = self._hash_of(device, seq - 1)
        if seq > 0 and left is not None and _broken(seq - 1, left, seq, prev):
            return Fork(
                detail=f"late seq {seq}: prev {prev.hex()} is not the hash {left.hex()} "
                f"of seq {seq - 1}"
            )
        right = self.links.get((device, seq + 1))
        if right is not None and _broken(seq, message_hash, seq + 1, right.prev):
            return Fork(
                detail=f"late seq {seq} hashes to {message_hash.hex()} but seq {seq + 1} "
                f"links to {right.prev.hex()}"
            )
        return Accept()

    def record(
        self, *, device: str, seq: int, prev: bytes, message_hash: bytes, leaf_index: int
    ) -> None:
        """Advance the chain of ``device`` by an accepted message."""
        self.links[(device, seq)] = StoredLink(
            message_hash=message_hash, prev=prev, leaf_index=leaf_index
        )
        self.changed.add(device)
        head = self.heads.get(device)
        if head is None or seq > head.seq:
            start = 0 if head is None else head.seq + 1
            if seq > start:
                self.gaps.setdefault(device, []).append((start, seq))
            self.heads[device] = Head(seq=seq, message_hash=message_hash)
        else:
            _remove(self.gaps.setdefault(device, []), seq)

    def _hash_of(self, device: str, seq: int) -> bytes | None:
        link = self.links.get((device, seq))
        if link is not None:
            return link.message_hash
        head = self.initial.get(device)
        if head is not None and head.seq == seq:
            return head.message_hash
        return None
