-- voltproof gateway store, schema version 1.
-- The Merkle node tables (merkle_nodes, merkle_size) come from ledger.merkle_sqlite.SCHEMA and
-- are created in the same transaction as this file.

-- Device registry: current state per device. Every change is also a log leaf (registry_events).
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('bus', 'pack')),
    fleet TEXT NOT NULL,
    public_key BLOB NOT NULL CHECK (length(public_key) = 32),
    status TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
    enrolled_leaf INTEGER NOT NULL,
    rotated_leaf INTEGER,
    revoked_leaf INTEGER
) WITHOUT ROWID;

-- Every key a device ever had: the leaf that made it valid and the message seqs it signs,
-- [from_seq, until_seq); a rotation entry closes the old key's range at the rotation's seq.
CREATE TABLE device_keys (
    device TEXT NOT NULL REFERENCES devices (id),
    public_key BLOB NOT NULL CHECK (length(public_key) = 32),
    valid_from_leaf INTEGER NOT NULL,
    from_seq INTEGER NOT NULL,
    until_seq INTEGER,
    PRIMARY KEY (device, valid_from_leaf)
) WITHOUT ROWID;

CREATE TABLE registry_events (
    leaf_index INTEGER PRIMARY KEY,
    action TEXT NOT NULL CHECK (action IN ('enroll', 'rotate', 'revoke')),
    device TEXT NOT NULL,
    recorded_at_ms INTEGER NOT NULL
);
CREATE INDEX registry_events_by_device ON registry_events (device, leaf_index);

-- Every log leaf: telemetry messages (device, seq set) and registry entries (device, seq NULL).
CREATE TABLE leaves (
    leaf_index INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('telemetry', 'registry')),
    device TEXT NOT NULL,
    seq INTEGER,
    t_ms INTEGER,
    received_at_ms INTEGER NOT NULL,
    historical INTEGER NOT NULL DEFAULT 0 CHECK (historical IN (0, 1)),
    prev BLOB,
    message_hash BLOB NOT NULL CHECK (length(message_hash) = 32),
    cose BLOB NOT NULL
);
CREATE UNIQUE INDEX leaves_by_device_seq ON leaves (device, seq) WHERE seq IS NOT NULL;
CREATE INDEX leaves_by_device_time ON leaves (device, t_ms) WHERE seq IS NOT NULL;

-- Per-device hash chain: the highest seq accepted and its message hash.
CREATE TABLE chain_heads (
    device TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    message_hash BLOB NOT NULL CHECK (length(message_hash) = 32),
    duplicates INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Sequence numbers below the head not received yet, as half-open ranges [start, stop).
CREATE TABLE chain_gaps (
    device TEXT NOT NULL,
    start INTEGER NOT NULL,
    stop INTEGER NOT NULL CHECK (stop > start),
    PRIMARY KEY (device, start)
) WITHOUT ROWID;

-- Decoded samples, one wide table per device kind, in the units of ledger.telemetry.
CREATE TABLE pack_samples (
    device TEXT NOT NULL,
    t_ms INTEGER NOT NULL,
    leaf_index INTEGER NOT NULL,
    voltage_v REAL NOT NULL,
    current_a REAL NOT NULL,
    soc REAL NOT NULL,
    cell_v_max REAL NOT NULL,
    cell_v_max_pos INTEGER NOT NULL,
    cell_v_min REAL NOT NULL,
    cell_v_min_pos INTEGER NOT NULL,
    temp_max_c REAL NOT NULL,
    temp_max_pos INTEGER NOT NULL,
    temp_min_c REAL NOT NULL,
    temp_min_pos INTEGER NOT NULL,
    insulation_ohm REAL NOT NULL,
    alarm_level INTEGER NOT NULL,
    alarm_flags INTEGER NOT NULL,
    soh_capacity REAL NOT NULL,
    resistance_growth REAL NOT NULL,
    r0_ohm REAL NOT NULL,
    capacity_ah REAL NOT NULL,
    energy_in_wh REAL NOT NULL,
    energy_out_wh REAL NOT NULL,
    ah_in REAL NOT NULL,
    ah_out REAL NOT NULL,
    charge_state INTEGER NOT NULL
);
CREATE INDEX pack_samples_by_device_time ON pack_samples (device, t_ms);

CREATE TABLE bus_samples (
    device TEXT NOT NULL,
    t_ms INTEGER NOT NULL,
    leaf_index INTEGER NOT NULL,
    speed_mps REAL NOT NULL,
    odometer_m REAL NOT NULL,
    lat_deg REAL NOT NULL,
    lon_deg REAL NOT NULL,
    vehicle_state INTEGER NOT NULL,
    charge_state INTEGER NOT NULL,
    traction_power_w REAL NOT NULL,
    aux_power_w REAL NOT NULL,
    ambient_c REAL NOT NULL,
    at_stop INTEGER NOT NULL
);
CREATE INDEX bus_samples_by_device_time ON bus_samples (device, t_ms);

-- Alarms: telemetry alarm levels >= 1 (source 'telemetry') and gateway findings such as
-- forks (source 'gateway').
CREATE TABLE alarms (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    t_ms INTEGER NOT NULL,
    level INTEGER NOT NULL,
    flags INTEGER NOT NULL DEFAULT 0,
    source TEXT NOT NULL CHECK (source IN ('telemetry', 'gateway')),
    detail TEXT NOT NULL DEFAULT '',
    leaf_index INTEGER
);
CREATE INDEX alarms_by_device_time ON alarms (device, t_ms);
CREATE INDEX alarms_by_time ON alarms (t_ms);

-- Rejected input, bounded: the oldest rows are evicted beyond the cap; the counts stay.
CREATE TABLE quarantine (
    id INTEGER PRIMARY KEY,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    topic TEXT NOT NULL,
    device TEXT,
    raw BLOB NOT NULL,
    raw_size INTEGER NOT NULL,
    received_at_ms INTEGER NOT NULL
);
CREATE INDEX quarantine_by_reason ON quarantine (reason, id);

CREATE TABLE quarantine_counts (
    reason TEXT PRIMARY KEY,
    total INTEGER NOT NULL DEFAULT 0,
    evicted INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Signed checkpoints and their anchors.
CREATE TABLE checkpoints (
    size INTEGER PRIMARY KEY,
    root BLOB NOT NULL CHECK (length(root) = 32),
    note TEXT NOT NULL,
    signed_at_ms INTEGER NOT NULL,
    anchor_state TEXT NOT NULL DEFAULT 'unanchored'
        CHECK (anchor_state IN ('unanchored', 'pending', 'final', 'superseded'))
);
CREATE INDEX checkpoints_by_anchor_state ON checkpoints (anchor_state, size);

CREATE TABLE anchor_receipts (
    size INTEGER PRIMARY KEY REFERENCES checkpoints (size),
    backend TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'final')),
    receipt TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
