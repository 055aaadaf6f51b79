"""Every command group, given wrong input, answers in one line with the documented exit code.

Each case runs ``python -m voltproof`` in a subprocess, as a user would, and checks that
nothing prints a traceback and that the exit code follows ``voltproof.cli.exits``: 1 for
evidence that is invalid or a command that failed, 2 for a usage error (bad arguments,
or a configuration, key or anchor file that is missing or unreadable).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from ledger.keys import load_key_file
from tests.support.cli_process import run_voltproof as _voltproof
from tests.support.gateway_world import Deployment
from tests.support.store_world import build_deployment

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
FAILED, USAGE = 1, 2
DEAD_RPC = "http://127.0.0.1:9"
DEAD_BROKER = "mqtt://127.0.0.1:9"
DEAD_POSTGRESQL = "postgresql://voltproof@127.0.0.1:9/voltproof"
ZERO_KEY = "A" * 43 + "="
"""A well-formed base64 32-byte public key."""


@dataclass(frozen=True, slots=True)
class World:
    """Wrong inputs on disk, and a real deployment with one valid bundle."""

    tmp: Path
    deployment: Deployment
    bundle: Path
    gateway_key: str

    def path(self, name: str) -> str:
        """``{missing}``, ``{binary}``, ``{dir}``, ``{workdir}``, ``{db}`` (its store),
        ``{bundle}``, ``{key}``, ``{zero}`` (a valid public key)..."""
        return name.format(
            missing=self.tmp / "missing.toml",
            binary=self.tmp / "binary",
            dir=self.tmp,
            nowhere=self.tmp / "nowhere",
            workdir=self.deployment.workdir,
            db=self.deployment.settings.db_path,
            config=self.deployment.config,
            bundle=self.bundle,
            key=self.gateway_key,
            example=self.tmp / "gateway.example.toml",
            zero=ZERO_KEY,
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Wrong inputs (a missing path, random bytes, a directory) and a populated deployment."""
    tmp = tmp_path_factory.mktemp("wrong")
    binary = tmp / "binary"
    binary.write_bytes(bytes(range(256)) * 4)
    binary.chmod(0o600)
    example = (REPO / "configs" / "gateway.example.toml").read_text(encoding="utf-8")
    (tmp / "gateway.example.toml").write_text(example, encoding="utf-8")
    deployment = build_deployment(tmp / "deploy", devices=2)
    bundle = tmp / "good.json"
    # --format 1: this store's checkpoints carry no device index line (v2 refuses them)
    made = _voltproof("bundle", "--asset", deployment.devices[0].device_id, "--format", "1",
                      "--out", str(bundle), "--workdir", str(deployment.workdir))  # fmt: skip
    assert made.returncode == 0, made.stderr
    key = load_key_file(deployment.settings.key_file).verifier_key
    return World(tmp=tmp, deployment=deployment, bundle=bundle, gateway_key=key)


