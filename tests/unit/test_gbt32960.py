"""GB/T 32960 frames and data units, checked against frames built by the independent rtm-con."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st
from rtm_con import msg_checked
from rtm_con.data_warnings import general_warnings_2016, general_warnings_2025

from firmware_sim.gbt32960 import encode as demo_encode
from ledger import gbt32960 as gbt
from ledger.gbt32960 import signature as sm2_signature
from ledger.gbt32960.frame import CMD_HEARTBEAT, CMD_LOGIN, CMD_LOGOUT, CMD_TIME_SYNC
from ledger.message import MessageError, decode_message
from ledger.telemetry import ALARM_BITS, THERMAL_EVENT_BIT
from tests.support import gbt_terminal as terminal

VIN = "LZYTBGBW5M1000001"
EDITIONS = (2016, 2025)
KEY = terminal.Sm2Key.generate()


def _realtime(edition: int, reading: terminal.Reading, **kwargs: bool) -> bytes:
    return terminal.realtime(edition, VIN, reading, key=KEY, **kwargs)


def _refit(frame: bytes) -> bytes:
    """``frame`` with its length field and check code recomputed (to reach the decoders)."""
    data = frame[24:-1]
    body = frame[2:22] + len(data).to_bytes(2, "big") + data
    return frame[:2] + body + bytes((gbt.bcc(body),))


class TestDecodedValues:
    """Decoded values equal what the independent encoder was given."""

    @pytest.mark.parametrize("edition", EDITIONS)
    @pytest.mark.parametrize(
        "reading",
        [
            terminal.Reading(at=terminal.at(0)),
            terminal.Reading(
                at=terminal.at(3600), speed_kmh=0.0, odometer_km=0.1, voltage_v=540.0,
                current_a=120.5, soc=5, insulation_kohm=60_000, lat=-33.868820, lon=-151.209296,
                vehicle_state="off", charge_state="parking_charging", alarm_level=3,
                alarm_bits=(0, 11, 18),
                cell_volts=((3.1, 3.2), (3.35, 3.05, 3.3)), probe_temps=((-5, 10), (41,)),
            ),
        ],
        ids=["driving", "charging-south-west"],
    )  # fmt: skip
    def test_realtime_columns(self, edition: int, reading: terminal.Reading) -> None:
        """Every mapped column equals the encoder's input in voltproof's wire units."""
        frame = gbt.parse_frame(_realtime(edition, reading))
        record = gbt.decode_realtime(edition, frame.data)
        pack = gbt.pack_columns(record)
        bus = gbt.bus_columns(record)
        volts = [round(v * 1000) for row in reading.cell_volts for v in row]
        temps = [t for row in reading.probe_temps for t in row]
        assert record.at_ms == int(reading.at.timestamp() * 1000)
        assert bus["spd"] == round(reading.speed_kmh * 10)
        assert bus["odo"] == round(reading.odometer_km * 10)
        assert bus["lat"] == round(reading.lat * 1e6)
        assert bus["lon"] == round(reading.lon * 1e6)
        assert bus["state"] == {"on": 1, "off": 2}[reading.vehicle_state]
        assert pack["u"] == round(reading.voltage_v * 10)
        assert pack["i"] == round(reading.current_a * 10)
        assert pack["soc"] == reading.soc * 10
        assert pack["riso"] == reading.insulation_kohm
        assert pack["alarm"] == reading.alarm_level
        assert pack["aflags"] == sum(1 << bit for bit in reading.alarm_bits)
        assert pack["chg"] == bus["chg"] == (1 if reading.charge_state == "parking_charging" else 0)
        assert pack["ucmax"] == max(volts)
        assert pack["ucmin"] == min(volts)
        assert pack["tmax"] == max(temps) * 10
        assert pack["tmin"] == min(temps) * 10
        assert record.cell_mv == tuple(
            tuple(round(v * 1000) for v in row) for row in reading.cell_volts
        )
        assert record.probe_c == reading.probe_temps

    @pytest.mark.parametrize("edition", EDITIONS)
    def test_reissue_is_the_same_data_unit(self, edition: int) -> None:
        """A reissued (0x03) frame decodes like a real-time one."""
        reading = terminal.Reading(at=terminal.at(60))
        frame = gbt.parse_frame(_realtime(edition, reading, reissue=True))
        assert frame.command == 0x03
        assert gbt.decode_realtime(edition, frame.data).voltage_dv == 6123

    @pytest.mark.parametrize("edition", EDITIONS)
    def test_login_logout_heartbeat_time(self, edition: int) -> None:
        """Login, logout, heartbeat and time calibration decode as the encoder built them."""
        login = gbt.parse_frame(terminal.login(edition, VIN, terminal.at(0), serial=7))
        assert (login.command, login.vin, login.edition) == (CMD_LOGIN, VIN, edition)
        decoded = gbt.decode_login(edition, login.data)
        assert decoded.serial == 7
        assert decoded.iccid == "89860012345678901234"
        assert decoded.pack_codes[0].startswith("PACK0001")
        logout = gbt.parse_frame(terminal.logout(edition, VIN, terminal.at(9), serial=7))
        assert logout.command == CMD_LOGOUT
        assert gbt.decode_logout(logout.data).serial == 7
        assert gbt.parse_frame(terminal.heartbeat(edition, VIN)).command == CMD_HEARTBEAT
        assert gbt.parse_frame(terminal.time_sync(edition, VIN)).command == CMD_TIME_SYNC


class TestSignatures:
    """2025 data frames verify with SM2/SM3 against the terminal's key, and only then (each
    case over both SM2 backends)."""

    @pytest.fixture(autouse=True, params=sm2_signature.SM2_BACKENDS)
    def backend(self, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
        monkeypatch.setattr(sm2_signature, "DEFAULT_BACKEND", request.param)
        return str(request.param)

    def test_valid_signature(self) -> None:
        """A frame signed by the terminal's key verifies."""
        record = gbt.decode_realtime(2025, gbt.parse_frame(_realtime(2025, terminal.Reading(
            at=terminal.at(0)))).data)  # fmt: skip
        assert record.signature is not None
        gbt.verify_sm2(signature=record.signature, signed=record.signed, public_key=KEY.public)

    def test_tampered_signature(self) -> None:
        """One flipped bit of s: refused with the 2025 bad-signature answer."""
        frame = gbt.parse_frame(_realtime(2025, terminal.Reading(at=terminal.at(0)), tamper=True))
        record = gbt.decode_realtime(2025, frame.data)
        assert record.signature is not None
        with pytest.raises(gbt.GbtSignatureError, match="does not verify") as caught:
            gbt.verify_sm2(signature=record.signature, signed=record.signed, public_key=KEY.public)
        assert gbt.answer_for(caught.value, edition=2025) == 0x05

    def test_other_key(self) -> None:
        """A signature by another terminal's key does not verify."""
        record = gbt.decode_realtime(2025, gbt.parse_frame(_realtime(2025, terminal.Reading(
            at=terminal.at(0)))).data)  # fmt: skip
        assert record.signature is not None
        with pytest.raises(gbt.GbtSignatureError, match="does not verify"):
            gbt.verify_sm2(
                signature=record.signature, signed=record.signed,
                public_key=terminal.Sm2Key.generate().public,
            )  # fmt: skip

    def test_altered_data(self) -> None:
        """A changed data byte (check code refitted) breaks the signature."""
        raw = bytearray(_realtime(2025, terminal.Reading(at=terminal.at(0))))
        raw[24 + 6 + 4] ^= 0x01  # the speed's low byte in the vehicle unit
        record = gbt.decode_realtime(2025, gbt.parse_frame(_refit(bytes(raw))).data)
        assert record.signature is not None
        with pytest.raises(gbt.GbtSignatureError):
            gbt.verify_sm2(signature=record.signature, signed=record.signed, public_key=KEY.public)

    @pytest.mark.parametrize(
        ("key", "match"),
        [(b"\x01" * 64, "not a point"), (b"\x04" * 10, "64 bytes")],
    )
    def test_bad_public_key(self, key: bytes, match: str) -> None:
        """Keys off the curve or of the wrong length are refused."""
        with pytest.raises(gbt.PublicKeyError, match=match):
            gbt.sm2_public_key(key)
        assert gbt.sm2_public_key(b"\x04" + KEY.public) == KEY.public

    def test_other_algorithm(self) -> None:
        """RSA/ECC signature blocks are not verified: refused, not accepted."""
        signature = gbt.Signature(algorithm=2, r=b"\x01", s=b"\x01")
        with pytest.raises(gbt.GbtSignatureError, match="not SM2"):
            gbt.verify_sm2(signature=signature, signed=b"", public_key=KEY.public)

    def test_zero_r(self) -> None:
        """r = 0 is refused before any curve arithmetic."""
        signature = gbt.Signature(algorithm=1, r=b"\x00", s=b"\x01")
        with pytest.raises(gbt.GbtSignatureError, match="outside"):
            gbt.verify_sm2(signature=signature, signed=b"", public_key=KEY.public)


