"""The demo's fleet has one manufacturer: every enrolment carries a certificate by it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.store import SqliteStore
from ledger.keys import load_key_file
from ledger.note import parse_verifier_key
from ledger.registry import check_enrolments, check_registry
from voltproof.demo_setup import (
    DemoLayout,
    enroll_fleet,
    manufacturer_verifier_key,
    write_fleet,
    write_gateway_config,
)

END = 2**63 - 1


@pytest.mark.asyncio
async def test_demo_enrolments_are_certified(tmp_path: Path) -> None:
    """The logged enrolments pass check_enrolments under the printed manufacturer key."""
    layout = DemoLayout(root=tmp_path)
    fleet = write_fleet(layout, buses=1, ageing_accel=1.0, seed=1)
    settings = write_gateway_config(
        layout, broker_url="mqtt://127.0.0.1:9", metrics_port=9, anchors=""
    )
    assert await enroll_fleet(settings, layout, fleet) == 4
    printed = manufacturer_verifier_key(layout)
    written = (tmp_path / "manufacturer-verifier-key.txt").read_text(encoding="utf-8")
    assert written == printed + "\n"
    async with await SqliteStore.open(settings.db_path) as store:
        devices = [d.device_id for d in await store.list_devices()]
        leaves = await store.registry_leaves(devices, leaf_below=END)
    operator_key = load_key_file(settings.operator_key_file).public_key
    history = check_registry([(x.leaf_index, x.cose) for x in leaves], operator_key=operator_key)
    check_enrolments(history, manufacturers=[parse_verifier_key(printed)])
    assert sorted(history.devices) == sorted(devices)
    assert all(state.birth is not None for state in history.devices.values())
