"""``voltproof devices`` on a deployment whose store is PostgreSQL (``store.url``)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ledger.keys import create_key_file, generate_seed, public_key_from_seed
from tests.support.cli_process import run_voltproof as _voltproof

pytestmark = pytest.mark.integration


def test_enrol_revoke_and_list_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    """Enrolment and revocation become leaves of the PostgreSQL log; list shows them."""
    (tmp_path / "keys").mkdir()
    create_key_file(tmp_path / "keys" / "operator.key", name="operator.test")
    config = tmp_path / "gateway.toml"
    config.write_text(f'fleets = ["fleet-a"]\n[store]\nurl = "{postgres_url}"\n', encoding="utf-8")
    key = base64.b64encode(public_key_from_seed(generate_seed())).decode("ascii")
    enrolled = _voltproof(
        "devices", "--config", str(config), "enroll",
        "--id", "pack-0001", "--kind", "pack", "--fleet", "fleet-a", "--public-key", key,
    )  # fmt: skip
    assert enrolled.returncode == 0, enrolled.stderr
    assert "enrolled pack-0001 (pack, fleet fleet-a) at leaf 0" in enrolled.stdout
    again = _voltproof(
        "devices", "--config", str(config), "enroll",
        "--id", "pack-0001", "--kind", "pack", "--fleet", "fleet-a", "--public-key", key,
    )  # fmt: skip
    assert again.returncode == 1
    assert "pack-0001" in again.stderr
    assert "Traceback" not in again.stderr
    revoked = _voltproof(
        "devices", "--config", str(config), "revoke", "pack-0001", "--reason", "decommissioned"
    )
    assert revoked.returncode == 0, revoked.stderr
    listed = _voltproof("devices", "--config", str(config), "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(d["id"], d["status"], d["public_key"]) for d in json.loads(listed.stdout)] == [
        ("pack-0001", "revoked", key)
    ]