class TestSm2Backends:
    """The C backend (GmSSL) answers as the pure-Python one does, quietly."""

    def test_backends_agree(self) -> None:
        """Over signatures of random data (r and s of every byte length the draw gives) and
        their one-bit alterations, both backends accept and refuse the same."""
        key = terminal.Sm2Key.generate()
        for round_ in range(24):
            data = hashlib.sha256(b"%d" % round_).digest() * (round_ % 5 + 1)
            r_hex, s_hex = key.sign(data)
            r, s_ = bytes.fromhex(r_hex).lstrip(b"\0"), bytes.fromhex(s_hex).lstrip(b"\0")
            cases = [
                (gbt.Signature(algorithm=1, r=r, s=s_), data),
                (gbt.Signature(algorithm=1, r=r, s=s_), data[:-1] + bytes([data[-1] ^ 1])),
                (gbt.Signature(algorithm=1, r=r[:-1] + bytes([r[-1] ^ 1]), s=s_), data),
            ]
            outcomes = []
            for signature, signed in cases:
                answers = []
                for backend in sm2_signature.SM2_BACKENDS:
                    try:
                        gbt.verify_sm2(signature=signature, signed=signed,
                                       public_key=key.public, backend=backend)  # fmt: skip
                        answers.append(True)
                    except gbt.GbtSignatureError:
                        answers.append(False)
                outcomes.append(answers)
            # the genuine signature passes both, each alteration fails both
            assert outcomes == [[True, True], [False, False], [False, False]], round_

    @pytest.mark.parametrize(
        ("r", "s"),
        [(1, 1), (0x7F, 0x80), (0xFF, 0x100), (2**255, 2**255 - 1), (2**256 - 1, 2**248),
         (2**247, 2**248 - 1)],
    )  # fmt: skip
    def test_der_encoding_matches_an_independent_encoder(self, r: int, s: int) -> None:
        """The DER the C backend is given equals the cryptography package's encoding."""
        assert sm2_signature._der_signature(r, s) == encode_dss_signature(r, s)

    def test_a_failed_verification_prints_nothing(self, capfd: pytest.CaptureFixture[str]) -> None:
        """GmSSL traces a failed verification to file descriptor 2; nothing reaches it."""
        record = gbt.decode_realtime(2025, gbt.parse_frame(
            _realtime(2025, terminal.Reading(at=terminal.at(0)), tamper=True)).data)  # fmt: skip
        assert record.signature is not None
        with pytest.raises(gbt.GbtSignatureError):
            gbt.verify_sm2(signature=record.signature, signed=record.signed,
                           public_key=KEY.public, backend="gmssl-pyx")  # fmt: skip
        assert capfd.readouterr() == ("", "")

    def test_unknown_backend(self) -> None:
        """A backend name that does not exist is a programming error, said plainly."""
        signature = gbt.Signature(algorithm=1, r=b"\x01", s=b"\x01")
        with pytest.raises(ValueError, match="not available"):
            gbt.verify_sm2(signature=signature, signed=b"", public_key=KEY.public, backend="x")


