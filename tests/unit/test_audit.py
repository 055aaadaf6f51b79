"""``voltproof audit`` and ``voltproof log export`` on a real gateway-made log, then tampered."""

from __future__ import annotations

import base64
import shutil
import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ledger.device_index import index_line
from ledger.keys import SigningKey, create_key_file, load_key_file
from ledger.message import sign_registry_entry
from ledger.note import sign_note
from tests.support.gateway_devices import T0_MS
from tests.support.gateway_world import Deployment
from tests.support.log_export import (
    checkpoint_lines,
    leaf_cose,
    leaf_line,
    read_lines,
    resign,
    set_leaf_cose,
    write_lines,
)
from tests.support.store_world import build_deployment
from voltproof.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main

Lines = list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class World:
    """A deployment whose log the real pipeline and checkpointer made, and its export."""

    deployment: Deployment
    export: Path
    key: SigningKey
    operator: SigningKey
    tmp: Path

    def tampered(self, edit: Callable[[Lines], object]) -> Path:
        """A copy of the export edited by ``edit``."""
        lines = read_lines(self.export)
        edit(lines)
        return write_lines(self.tmp / "tampered.jsonl", lines)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Three packs, 12 messages, two signed checkpoints (sizes 9 and 15), exported."""
    tmp = tmp_path_factory.mktemp("audit")
    deployment = build_deployment(tmp / "deployment")
    export = tmp / "log.jsonl"
    assert main(["log", "export", "--workdir", str(deployment.workdir), "--out", str(export),
                 "--quiet"]) == EXIT_OK  # fmt: skip
    return World(
        deployment=deployment,
        export=export,
        key=load_key_file(deployment.settings.key_file),
        operator=load_key_file(deployment.settings.operator_key_file),
        tmp=tmp,
    )


def _audit_file(world: World, path: Path, *extra: str) -> int:
    return main(["audit", "--leaves", str(path), "--gateway-key", world.key.verifier_key,
                 "--quiet", *extra])  # fmt: skip


def _assert_refused(
    world: World, path: Path, capsys: pytest.CaptureFixture[str], reason: str
) -> None:
    assert _audit_file(world, path) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "INVALID" in err
    assert reason in err, err
    assert "Traceback" not in err


# -- honest logs ----------------------------------------------------------------------------


def test_store_audited_clean(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """The store of a real gateway replays clean: every checkpoint and index recomputed."""
    assert main(["audit", "--workdir", str(world.deployment.workdir), "--quiet"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "CLEAN" in out
    assert "leaves: 15 (12 telemetry, 3 registry entries)" in out
    assert "checkpoints: 2 recomputed" in out
    assert "devices: 3 indexed; chains: 3" in out


def test_export_audited_clean(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """The export replays clean, with the operator key from its header or given."""
    lines = read_lines(world.export)
    assert lines[0]["format"] == "voltproof-log-export/1"
    assert len(checkpoint_lines(lines)) == 2
    assert all("index-1" not in line for line in lines)
    assert _audit_file(world, world.export) == EXIT_OK
    assert "operator key as the export's header names it" in capsys.readouterr().out
    given = world.operator.verifier_key
    assert _audit_file(world, world.export, "--operator-key", given) == EXIT_OK
    assert "CLEAN" in capsys.readouterr().out


# -- tampering, each refused with its reason --------------------------------------------------


def test_wrong_index_line_resigned(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """A checkpoint re-signed with the gateway key over another index root."""

    def edit(lines: Lines) -> None:
        last = checkpoint_lines(lines)[-1]
        forged = index_line(bytes(range(32)))
        lines[last]["checkpoint"] = resign(lines[last]["checkpoint"], world.key,
                                           extensions=(forged,))  # fmt: skip

    _assert_refused(
        world, world.tampered(edit), capsys, "checkpoint of size 15 signs device index root"
    )


def test_index_line_missing(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """A v2 checkpoint re-signed without its index line."""

    def edit(lines: Lines) -> None:
        last = checkpoint_lines(lines)[-1]
        lines[last]["checkpoint"] = resign(lines[last]["checkpoint"], world.key, extensions=())

    reason = "checkpoint of size 15 carries no device index line, but the checkpoint of size 9"
    _assert_refused(world, world.tampered(edit), capsys, reason)


def test_two_index_lines(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """A checkpoint with a second index line."""

    def edit(lines: Lines) -> None:
        first = checkpoint_lines(lines)[0]
        note = lines[first]["checkpoint"]
        line = next(text for text in note.split("\n") if text.startswith("voltproof-index/1 "))
        lines[first]["checkpoint"] = resign(note, world.key, extensions=(line, line))

    _assert_refused(world, world.tampered(edit), capsys, "more than one device index line")


def test_leaf_altered(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """One byte of a telemetry leaf's signature changed in the export."""

    def edit(lines: Lines) -> None:
        cose = bytearray(leaf_cose(lines, 7))
        cose[-1] ^= 1
        set_leaf_cose(lines, 7, bytes(cose))

    _assert_refused(world, world.tampered(edit), capsys, "leaf 7 (")


