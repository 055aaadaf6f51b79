"""Private key files: format, permissions, never overwriting, precise refusals."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from ledger import keys, note

PETER_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"


def write_key(path: Path, text: str, mode: int = 0o600) -> Path:
    """Write ``text`` as a key file with ``mode``."""
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_create_then_load(tmp_path: Path) -> None:
    """A created key file is 0600, one line, and loads back to the same key."""
    path = tmp_path / "device.key"
    info = keys.create_key_file(path, name="bus-0001")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text(encoding="utf-8")
    assert text.startswith(f"PRIVATE+KEY+bus-0001+{info.key_id.hex()}+")
    assert text.count("\n") == 1
    loaded = keys.load_key_file(path)
    assert loaded.name == "bus-0001"
    assert loaded.public_key == info.public_key
    assert keys.public_key_from_seed(loaded.seed) == info.public_key
    assert (
        loaded.verifier_key == info.verifier_key == note.verifier_key("bus-0001", info.public_key)
    )
    assert list(tmp_path.iterdir()) == [path]


def test_go_signer_key_loads(tmp_path: Path) -> None:
    """The sumdb/note example signer key (base64 holding '+') loads and matches its verifier."""
    loaded = keys.load_key_file(write_key(tmp_path / "peter.key", PETER_SIGNER + "\n"))
    assert loaded.verifier_key == PETER_VERIFIER


def test_seed_not_in_repr(tmp_path: Path) -> None:
    """Neither the seed bytes nor their base64 appear in the key's repr."""
    loaded = keys.load_key_file(write_key(tmp_path / "peter.key", PETER_SIGNER))
    assert "seed" not in repr(loaded)
    assert repr(loaded.seed) not in repr(loaded)
    assert "AYEKFALVFGyNhPJEMzD1" not in repr(loaded)


def test_never_overwrites(tmp_path: Path) -> None:
    """An existing file is left alone."""
    path = write_key(tmp_path / "k", "keep me")
    with pytest.raises(keys.KeyFileError, match="already exists; refusing to overwrite"):
        keys.create_key_file(path, name="bus-0001")
    assert path.read_text(encoding="utf-8") == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["k"]


def test_create_in_missing_directory(tmp_path: Path) -> None:
    """A missing directory is reported."""
    with pytest.raises(keys.KeyFileError, match="cannot create a key file in"):
        keys.create_key_file(tmp_path / "nope" / "k", name="bus-0001")


def test_create_refuses_bad_name(tmp_path: Path) -> None:
    """Key names follow the signed-note rules."""
    with pytest.raises(keys.KeyFileError, match="contains '\\+'"):
        keys.create_key_file(tmp_path / "k", name="a+b")


def test_generated_seeds_differ() -> None:
    """Two generated seeds are 32 bytes and different."""
    first, second = keys.generate_seed(), keys.generate_seed()
    assert len(first) == 32
    assert first != second


def test_public_key_from_bad_seed() -> None:
    """A seed of the wrong size is refused."""
    with pytest.raises(ValueError, match="32 bytes"):
        keys.public_key_from_seed(bytes(16))


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_load_refuses_readable_by_others(tmp_path: Path, mode: int) -> None:
    """A key file group or others can access is refused, naming its mode."""
    path = write_key(tmp_path / "k", PETER_SIGNER, mode)
    with pytest.raises(keys.KeyFileError, match=f"mode {mode:04o}.*chmod 600"):
        keys.load_key_file(path)


def test_load_missing(tmp_path: Path) -> None:
    """A missing file is named."""
    with pytest.raises(keys.KeyFileError, match="no key file at"):
        keys.load_key_file(tmp_path / "absent")


def test_load_directory(tmp_path: Path) -> None:
    """A directory is not a key file."""
    directory = tmp_path / "d"
    directory.mkdir(mode=0o700)
    with pytest.raises(keys.KeyFileError, match="is not a regular file"):
        keys.load_key_file(directory)


def test_load_not_utf8(tmp_path: Path) -> None:
    """Binary content is refused without echoing it."""
    path = tmp_path / "k"
    path.write_bytes(b"\xff\xfe")
    path.chmod(0o600)
    with pytest.raises(keys.KeyFileError, match="is not UTF-8 text"):
        keys.load_key_file(path)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not start"),
        ("PRIVATE+KEY+PeterNeumann+c74f20a3", "must be PRIVATE\\+KEY\\+<name>"),
        ("PRIVATE+KEY+Peter Neumann+c74f20a3+AYEK", "contains a space"),
        ("PRIVATE+KEY+PeterNeumann+c74f20a3+AYEK!", "not valid base64"),
        ("PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALV", "not 0x01 followed by a 32-byte seed"),
        (
            "PRIVATE+KEY+PeterNeumann+c74f20a3+" + base64.b64encode(b"\x02" + bytes(32)).decode(),
            "not 0x01 followed",
        ),
        (PETER_SIGNER.replace("c74f20a3", "00000000"), "key id '00000000' does not match"),
        (PETER_SIGNER.replace("PeterNeumann", "Peter"), "does not match the key"),
    ],
)
def test_load_refuses_malformed(tmp_path: Path, text: str, match: str) -> None:
    """Each format error is named, and the seed never appears in the message."""
    path = write_key(tmp_path / "k", text)
    with pytest.raises(keys.KeyFileError, match=match) as caught:
        keys.load_key_file(path)
    assert "AYEKFALVFGyNhPJEMzD1" not in str(caught.value)