class TestBadFrames:
    """Every malformed frame raises its own typed error with the answer to send."""

    def test_bad_bcc(self) -> None:
        """A wrong check code."""
        raw = bytearray(terminal.heartbeat(2016, VIN))
        raw[-1] ^= 0xFF
        with pytest.raises(gbt.ChecksumError, match="check code"):
            gbt.parse_frame(bytes(raw))

    @pytest.mark.parametrize("edition", EDITIONS)
    def test_every_truncation(self, edition: int) -> None:
        """Every proper prefix of a frame is refused as truncated."""
        raw = _realtime(edition, terminal.Reading(at=terminal.at(0)))
        for cut in range(len(raw)):
            with pytest.raises(gbt.TruncatedFrameError):
                gbt.parse_frame(raw[:cut])

    @pytest.mark.parametrize("edition", EDITIONS)
    def test_truncated_data_unit(self, edition: int) -> None:
        """A data unit cut anywhere is refused, or (cut between units) decodes fewer units.

        2025 frames must end with the signature block, so no cut of theirs is well formed.
        """
        data = gbt.parse_frame(_realtime(edition, terminal.Reading(at=terminal.at(0)))).data
        whole = gbt.decode_realtime(edition, data).units
        accepted = []
        for cut in range(len(data)):
            try:
                shorter = gbt.decode_realtime(edition, data[:cut])
            except gbt.GbtError:
                continue
            assert shorter.units == whole[: len(shorter.units)]
            assert shorter.units != whole
            assert shorter.signature is None
            accepted.append(cut)
        assert len(accepted) <= len(whole)
        if edition == 2025:
            assert not accepted

    def test_trailing_bytes(self) -> None:
        """Bytes after the frame are refused."""
        with pytest.raises(gbt.FrameStructureError, match="follow"):
            gbt.parse_frame(terminal.heartbeat(2016, VIN) + b"\x00")

    def test_start_bytes(self) -> None:
        """Start bytes other than ## and $$."""
        raw = b"@@" + terminal.heartbeat(2016, VIN)[2:]
        with pytest.raises(gbt.FrameStructureError, match="start bytes"):
            gbt.parse_frame(raw)

    def test_length_beyond_bound(self) -> None:
        """A length field above 65531."""
        raw = terminal.heartbeat(2016, VIN)
        with pytest.raises(gbt.FrameStructureError, match="beyond 65531"):
            gbt.frame_length(raw[:22] + b"\xff\xfc")

    def test_encrypted(self) -> None:
        """An AES-encrypted data unit: the 2025 decryption-failed answer."""
        raw = bytearray(terminal.heartbeat(2025, VIN))
        raw[21] = 0x03
        frame = gbt.parse_frame(_refit(bytes(raw)))
        with pytest.raises(gbt.EncryptionError, match="AES128") as caught:
            gbt.require_plain(frame)
        assert gbt.answer_for(caught.value, edition=2025) == 0x07
        assert gbt.answer_for(caught.value, edition=2016) == 0x02

    def test_other_edition(self) -> None:
        """A 2016 data unit read as 2025 (and the reverse) is refused, not misread."""
        r2016 = gbt.parse_frame(_realtime(2016, terminal.Reading(at=terminal.at(0))))
        with pytest.raises(gbt.GbtError):
            gbt.decode_realtime(2025, r2016.data)
        r2025 = gbt.parse_frame(_realtime(2025, terminal.Reading(at=terminal.at(0))))
        with pytest.raises(gbt.GbtError):
            gbt.decode_realtime(2016, r2025.data)

    def test_unit_twice(self) -> None:
        """An information unit may appear once."""
        reading = terminal.Reading(at=terminal.at(0))
        raw = gbt.parse_frame(_realtime(2016, reading)).data
        vehicle = raw[6 : 6 + 21]
        with pytest.raises(gbt.FrameStructureError, match="twice"):
            gbt.decode_realtime(2016, raw + vehicle)

    def test_fuel_cell_unit(self) -> None:
        """A unit whose layout voltproof does not decode is refused, never skipped blindly."""
        with pytest.raises(gbt.UnsupportedUnitError, match="fuel cell"):
            gbt.decode_realtime(2016, bytes((26, 12, 6, 14, 0, 0, 0x03)) + bytes(30))

    def test_bad_time(self) -> None:
        """Month 13 is not a date."""
        with pytest.raises(gbt.FrameStructureError, match="not a date"):
            gbt.decode_logout(bytes((26, 13, 6, 14, 0, 0, 0, 1)))


