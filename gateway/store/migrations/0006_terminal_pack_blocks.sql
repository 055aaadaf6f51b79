-- voltproof gateway store, schema version 6: a GB/T 32960 terminal's pack samples.
-- A terminal's frame gives two sample blocks of one leaf and one device (the VIN): its bus
-- block, as before, and a pack block (ledger/gbt32960/columns.py, pack_telemetry). So
-- sample_blocks and sample_summaries are keyed by (leaf_index, kind), and every read names
-- the kind it reads: the indexes lead with (device, kind). Both tables are rebuilt (SQLite
-- cannot change a primary key in place). A summary keeps the kind of its block (of its
-- leaf's device when the block is gone, so `gateway check` still reports it).
-- Then every terminal leaf already stored gets its pack block, the block's summary and, for
-- an alarm level of 1 or more, the alarm row the gateway now writes with it, all derived
-- from the frame in the leaf through the SQL function terminal_pack(cose, part) that
-- gateway.store.migrate registers (NULL for any other leaf, and for a frame that lacks a
-- pack value or does not decode).

CREATE TABLE sample_blocks_v6 (
    leaf_index INTEGER NOT NULL,
    device TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('bus', 'pack')),
    t_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL CHECK (last_ms >= t_ms),
    dt_ms INTEGER NOT NULL CHECK (dt_ms > 0),
    n INTEGER NOT NULL CHECK (n >= 1),
    columns BLOB NOT NULL,
    PRIMARY KEY (leaf_index, kind)
);
INSERT INTO sample_blocks_v6 (leaf_index, device, kind, t_ms, last_ms, dt_ms, n, columns)
SELECT leaf_index, device, kind, t_ms, last_ms, dt_ms, n, columns FROM sample_blocks
ORDER BY leaf_index;
DROP TABLE sample_blocks;
ALTER TABLE sample_blocks_v6 RENAME TO sample_blocks;
CREATE INDEX sample_blocks_by_device_time
    ON sample_blocks (device, kind, t_ms, leaf_index, last_ms);
CREATE INDEX sample_blocks_by_device_last ON sample_blocks (device, kind, last_ms, leaf_index);

CREATE TABLE sample_summaries_v6 (
    leaf_index INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('bus', 'pack')),
    stats BLOB NOT NULL,
    host TEXT,
    PRIMARY KEY (leaf_index, kind)
);
INSERT INTO sample_summaries_v6 (leaf_index, kind, stats, host)
SELECT s.leaf_index,
       coalesce(
           (SELECT b.kind FROM sample_blocks AS b WHERE b.leaf_index = s.leaf_index),
           (SELECT d.kind FROM leaves AS l JOIN devices AS d ON d.id = l.device
            WHERE l.leaf_index = s.leaf_index),
           'bus'),
       s.stats, s.host
FROM sample_summaries AS s ORDER BY s.leaf_index;
DROP TABLE sample_summaries;
ALTER TABLE sample_summaries_v6 RENAME TO sample_summaries;

INSERT INTO sample_blocks (leaf_index, device, kind, t_ms, last_ms, dt_ms, n, columns)
SELECT leaf_index, device, 'pack', terminal_pack(cose, 't_ms'), terminal_pack(cose, 'last_ms'),
       terminal_pack(cose, 'dt_ms'), terminal_pack(cose, 'n'), terminal_pack(cose, 'columns')
FROM leaves WHERE kind = 'telemetry' AND terminal_pack(cose, 'columns') IS NOT NULL
ORDER BY leaf_index;

INSERT INTO sample_summaries (leaf_index, kind, stats, host)
SELECT leaf_index, 'pack', terminal_pack(cose, 'stats'), NULL
FROM leaves WHERE kind = 'telemetry' AND terminal_pack(cose, 'stats') IS NOT NULL
ORDER BY leaf_index;

INSERT INTO alarms (device, t_ms, level, flags, source, detail, leaf_index)
SELECT device, terminal_pack(cose, 'alarm_t_ms'), terminal_pack(cose, 'alarm_level'),
       terminal_pack(cose, 'alarm_flags'), 'telemetry', '', leaf_index
FROM leaves WHERE kind = 'telemetry' AND terminal_pack(cose, 'alarm_level') >= 1
ORDER BY leaf_index;