CORPUS: list[tuple[str, int]] = [
    # the top level
    ("", USAGE),
    ("no-such-command", USAGE),
    # keys: the key file is the subject of the command, so a bad one is a failure
    ("keys show {missing}", FAILED),
    ("keys show {binary}", FAILED),
    ("keys new {binary}/dir/k.key --name gw", FAILED),
    ("keys new {dir}/k.key", USAGE),
    # verify and report
    ("verify {missing} --gateway-key {key}", USAGE),
    ("verify {dir} --gateway-key {key}", USAGE),
    ("verify {binary} --gateway-key {key}", FAILED),
    ("verify {bundle}", USAGE),
    ("verify {bundle} --gateway-key {missing}", USAGE),
    ("verify {bundle} --gateway-key {binary}", USAGE),
    ("verify {bundle} --gateway-key not+a+key", USAGE),
    ("verify {bundle} --gateway-key {key} --anchors {binary}", USAGE),
    ("verify {bundle} --gateway-key {key} --anchors {missing}", USAGE),
    ("verify {bundle} --gateway-key {key} --anchors {bundle}", USAGE),
    ("verify {bundle} --gateway-key {key} --manufacturer {missing}", USAGE),
    ("verify {bundle} --gateway-key {key} --manufacturer {binary}", USAGE),
    ("verify {binary} --gateway-key {key} --json", FAILED),
    ("verify {bundle} --gateway-key {key} --rpc not-a-url", USAGE),
    ("verify {bundle} --gateway-key {key} --rpc http://h:port", USAGE),
    ("verify {bundle} --gateway-key {key} --from yesterday", USAGE),
    ("verify {bundle} --gateway-key {key} --to 2026-13-01", USAGE),
    ("anchors export --out {missing} --workdir {missing}", USAGE),
    ("report {missing}", USAGE),
    ("report {binary}", FAILED),
    # bundle
    ("bundle --asset ghost --out {nowhere}.json --workdir {workdir}", FAILED),
    ("bundle --asset ghost --out {nowhere}.json --workdir {nowhere}", USAGE),
    ("bundle --asset ghost --out {nowhere}.json --config {missing}", USAGE),
    ("bundle --asset ghost --out {nowhere}.json --config {binary}", USAGE),
    ("bundle --asset ghost --out {nowhere}.json --from yesterday", USAGE),
    ("bundle --asset ghost --out {nowhere}.json --from 10 --to 5 --workdir {workdir}", USAGE),
    ("bundle --asset ghost", USAGE),
    # devices
    ("devices --config {missing} list", USAGE),
    ("devices --config {binary} list", USAGE),
    ("devices --workdir {nowhere} list", FAILED),
    ("devices --workdir {workdir} revoke ghost", FAILED),
    ("devices --workdir {workdir} enroll --file {binary}", FAILED),
    ("devices --workdir {workdir} enroll --file {missing}", FAILED),
    ("devices --workdir {workdir} enroll --id x --kind bus --fleet f --public-key !!", FAILED),
    ("devices --workdir {workdir} enroll --id x --kind car --fleet f --public-key AA==", USAGE),
    (
        "devices --workdir {workdir} rotate x --old-key {missing} --new-public-key AA== --seq 1",
        USAGE,
    ),
    (
        "devices --workdir {workdir} rotate x --old-key {binary} --new-public-key AA== --seq z",
        USAGE,
    ),
    ("devices --workdir {workdir} replace ghost other", FAILED),
    ("devices --workdir {workdir} replace onlyone", USAGE),
    (
        "devices --workdir {workdir} enroll --id x --kind bus --fleet f --public-key {zero} "
        "--birth {missing}",
        USAGE,
    ),
    (
        "devices --workdir {workdir} enroll --id x --kind bus --fleet f --public-key {zero} "
        "--birth {binary}",
        FAILED,
    ),
    (
        "devices --workdir {workdir} enroll --id x --kind bus --fleet f --public-key {zero} "
        "--birth {dir}",
        USAGE,
    ),
    # manufacturer
    ("manufacturer keys new --name m --out {binary}/dir/m.key", FAILED),
    ("manufacturer keys new --out {dir}/m.key", USAGE),
    (
        "manufacturer certify --key {missing} --id x --kind pack --serial s --public-key {zero} "
        "--out {nowhere}.cert",
        USAGE,
    ),
    (
        "manufacturer certify --key {binary} --id x --kind pack --serial s --public-key {zero} "
        "--out {nowhere}.cert",
        USAGE,
    ),
    (
        "manufacturer certify --key {binary} --id x --kind car --serial s --public-key {zero} "
        "--out {nowhere}.cert",
        USAGE,
    ),
    ("devices --workdir {workdir} enroll --id x --kind bus --fleet f --public-key a+b+c", FAILED),
    # broker-credentials
    ("broker-credentials --config {missing} --out-dir {nowhere} --passwords {nowhere}.txt", USAGE),
    ("broker-credentials --config {binary} --out-dir {nowhere} --passwords {nowhere}.txt", USAGE),
    ("broker-credentials --workdir {nowhere} --out-dir {nowhere} --passwords {nowhere}.t", FAILED),
    ("broker-credentials --workdir {workdir} --out-dir {binary} --passwords {nowhere}.t", FAILED),
    ("broker-credentials --workdir {workdir}", USAGE),
    # gateway
    ("gateway migrate --workdir {nowhere}", USAGE),
    ("gateway migrate --config {binary}", USAGE),
    ("gateway --config {missing}", USAGE),
    ("gateway --config {binary}", USAGE),
    ("gateway --config {example}", USAGE),
    ("gateway check --config {missing}", USAGE),
    ("gateway check --workdir {nowhere}", USAGE),
    # agent and sim
    ("agent --config {missing}", USAGE),
    ("agent --config {binary}", USAGE),
    ("agent", USAGE),
    ("sim --fleet {missing} --broker " + DEAD_BROKER, USAGE),
    ("sim --fleet {binary} --broker " + DEAD_BROKER, USAGE),
    ("sim --fleet {missing} --broker not-a-url", USAGE),
    ("sim --fleet {missing} --broker http://127.0.0.1:9", USAGE),
    ("sim --fleet {missing} --broker mqtt://h:port", USAGE),
    ("sim --fleet {missing} --broker " + DEAD_BROKER + " --duration soon", USAGE),
    # api
    ("api --config {missing}", USAGE),
    ("api --config {binary}", USAGE),
    ("api --workdir {nowhere}", USAGE),
    ("api --workdir {workdir} --port eighty", USAGE),
    ("api --workdir {workdir} --port 99999", USAGE),
    ("api keys create --role king --name k --workdir {workdir}", USAGE),
    ("api leases add --asset a --lessor l --from yesterday --to 5 --workdir {workdir}", USAGE),
    ("api leases add --asset a --lessor l --from 10 --to 5 --workdir {workdir}", USAGE),
    ("api transfer --pack p --to nobody --workdir {workdir}", FAILED),
    ("api transfer --pack pack-9999 --to bank --workdir {workdir}", FAILED),
    ("api leases add --asset pack-9999 --lessor bank --from 1 --to 5 --workdir {workdir}", FAILED),
    ("api leases list --config {binary}", USAGE),
    # anchors
    ("anchors status --rpc not-a-url --contract 0x0 --origin o", USAGE),
    ("anchors verify --checkpoint {missing} --rpc " + DEAD_RPC + " --contract 0x0", USAGE),
    ("anchors verify --checkpoint {binary} --rpc " + DEAD_RPC + " --contract 0x0", USAGE),
    ("anchors deploy --rpc " + DEAD_RPC + " --key-env VOLTPROOF_NO_SUCH_KEY_VARIABLE", USAGE),
    ("anchors deploy --rpc " + DEAD_RPC + " --key-file {missing}", USAGE),
    ("anchors status --rpc " + DEAD_RPC + " --contract 0x0 --origin o", USAGE),
    ("anchors status --rpc " + DEAD_RPC + " --contract 0x" + "ab" * 20 + " --origin o", FAILED),
    ("anchors export --workdir {nowhere} --out {nowhere}.json", USAGE),
    ("anchors export --config {binary} --out {nowhere}.json", USAGE),
    ("anchors export --workdir {workdir} --out {binary}/a.json", FAILED),
    ("anchors export --workdir {workdir}", USAGE),
    # migrate (a dead PostgreSQL server: libpq's hint line joins the one error line)
    ("migrate --from {db} --to " + DEAD_POSTGRESQL, USAGE),
    ("migrate --from sqlite:{db} --to mysql://u@127.0.0.1:9/d", USAGE),
    ("migrate --from sqlite:{missing} --to " + DEAD_POSTGRESQL, FAILED),
    ("migrate --from sqlite:{binary} --to " + DEAD_POSTGRESQL, FAILED),
    ("migrate --from sqlite:{db} --to " + DEAD_POSTGRESQL, FAILED),
    # audit and log
    ("audit --workdir {nowhere}", USAGE),
    ("audit --config {binary}", USAGE),
    ("audit --leaves {missing} --gateway-key {key}", USAGE),
    ("audit --leaves {binary} --gateway-key {key}", USAGE),
    ("audit --leaves {bundle}", USAGE),
    ("audit --workdir {workdir} --gateway-key not+a+key", USAGE),
    ("log export --workdir {nowhere} --out {nowhere}.jsonl", USAGE),
    ("log export --workdir {workdir} --out {dir}", FAILED),
    ("log export --workdir {workdir}", USAGE),
    # witness
    ("witness", USAGE),
    ("witness --config {missing}", USAGE),
    ("witness --config {binary}", USAGE),
    ("witness keys new --name w --out {binary}", FAILED),
    ("witness keys new --name w --out {binary}/dir/w.key", FAILED),
    # report's passport setting
    ("report {bundle} --passport --passport-setting {missing}", USAGE),
    ("report {bundle} --passport --passport-setting {binary}", USAGE),
    # demo
    ("demo --devices 1", USAGE),
    ("demo --duration soon", USAGE),
    ("demo --ledger moon", USAGE),
    ("demo --api-port 70000", USAGE),
    ("demo --workdir {binary} --duration 1", FAILED),
    ("demo --workdir {binary}/demo --duration 1", FAILED),
]


@pytest.mark.parametrize(("command", "code"), CORPUS, ids=[c for c, _ in CORPUS])
def test_wrong_input_gives_one_line_and_the_documented_code(
    world: World, command: str, code: int
) -> None:
    """No traceback, the documented exit code, and a ``voltproof``-prefixed reason."""
    args = [world.path(arg) for arg in command.split()]
    result = _voltproof(*args, cwd=world.tmp)
    printed = result.stdout + result.stderr
    assert "Traceback" not in printed, printed
    assert result.returncode == code, printed
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(("voltproof", "usage: voltproof")), printed
    assert "unexpected error" not in printed, printed


def test_the_repository_gains_no_files(world: World) -> None:
    """Running the corpus from elsewhere writes no new file into the repository's configs/."""
    status = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard", "configs"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert status.stdout == ""