class TestAnswers:
    """The platform's answers are frames the independent decoder accepts."""

    @pytest.mark.parametrize("edition", EDITIONS)
    @pytest.mark.parametrize(("flag", "name"), [(0x01, "ok"), (0x02, "nok"), (0x04, "vin_unkown")])
    def test_answer_parses_in_rtm_con(self, edition: int, flag: int, name: str) -> None:
        """rtm-con reads our answer: same command, VIN, the flag and the command's time."""
        frame = gbt.parse_frame(terminal.login(edition, VIN, terminal.at(0)))
        answer = gbt.answer_frame(frame, answer=flag, data=frame.data[:6])
        parsed = msg_checked.parse(answer)
        assert str(parsed.ack) == name
        assert str(parsed.msg_type) == "login"
        assert parsed.vin == VIN
        assert gbt.decode_time(answer[24:30]) == gbt.decode_time(frame.data)

    def test_time_round_trip(self) -> None:
        """encode_time and decode_time agree (seconds)."""
        assert gbt.decode_time(gbt.encode_time(1_796_536_812_345)) == 1_796_536_812_000


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_gbt_errors(raw: bytes) -> None:
    """The frame parser and every decoder raise nothing but GbtError on arbitrary bytes, and
    every such error names an answer flag of table 4."""
    refused: list[int] = []
    for candidate in (raw, _refit(b"##\x02\xfe" + VIN.encode() + b"\x01\x00\x00" + raw + b"\x00")):
        try:
            frame = gbt.parse_frame(candidate)
        except gbt.GbtError as exc:
            refused.append(exc.answer)
            continue
        for edition in EDITIONS:
            for decode in (
                lambda d, e=edition: gbt.decode_realtime(e, d),
                lambda d, e=edition: gbt.decode_login(e, d),
                gbt.decode_logout,
            ):
                try:
                    decode(frame.data)
                except gbt.GbtError as exc:
                    refused.append(exc.answer)
    assert set(refused) <= _ANSWERS


