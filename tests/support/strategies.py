"""Hypothesis strategies shared by the test suites (each section names the module it serves)."""

from __future__ import annotations

from hypothesis import strategies as st

from ledger.anchors.base import AnchorReceipt, AnchorState
from ledger.cbor import TYPED_ARRAY_TAGS, TypedArray
from ledger.telemetry import (
    FIELDS,
    MAX_SAMPLES,
    BusSample,
    Event,
    FieldSpec,
    PackSample,
    TelemetryBatch,
    encode_batch,
)

# --- telemetry samples and batches (ledger.telemetry) ---------------------------------------


def _wire_value(spec: FieldSpec) -> st.SearchStrategy[float]:
    """Values of one column that survive the wire exactly (multiples of its resolution)."""
    ints = st.integers(min_value=spec.lo, max_value=min(spec.hi, 2**40))
    if spec.integral or spec.per_unit == 1:
        return ints.map(int)
    return ints.map(lambda raw: raw / spec.per_unit)


def pack_samples(*, cells: int = 0) -> st.SearchStrategy[PackSample]:
    """PackSample values representable on the wire, with ``cells`` per-cell voltages."""
    fields = {spec.attr: _wire_value(spec) for spec in FIELDS["pack"]}
    voltages = st.lists(st.integers(0, 15_000).map(lambda mv: mv / 1000), min_size=cells,
                        max_size=cells).map(tuple)  # fmt: skip
    return st.builds(PackSample, **fields, cell_voltages=voltages if cells else st.none())


def bus_samples() -> st.SearchStrategy[BusSample]:
    """BusSample values representable on the wire."""
    return st.builds(BusSample, **{spec.attr: _wire_value(spec) for spec in FIELDS["bus"]})


device_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=16)


def telemetry_events(n: int) -> st.SearchStrategy[Event]:
    """Valid alarm and recalibration events of a batch of ``n`` samples."""
    at = st.integers(0, n - 1)
    alarm = st.fixed_dictionaries({"lvl": st.integers(0, 4), "flags": st.integers(0, 2**20)})
    recal = st.fixed_dictionaries(
        {"from": st.integers(0, 1000), "to": st.integers(0, 1000),
         "why": st.sampled_from(["full", "rest"])}
    )  # fmt: skip
    return st.one_of(
        st.builds(Event, kind=st.just("alarm"), at=at, data=alarm),
        st.builds(Event, kind=st.just("recal"), at=at, data=recal),
    )


@st.composite
def telemetry_batches(draw: st.DrawFn, *, max_samples: int = 8) -> TelemetryBatch:
    """Valid TelemetryBatch values of either kind, with events and optional cell voltages."""
    kind = draw(st.sampled_from(["bus", "pack"]))
    n = draw(st.integers(1, min(max_samples, MAX_SAMPLES)))
    samples: list[PackSample] | list[BusSample]
    if kind == "pack":
        cells = draw(st.sampled_from([0, 3]))
        samples = draw(st.lists(pack_samples(cells=cells), min_size=n, max_size=n))
    else:
        samples = draw(st.lists(bus_samples(), min_size=n, max_size=n))
    return TelemetryBatch(
        kind="pack" if kind == "pack" else "bus",
        t_ms=draw(st.integers(0, 2**45)),
        dt_ms=draw(st.sampled_from([1000, 100, 500, 60_000])),
        samples=tuple(samples),
        events=tuple(draw(st.lists(telemetry_events(n), max_size=3))),
        host=draw(st.none() | device_ids) if kind == "pack" else None,
        packs=tuple(draw(st.lists(device_ids, max_size=2))) if kind == "bus" else (),
    )


# --- Merkle trees (ledger.merkle) -----------------------------------------------------------

MAX_TREE_SIZE = 70
"""Trees in property tests stay small enough to check against the recursive RFC definition."""

tree_sizes = st.integers(min_value=1, max_value=MAX_TREE_SIZE)
leaf_datas = st.lists(st.binary(max_size=40), min_size=1, max_size=MAX_TREE_SIZE, unique=True)


@st.composite
def inclusion_cases(draw: st.DrawFn, *, max_size: int = MAX_TREE_SIZE) -> tuple[int, int]:
    """A tree size and a leaf index inside it."""
    size = draw(st.integers(min_value=1, max_value=max_size))
    return size, draw(st.integers(min_value=0, max_value=size - 1))


@st.composite
def consistency_cases(draw: st.DrawFn, *, max_size: int = MAX_TREE_SIZE) -> tuple[int, int]:
    """Two tree sizes ``0 < size1 < size2``: a pair with a non-trivial consistency proof."""
    size2 = draw(st.integers(min_value=2, max_value=max_size))
    return draw(st.integers(min_value=1, max_value=size2 - 1)), size2


# --- deterministic CBOR values (ledger.cbor) ------------------------------------------------

cbor_ints = st.integers(min_value=-(2**64), max_value=2**64 - 1)
cbor_keys = st.one_of(cbor_ints, st.text(max_size=30), st.binary(max_size=30))


