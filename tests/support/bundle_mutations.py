"""Tampering with ``voltproof-bundle/2`` files, as a dishonest operator (or anyone) would.

Each helper takes an honest :class:`BundleV2` built by the real builder from a real store
and returns a changed copy; the mutation suite checks that the verifier refuses each one
(INVALID) or at least does not call it complete (INCOMPLETE), with the reason named.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from ledger.anchors.base import AnchorReceipt
from ledger.bundle import LoggedLeaf
from ledger.bundle_v2 import BundleV2, IndexedDevice, RoleChain
from ledger.checkpoint import log_id

Mutation = Callable[[BundleV2], BundleV2]


def chain_of(bundle: BundleV2, device: str, role: str = "asset") -> RoleChain:
    """The bundle's chain of ``device`` in ``role`` (the first if several)."""
    return next(c for c in bundle.chains if c.device == device and c.role == role)


def with_chain(bundle: BundleV2, old: RoleChain, new: RoleChain | None) -> BundleV2:
    """``bundle`` with chain ``old`` replaced by ``new`` (dropped if ``None``)."""
    chains = [new if c is old else c for c in bundle.chains]
    return replace(bundle, chains=tuple(c for c in chains if c is not None))


def asset_messages(bundle: BundleV2, change: Callable[[list[LoggedLeaf]], object]) -> BundleV2:
    """``bundle`` with the asset chain's message list changed in place by ``change``."""
    chain = chain_of(bundle, bundle.asset_id)
    messages = list(chain.messages)
    change(messages)
    return with_chain(bundle, chain, replace(chain, messages=tuple(messages)))


def drop_at(position: int) -> Mutation:
    """Drop the asset chain's message at ``position`` (0 first, -1 last)."""
    return lambda b: asset_messages(b, lambda m: m.pop(position))


def truncate(keep: int) -> Mutation:
    """Keep only the asset chain's first ``keep`` messages."""
    return lambda b: asset_messages(b, lambda m: m.__delitem__(slice(keep, None)))


def swap(i: int, j: int) -> Mutation:
    """Swap two messages of the asset chain."""

    def change(messages: list[LoggedLeaf]) -> None:
        messages[i], messages[j] = messages[j], messages[i]

    return lambda b: asset_messages(b, change)


def set_period(bundle: BundleV2, from_ms: int, to_ms: int, *, chain_too: bool = True) -> BundleV2:
    """``bundle`` claiming another period (and its asset chain the same, unless not asked)."""
    moved = replace(bundle, from_ms=from_ms, to_ms=to_ms)
    if not chain_too:
        return moved
    chain = chain_of(bundle, bundle.asset_id)
    return with_chain(moved, chain, replace(chain, from_ms=from_ms, to_ms=to_ms))


def drop_after(bundle: BundleV2) -> BundleV2:
    """The asset chain without its ``after`` boundary message."""
    chain = chain_of(bundle, bundle.asset_id)
    return with_chain(bundle, chain, replace(chain, after=None))


def device_of(bundle: BundleV2, device: str) -> IndexedDevice:
    """The bundle's device object of ``device``."""
    return next(d for d in bundle.devices if d.device == device)


def with_device(bundle: BundleV2, old: IndexedDevice, new: IndexedDevice | None) -> BundleV2:
    """``bundle`` with device ``old`` replaced by ``new`` (dropped if ``None``)."""
    devices = [new if d is old else d for d in bundle.devices]
    return replace(bundle, devices=tuple(d for d in devices if d is not None))


def registry_changed(
    bundle: BundleV2, device: str, change: Callable[[list[LoggedLeaf]], object]
) -> BundleV2:
    """``bundle`` with ``device``'s registry list changed in place by ``change``."""
    found = device_of(bundle, device)
    registry = list(found.registry)
    change(registry)
    return with_device(bundle, found, replace(found, registry=tuple(registry)))


def foreign_receipt(bundle: BundleV2) -> BundleV2:
    """The anchor receipt relabelled as another log's."""
    receipt = bundle.anchor.receipt
    other = AnchorReceipt.from_dict(
        {**receipt.to_dict(), "log_id": log_id("voltproof.example/other").hex()}
    )
    return replace(bundle, anchor=replace(bundle.anchor, receipt=other))


def receipt_of_size(bundle: BundleV2, size: int) -> BundleV2:
    """The anchor receipt claiming another tree size of the same log (as if swapped for the
    receipt of an older or newer anchor)."""
    receipt = bundle.anchor.receipt
    other = AnchorReceipt.from_dict({**receipt.to_dict(), "tree_size": size})
    return replace(bundle, anchor=replace(bundle.anchor, receipt=other))


def move_start(bundle: BundleV2, from_ms: int, *, keep_before: bool) -> BundleV2:
    """The bundle and its asset chain starting at ``from_ms``, messages unchanged, the
    ``before`` boundary message kept or dropped."""
    chain = chain_of(bundle, bundle.asset_id)
    moved = replace(chain, from_ms=from_ms, before=chain.before if keep_before else None)
    return with_chain(replace(bundle, from_ms=from_ms), chain, moved)


def strip_export(bundle: BundleV2) -> BundleV2:
    """The bundle without the embedded anchor export."""
    return replace(bundle, anchor=replace(bundle.anchor, local_export=None))


def host_message_outside(bundle: BundleV2) -> BundleV2:
    """bus-0001's host chain with its first message after the hosting interval added."""
    chain = chain_of(bundle, "bus-0001", "host")
    assert chain.after is not None
    return with_chain(bundle, chain, replace(chain, messages=(*chain.messages, chain.after)))


def older_head(bundle: BundleV2) -> BundleV2:
    """The asset's index entry claiming an older head (as an older checkpoint had it)."""
    found = device_of(bundle, bundle.asset_id)
    head = found.entry.head
    assert head is not None
    entry = replace(found.entry, head=replace(head, seq=head.seq - 1))
    return with_device(bundle, found, replace(found, entry=entry))


def swapped_entries(bundle: BundleV2) -> BundleV2:
    """bus-0001 given bus-0002's index entry and proof."""
    one, two = device_of(bundle, "bus-0001"), device_of(bundle, "bus-0002")
    moved = replace(one, entry=two.entry, index_proof=two.index_proof)
    return with_device(bundle, one, moved)