_ANSWERS = frozenset(range(0x01, 0x08))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_frames_raise_only_gbt_errors(data: st.DataObject) -> None:
    """Valid frames with bytes changed, inserted or removed (check code refitted)."""
    edition = data.draw(st.sampled_from(EDITIONS))
    raw = bytearray(_VALID[edition])
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(24, len(raw) - 2))
        op = data.draw(st.sampled_from(("flip", "insert", "delete")))
        if op == "flip":
            raw[at] = data.draw(st.integers(0, 255))
        elif op == "insert":
            raw.insert(at, data.draw(st.integers(0, 255)))
        elif len(raw) > 26:
            del raw[at]
    frame = gbt.parse_frame(_refit(bytes(raw)))
    try:
        record = gbt.decode_realtime(edition, frame.data)
    except gbt.GbtError:
        return
    gbt.pack_columns(record)
    gbt.bus_columns(record)
    if record.signature is not None:
        with contextlib.suppress(gbt.GbtError):
            gbt.verify_sm2(signature=record.signature, signed=record.signed, public_key=KEY.public)


_VALID = {edition: _realtime(edition, terminal.Reading(at=terminal.at(0))) for edition in EDITIONS}


def test_alarm_bits_match_the_independent_tables() -> None:
    """ALARM_BITS has exactly rtm-con's 2016 (0-18) and 2025 (0-27) bits; 23 is the thermal
    event and 19 drive-motor over-speed (GB/T 32960.3-2025 table 24 as rtm-con cites it)."""
    assert set(general_warnings_2016) == set(range(19))
    assert set(ALARM_BITS) == set(general_warnings_2025)
    assert general_warnings_2025[THERMAL_EVENT_BIT] == "pack_thermal_event_warning"
    assert general_warnings_2025[19] == "emotor_over_speed_warning"
    reading = terminal.Reading(at=terminal.at(0), alarm_level=4, alarm_bits=(THERMAL_EVENT_BIT,))
    record = gbt.decode_realtime(2025, gbt.parse_frame(_realtime(2025, reading)).data)
    assert gbt.pack_columns(record)["aflags"] == 1 << THERMAL_EVENT_BIT
    assert gbt.pack_columns(record)["alarm"] == 4


