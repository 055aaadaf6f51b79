"""The pieces of `voltproof demo --store postgresql` that need no process: the --store value,
the broker ACL for several gateway accounts, the gateways' configurations and their metrics
read as one."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import load_settings
from voltproof.broker import ACL_CONF
from voltproof.cli.demo import store_choice
from voltproof.cli.exits import UsageError
from voltproof.demo import OWN_CLUSTER, merge_metrics, progress_line
from voltproof.demo_setup import (
    DemoLayout,
    acl_text,
    gateway_user,
    previous_store_url,
    write_gateway_config,
)


def test_store_choice_names_sqlite_the_own_cluster_or_a_url() -> None:
    """sqlite is the default; postgresql (or postgres) is the demo's own cluster; a URL is kept."""
    assert store_choice("sqlite") is None
    assert store_choice("postgresql") == OWN_CLUSTER
    assert store_choice("postgres") == OWN_CLUSTER
    url = "postgresql://voltproof:pw@db.example:5432/voltproof"
    assert store_choice(url) == url


@pytest.mark.parametrize(
    "value",
    ["mysql://user:hunter2@host/db", "sqlite3", "postgresql://user:hunter2@host/db?nosuchoption=1"],
)
def test_store_choice_refuses_other_stores_without_repeating_a_password(value: str) -> None:
    """Anything else is a usage error (exit 2) whose message never holds the password."""
    with pytest.raises(UsageError) as refused:
        store_choice(value)
    assert "hunter2" not in str(refused.value)
    assert "--store" in str(refused.value)


def test_acl_gives_every_gateway_account_the_gateway_rules() -> None:
    """Each gateway account gets the read and receipt-write rules; devices keep theirs."""
    text = acl_text(ACL_CONF.read_text(encoding="utf-8"), gateways=3)
    rules = "topic read voltproof/+/+/telemetry\n"
    for number in (1, 2, 3):
        block = text.split(f"user {gateway_user(number)}\n", 1)[1].split("\n\n", 1)[0]
        assert block.startswith(rules)
        assert "topic write voltproof/+/+/receipt" in block
    assert text.count(rules) == 3
    assert text.endswith(ACL_CONF.read_text(encoding="utf-8").rsplit("\n\n", 1)[1])
    assert acl_text(ACL_CONF.read_text(encoding="utf-8"), gateways=1) == ACL_CONF.read_text(
        encoding="utf-8"
    )
    with pytest.raises(ValueError, match="no 'user voltproof-gateway' block"):
        acl_text("pattern read voltproof/+/%u/receipt\n", gateways=2)


def test_gateway_configs_share_the_store_and_group_but_not_the_account(tmp_path: Path) -> None:
    """On PostgreSQL every gateway has the same store URL, data folder and shared subscription
    group, its own broker account and metrics port; the URL's file is private."""
    layout = DemoLayout(root=tmp_path)
    url = "postgresql://voltproof:pw@127.0.0.1:5432/voltproof"
    settings = [
        write_gateway_config(
            layout, broker_url="mqtt://127.0.0.1:1883", metrics_port=9000 + n,
            anchors='[anchors]\nbackend = "local"\n', store_url=url, number=n,
        )
        for n in (1, 2, 3)
    ]  # fmt: skip
    assert {s.store.url.get_secret_value() for s in settings if s.store.url} == {url}
    assert {s.data_dir for s in settings} == {tmp_path / "gateway"}
    assert {s.mqtt.share_group for s in settings} == {"voltproof-gateways"}
    assert [s.mqtt.username for s in settings] == [gateway_user(n) for n in (1, 2, 3)]
    assert len({s.mqtt.client_id for s in settings}) == 3
    assert [s.metrics.port for s in settings] == [9001, 9002, 9003]
    assert (layout.gateway_config.stat().st_mode & 0o777) == 0o600
    assert previous_store_url(layout) == url
    sqlite = write_gateway_config(
        layout, broker_url="mqtt://127.0.0.1:1883", metrics_port=9000, anchors=""
    )
    assert sqlite.store.url is None
    assert sqlite.mqtt.share_group == ""
    assert previous_store_url(layout) is None
    assert load_settings(layout.gateway_config_of(2)).mqtt.username == gateway_user(2)


def test_metrics_of_several_gateways_read_as_one() -> None:
    """Counters add up; a gauge (the same log seen by each) is the largest reading."""
    merged = merge_metrics(
        [
            {"voltproof_messages_accepted_total": 3.0, "voltproof_log_size": 40.0,
             'voltproof_messages_rejected_total{reason="bad_signature"}': 1.0},
            {"voltproof_messages_accepted_total": 2.0, "voltproof_log_size": 42.0},
            {"voltproof_messages_accepted_total": 4.0, "voltproof_log_size": 41.0,
             'voltproof_messages_rejected_total{reason="bad_signature"}': 1.0},
        ]
    )  # fmt: skip
    assert merged["voltproof_messages_accepted_total"] == 9.0
    assert merged['voltproof_messages_rejected_total{reason="bad_signature"}'] == 2.0
    assert merged["voltproof_log_size"] == 42.0
    line = progress_line(merged, 10.0, 30.0, signer="gateway-2")
    assert "accepted 9" in line
    assert "log 42" in line
    assert "signer gateway-2" in line
    assert "signer" not in progress_line(merged, 10.0, 30.0)