@st.composite
def cbor_typed_arrays(draw: st.DrawFn, *, max_size: int = 12) -> TypedArray:
    """RFC 8746 integer typed arrays of any supported tag, with values across its range."""
    element = draw(st.sampled_from(sorted(TYPED_ARRAY_TAGS.values(), key=lambda e: e.tag)))
    values = st.integers(min_value=element.lo, max_value=element.hi)
    return TypedArray.from_values(tag=element.tag, values=draw(st.lists(values, max_size=max_size)))


cbor_scalars = st.one_of(
    cbor_ints,
    st.binary(max_size=40),
    st.text(max_size=40),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
    cbor_typed_arrays(),
)


def cbor_values(*, max_leaves: int = 30) -> st.SearchStrategy[object]:
    """Values ``ledger.cbor`` can encode: nested lists and maps of supported scalars."""
    return st.recursive(
        cbor_scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=6),
            st.dictionaries(cbor_keys, children, max_size=6),
        ),
        max_leaves=max_leaves,
    )


# --- signed message payloads (ledger.message) -----------------------------------------------

device_ids = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="+"),
    min_size=1,
    max_size=32,
)


@st.composite
def telemetry_payloads(draw: st.DrawFn) -> dict[str, object]:
    """Payloads with valid ``v``, ``dev``, ``seq``, ``prev`` and ``t`` plus arbitrary extras."""
    seq = draw(st.integers(min_value=0, max_value=2**63 - 1))
    prev = bytes(32) if seq == 0 else draw(st.binary(min_size=32, max_size=32))
    if seq and prev == bytes(32):
        prev = b"\x01" + prev[1:]
    extras = draw(
        st.dictionaries(
            st.text(max_size=10).filter(lambda key: key not in {"v", "dev", "seq", "prev", "t"}),
            cbor_values(max_leaves=10),
            max_size=4,
        )
    )
    return {
        **extras,
        "v": 1,
        "dev": draw(device_ids),
        "seq": seq,
        "prev": prev,
        "t": draw(st.integers(min_value=0, max_value=2**63 - 1)),
    }


# --- evidence bundles (ledger.bundle, ledger.verify) ----------------------------------------


@st.composite
def dropped_positions(draw: st.DrawFn, *, size: int) -> frozenset[int]:
    """A proper subset of the positions ``0..size-1`` of a chain's messages to leave out."""
    positions = draw(st.sets(st.integers(0, size - 1), max_size=size - 1))
    return frozenset(positions)


# --- anchor receipts (ledger.anchors.base) ----------------------------------------------------


def anchor_receipts() -> st.SearchStrategy[AnchorReceipt]:
    """Valid anchor receipts of any backend name, size, state and details."""
    return st.builds(
        AnchorReceipt,
        backend=st.sampled_from(["memory", "local", "evm"]),
        log_id=st.binary(min_size=32, max_size=32),
        tree_size=st.integers(0, 2**64 - 1),
        root=st.binary(min_size=32, max_size=32),
        state=st.sampled_from(AnchorState),
        details=st.dictionaries(
            st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=5
        ),
    )


# --- malformed input (tests/reliability fuzzing) --------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    """``valid`` with one to four random edits: bit flips, cuts, insertions, deletions, repeats."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        edit = draw(st.sampled_from(["flip", "cut", "insert", "delete", "repeat", "byte"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if edit == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "byte" and data:
            data[at] = draw(st.integers(0, 255))
        elif edit == "cut":
            del data[at:]
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 16))]
    return bytes(data)


# --- batched inclusion proofs (gateway.store.reads) -----------------------------------------


@st.composite
def inclusion_batches(draw: st.DrawFn, *, max_size: int = MAX_TREE_SIZE) -> tuple[int, list[int]]:
    """A tree size and leaf indexes inside it, in any order, repeats allowed."""
    size = draw(st.integers(min_value=1, max_value=max_size))
    return size, draw(st.lists(st.integers(min_value=0, max_value=size - 1), max_size=3 * size))


# --- condition report inputs (ledger.report) ------------------------------------------------


@st.composite
def report_payload_lists(draw: st.DrawFn) -> list[dict[str, object]]:
    """Telemetry payloads of a few devices, times drawn from a few values so samples tie."""
    batches = draw(st.lists(telemetry_batches(max_samples=6), min_size=1, max_size=10))
    seqs: dict[str, int] = {}
    result: list[dict[str, object]] = []
    for batch in batches:
        dev = draw(st.sampled_from(["pack-a", "pack-b", "bus-a"]))
        seqs[dev] = seqs.get(dev, -1) + 1 + draw(st.integers(0, 2))
        t_ms = draw(st.integers(0, 6)) * 60_000
        payload = {"v": 1, "dev": dev, "seq": seqs[dev], "prev": bytes(32), "t": t_ms}
        result.append({**payload, **encode_batch(batch)})
    return result