class TestEnvelope:
    """The voltproof-gbt32960/1 leaf keeps the frame byte-exact and cannot pass for COSE."""

    def test_round_trip_and_leaf_facts(self) -> None:
        """Encode, decode, read_leaf: the frame, seq, prev and the stored block come back."""
        frame = _VALID[2025]
        leaf = gbt.encode_envelope(
            received_at_ms=1_796_536_801_234, seq=7, prev=b"\x11" * 32, device_id=VIN, frame=frame
        )
        assert gbt.is_envelope(leaf)
        facts = gbt.read_leaf(leaf)
        assert facts.envelope.frame.raw == frame
        assert (facts.envelope.seq, facts.envelope.prev) == (7, b"\x11" * 32)
        assert facts.envelope.received_at_ms == 1_796_536_801_234
        assert facts.columns.columns["spd"] == [352]
        assert facts.t_ms == terminal.at(0).timestamp() * 1000
        assert gbt.envelope_hash(leaf) == hashlib.sha256(leaf).digest()

    def test_not_cose(self) -> None:
        """A COSE decoder refuses the leaf (not tag 18)."""
        leaf = gbt.encode_envelope(
            received_at_ms=0, seq=0, prev=bytes(32), device_id=VIN, frame=_VALID[2016]
        )
        with pytest.raises(MessageError):
            decode_message(leaf)

    @pytest.mark.parametrize(
        ("mutate", "match"),
        [
            (lambda b: b[:30], "at least"),
            (lambda b: b"x" + b[1:], "does not start"),
            (lambda b: b[:69] + b"\x00" + b[70:], "device id length"),
            (lambda b: b[:-1], "truncated|announces"),
        ],
        ids=["short", "magic", "id-length", "frame-cut"],
    )
    def test_malformed(self, mutate: Callable[[bytes], bytes], match: str) -> None:
        """Each malformed envelope is a GbtError naming what is wrong."""
        leaf = gbt.encode_envelope(
            received_at_ms=0, seq=0, prev=bytes(32), device_id=VIN, frame=_VALID[2016]
        )
        with pytest.raises(gbt.GbtError, match=match):
            gbt.read_leaf(mutate(leaf))

    def test_login_frame_is_not_a_leaf(self) -> None:
        """Only data frames become leaves."""
        leaf = gbt.encode_envelope(
            received_at_ms=0, seq=0, prev=bytes(32), device_id=VIN,
            frame=terminal.login(2016, VIN, terminal.at(0)),
        )  # fmt: skip
        with pytest.raises(gbt.FrameStructureError, match="data frames"):
            gbt.read_leaf(leaf)


class TestTerminalEntry:
    """The registry's gbt field."""

    def test_round_trip(self) -> None:
        """fields() reads back; the placeholder key is fixed per VIN."""
        entry = gbt.Terminal(vin=VIN, chip="SE-1", sm2=b"\x04" + KEY.public)
        assert gbt.read_terminal({"gbt": entry.fields()}) == entry
        assert gbt.read_terminal({}) is None
        assert (
            gbt.placeholder_key(VIN)
            == gbt.placeholder_key(VIN)
            != gbt.placeholder_key("LZYTBGBW5M1000002")
        )

    def test_enrolled_edition(self) -> None:
        """An enrolled edition reads back and allows only frames of that edition."""
        entry = gbt.Terminal(vin=VIN, chip="SE-1", sm2=KEY.public, edition=2025)
        assert gbt.read_terminal({"gbt": entry.fields()}) == entry
        assert (entry.allows(2025), entry.allows(2016)) == (True, False)
        either = gbt.Terminal(vin=VIN, chip="SE-1", sm2=KEY.public)
        assert "edition" not in either.fields()
        assert (either.allows(2025), either.allows(2016)) == (True, True)

    @pytest.mark.parametrize(
        ("value", "match"),
        [
            ("nope", "must be a map"),
            ({"vin": VIN, "chip": "c"}, "needs text vin"),
            ({"vin": "SHORT", "chip": "c", "sm2": KEY.public}, "17 ASCII"),
            ({"vin": VIN, "chip": "", "sm2": KEY.public}, "chip id"),
            ({"vin": VIN, "chip": "c", "sm2": b"\x01" * 64}, "not a point"),
            ({"vin": VIN, "chip": "c", "sm2": KEY.public, "edition": 2020}, "not 2016 or 2025"),
            ({"vin": VIN, "chip": "c", "sm2": KEY.public, "edition": True}, "not 2016 or 2025"),
            ({"vin": VIN, "chip": "c", "sm2": KEY.public, "extra": 1}, "unknown keys"),
        ],
    )
    def test_malformed(self, value: object, match: str) -> None:
        """A malformed gbt field is refused with the reason."""
        with pytest.raises(gbt.TerminalEntryError, match=match):
            gbt.read_terminal({"gbt": value})