def test_leaf_replaced_by_garbage(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """A leaf replaced by garbage bytes."""
    _assert_refused(world, world.tampered(lambda lines: set_leaf_cose(lines, 4, b"\xa0")), capsys,
             "leaf 4 is not a valid message")  # fmt: skip


def test_leaf_dropped(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """A leaf line removed from the middle."""
    _assert_refused(world, world.tampered(lambda lines: lines.pop(leaf_line(lines, 5))), capsys,
             "leaf 5 is missing: the next leaf given is 6")  # fmt: skip


def test_last_leaves_dropped(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """The last leaf removed: the newest checkpoint lies beyond the log."""
    _assert_refused(world, world.tampered(lambda lines: lines.pop()), capsys,
             "checkpoint of size 15 lies beyond the log's 14 leaves")  # fmt: skip


def test_registry_entry_reordered(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """An enrolment moved after the device's first message (leaves swapped)."""
    device = world.deployment.devices[2].device_id

    def edit(lines: Lines) -> None:
        enrol = leaf_cose(lines, 2)
        first = next(i for i in range(3, 15) if device.encode() in leaf_cose(lines, i))
        set_leaf_cose(lines, 2, leaf_cose(lines, first))
        set_leaf_cose(lines, first, enrol)

    _assert_refused(world, world.tampered(edit), capsys, f"{device} seq 0): message at leaf 2")


def test_registry_entries_swapped(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """Two enrolments swapped: every rule holds, but the signed root is not the prefix's."""

    def edit(lines: Lines) -> None:
        first, second = leaf_cose(lines, 0), leaf_cose(lines, 1)
        set_leaf_cose(lines, 0, second)
        set_leaf_cose(lines, 1, first)

    _assert_refused(world, world.tampered(edit), capsys, "checkpoint of size 9 signs root")


def test_root_not_the_prefix(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """The first checkpoint re-signed with the root of another size."""

    def edit(lines: Lines) -> None:
        first, last = checkpoint_lines(lines)
        other = resign(lines[last]["checkpoint"], world.key).split("\n")[2]
        lines[first]["checkpoint"] = resign(
            lines[first]["checkpoint"], world.key, root=base64.b64decode(other)
        )

    _assert_refused(world, world.tampered(edit), capsys, "the leaves 0..8 give")


def test_forged_enrolment_by_operator(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """A second enrolment of a device id appended (operator-signed, new key), checkpointed."""
    device = world.deployment.devices[0]

    def edit(lines: Lines) -> None:
        forged = sign_registry_entry(
            {"type": "enroll", "dev": device.device_id, "t": T0_MS, "kind": "pack",
             "fleet": device.fleet, "key": bytes(range(32))},
            seed=world.operator.seed, kid=world.operator.name,
        )  # fmt: skip
        lines.append({"index": 15, "cose": base64.b64encode(forged).decode()})
        lines[0]["size"] = 16

    _assert_refused(world, world.tampered(edit), capsys, f"registry of {device.device_id!r}")


def test_operator_key_mismatch(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given another operator key, the first enrolment is refused as not signed by it."""
    other = create_key_file(tmp_path / "other.key", name="operator")
    code = _audit_file(world, world.export, "--operator-key", other.verifier_key)
    assert code == EXIT_FAILED
    assert "not signed by the operator key" in capsys.readouterr().err


def test_checkpoint_by_another_key(world: World, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """A checkpoint signed by a key other than the gateway's."""
    create_key_file(tmp_path / "gw.key", name=world.key.name)
    impostor = load_key_file(tmp_path / "gw.key")

    def edit(lines: Lines) -> None:
        first = checkpoint_lines(lines)[0]
        body = resign(lines[first]["checkpoint"], world.key).split("\n\n")[0] + "\n"
        lines[first]["checkpoint"] = sign_note(body, name=impostor.name, seed=impostor.seed)

    _assert_refused(world, world.tampered(edit), capsys, "checkpoint 'voltproof.test/gw-1 9'")


def test_store_leaf_edited(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A leaf's bytes edited in the store itself: the store audit names it."""
    workdir = tmp_path / "copy"
    shutil.copytree(world.deployment.workdir, workdir)
    db_path = workdir / world.deployment.settings.db_path.relative_to(world.deployment.workdir)
    with closing(sqlite3.connect(db_path)) as db, db:
        (cose,) = db.execute("SELECT cose FROM leaves WHERE leaf_index = 6").fetchone()
        edited = bytes(cose)[:-1] + bytes([cose[-1] ^ 1])
        db.execute("UPDATE leaves SET cose = ? WHERE leaf_index = 6", (edited,))
    assert main(["audit", "--workdir", str(workdir), "--quiet"]) == EXIT_FAILED
    assert "INVALID: leaf 6 (" in capsys.readouterr().err


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "the export is empty"),
        ("not json\n", "line 1 of the export is not JSON"),
        ('{"format": "other"}\n', "is not a voltproof-log-export/1 header"),
        ('{"format": "voltproof-log-export/1", "origin": "o", "size": 0, "operator_key": "AA=="}\n',
         "operator key is 1 bytes"),
    ],
)  # fmt: skip
def test_malformed_export(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, reason: str
) -> None:
    """A file that is not an export is refused with the line named."""
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    _assert_refused(world, path, capsys, reason)


def test_malformed_lines(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """A leaf line with extra keys and a leaf line that is not base64."""

    def extra(lines: Lines) -> None:
        lines[leaf_line(lines, 3)]["extra"] = 1

    _assert_refused(world, world.tampered(extra), capsys, "a leaf line is {'index': int")

    def not_base64(lines: Lines) -> None:
        lines[leaf_line(lines, 3)]["cose"] = "***"

    _assert_refused(world, world.tampered(not_base64), capsys, "cose is not base64")

    def late_checkpoint(lines: Lines) -> None:
        lines.append(lines.pop(checkpoint_lines(lines)[0]))

    _assert_refused(
        world, world.tampered(late_checkpoint), capsys, "checkpoints come before the leaves"
    )


def test_usage_errors(world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Missing key, unreadable files and an empty deployment are usage errors (exit 2)."""
    export = str(world.export)
    assert main(["audit", "--leaves", export]) == EXIT_USAGE
    assert "--leaves needs --gateway-key" in capsys.readouterr().err
    assert main(["audit", "--leaves", export, "--gateway-key", "nokey"]) == EXIT_USAGE
    assert "no such file, and not a verifier key" in capsys.readouterr().err
    missing = str(tmp_path / "missing.jsonl")
    assert main(["audit", "--leaves", missing, "--gateway-key", world.key.verifier_key]) == 2
    assert "cannot read" in capsys.readouterr().err
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00")
    assert main(["audit", "--leaves", str(binary), "--gateway-key", world.key.verifier_key]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    assert main(["audit", "--workdir", str(tmp_path / "none")]) == EXIT_USAGE
    assert main(["log", "export", "--workdir", str(tmp_path / "none"),
                 "--out", str(tmp_path / "x")]) == EXIT_USAGE  # fmt: skip
    assert "Traceback" not in capsys.readouterr().err