def test_bus_block_refuses_out_of_range_values() -> None:
    """A latitude beyond 90 degrees (valid GB/T bytes) does not reach the sample tables."""
    reading = terminal.Reading(at=terminal.at(0), lat=91.0)
    record = gbt.decode_realtime(2016, gbt.parse_frame(_realtime(2016, reading)).data)
    with pytest.raises(gbt.FrameStructureError, match="latitude"):
        gbt.bus_telemetry(record)


@pytest.mark.parametrize("edition", EDITIONS)
def test_pack_block_holds_the_frames_pack_values_and_zeros_elsewhere(edition: int) -> None:
    """The pack block stored beside the bus block: one sample at the collection time, every
    column of TERMINAL_COLUMNS the frame's value, the columns GB/T 32960 lacks 0."""
    reading = terminal.Reading(
        at=terminal.at(60), voltage_v=540.0, current_a=-120.5, soc=5, alarm_level=2,
        alarm_bits=(1,), charge_state="parking_charging",
        cell_volts=((3.1, 3.2), (3.35, 3.05, 3.3)), probe_temps=((-5, 10), (41,)),
    )  # fmt: skip
    record = gbt.decode_realtime(edition, gbt.parse_frame(_realtime(edition, reading)).data)
    block = gbt.pack_telemetry(record)
    assert block is not None
    assert gbt.pack_gap(record) is None
    assert (block.kind, block.t_ms, block.dt_ms, block.n) == ("pack", record.at_ms, 1000, 1)
    carried = gbt.pack_columns(record)
    assert set(carried) == set(gbt.TERMINAL_COLUMNS["pack"])
    assert {key: list(block.columns[key]) for key in carried} == {
        key: [value] for key, value in carried.items()
    }
    assert {key: list(v) for key, v in block.columns.items() if key not in carried} == {
        key: [0] for key in ("soh_c", "soh_r", "r0", "cap", "e_in", "e_out", "ah_in", "ah_out")
    }
    assert carried["i"] == -1205
    assert (carried["ucmax"], carried["ucmax_pos"], carried["ucmin"], carried["ucmin_pos"]) == (
        3350, 3, 3050, 4,
    )  # fmt: skip
    assert (carried["tmax"], carried["tmax_pos"], carried["tmin"], carried["tmin_pos"]) == (
        410, 3, -50, 1,
    )  # fmt: skip


@pytest.mark.parametrize("edition", EDITIONS)
@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"soc": 255}, "the frame carries no valid state of charge"),
        ({"current_a": 3100.0}, "pack current, positive = discharge, negative = charge = 31000 "
                                "(0.1 A) is outside -30000..30000"),
    ],
    ids=["soc-invalid", "current-beyond-3000-A"],
)  # fmt: skip
def test_no_pack_block_without_a_whole_pack_reading(
    edition: int, change: dict[str, object], reason: str
) -> None:
    """A frame lacking a pack value (marked invalid) or holding one beyond voltproof's range
    gives no pack block, and says why; its bus block is stored all the same."""
    reading = dataclasses.replace(terminal.Reading(at=terminal.at(0)), **change)  # type: ignore[arg-type]
    record = gbt.decode_realtime(edition, gbt.parse_frame(_realtime(edition, reading)).data)
    assert gbt.pack_telemetry(record) is None
    gap = gbt.pack_gap(record)
    assert gap is not None
    assert reason in gap
    assert gbt.bus_telemetry(record).n == 1


@pytest.mark.parametrize("edition", EDITIONS)
def test_alarm_of_a_frame_without_pack_block_rides_on_the_bus_block(edition: int) -> None:
    """A fault frame (state of charge invalid, level-3 alarm) gives no pack block, and its
    alarm level and flags become an alarm event of the bus block; with a pack block the
    alarm stays in the pack columns only (never counted twice)."""
    fault = terminal.Reading(at=terminal.at(0), soc=255, alarm_level=3, alarm_bits=(1,))
    record = gbt.decode_realtime(edition, gbt.parse_frame(_realtime(edition, fault)).data)
    assert gbt.pack_telemetry(record) is None
    (event,) = gbt.bus_telemetry(record).events
    assert (event.kind, event.data) == ("alarm", {"lvl": 3, "flags": 1 << 1})
    whole = dataclasses.replace(fault, soc=50)
    record = gbt.decode_realtime(edition, gbt.parse_frame(_realtime(edition, whole)).data)
    assert gbt.pack_telemetry(record) is not None
    assert gbt.bus_telemetry(record).events == ()


@pytest.mark.parametrize("edition", EDITIONS)
def test_demo_terminal_frames_parse_in_rtm_con(edition: int) -> None:
    """The demo's own terminal encoder writes frames the independent decoder reads, with the
    same units and values the gateway decodes."""
    key = demo_encode.TerminalKey.generate()
    values = demo_encode.Values(
        at_ms=1_796_536_800_000, speed_dkmh=300, odometer_hm=1000, voltage_dv=6000,
        current_da=-100, soc_pct=50, insulation_kohm=3000, lat_udeg=31_000_000,
        lon_udeg=-121_000_000, cell_mv=(3300, 3310, 3290), probe_c=(25, 26),
    )  # fmt: skip
    raw = demo_encode.realtime(edition, VIN, values, key=key)
    parsed = msg_checked.parse(raw)
    vehicle = parsed.payload.data_list[0].data_content
    assert float(vehicle.vehicle_speed) == pytest.approx(30.0)
    assert float(vehicle.current_total) == pytest.approx(-10.0)
    record = gbt.decode_realtime(edition, gbt.parse_frame(raw).data)
    assert (record.lon_udeg, record.cell_max_mv, record.temp_min_c) == (-121_000_000, 3310, 25)
    if record.signature is not None:
        gbt.verify_sm2(signature=record.signature, signed=record.signed, public_key=key.public)


class TestVerifyLeaf:
    """The offline verifier's check of one leaf against the terminal's registry entry."""

    def _leaf(self, edition: int, *, vin: str = VIN, tamper: bool = False) -> bytes:
        frame = terminal.realtime(
            edition, vin, terminal.Reading(at=terminal.at(0)), key=KEY, tamper=tamper
        )
        return gbt.encode_envelope(
            received_at_ms=1_796_536_801_000, seq=0, prev=bytes(32), device_id=VIN, frame=frame
        )

    def test_2025_is_the_terminals(self) -> None:
        """A 2025 leaf verifies under the enrolled SM2 key and says it is signed."""
        entry = gbt.Terminal(vin=VIN, chip="SE-1", sm2=KEY.public)
        _, proves = gbt.verify_leaf(self._leaf(2025), terminal=entry)
        assert proves == f"signed by terminal {VIN} (SM2, chip SE-1)"

    def test_2016_is_only_received(self) -> None:
        """A 2016 leaf proves only its receipt by the gateway, and says so."""
        entry = gbt.Terminal(vin=VIN, chip="SE-1", sm2=KEY.public)
        _, proves = gbt.verify_leaf(self._leaf(2016), terminal=entry)
        assert proves == "received by the gateway at 1796536801000 (unsigned 2016 frame)"

    def test_refusals(self) -> None:
        """A tampered signature, another terminal's key, a frame of another VIN."""
        entry = gbt.Terminal(vin=VIN, chip="SE-1", sm2=KEY.public)
        with pytest.raises(gbt.GbtSignatureError):
            gbt.verify_leaf(self._leaf(2025, tamper=True), terminal=entry)
        other = gbt.Terminal(vin=VIN, chip="SE-1", sm2=terminal.Sm2Key.generate().public)
        with pytest.raises(gbt.GbtSignatureError):
            gbt.verify_leaf(self._leaf(2025), terminal=other)
        with pytest.raises(gbt.FrameStructureError, match="holds a frame of VIN"):
            gbt.verify_leaf(self._leaf(2016, vin="LZYTBGBW5M1000002"), terminal=entry)
