-- voltproof gateway store, schema version 2: decoded samples as one block per message.
-- The per-sample tables pack_samples and bus_samples give way to sample_blocks
-- (gateway/store/blocks.py): one row per telemetry leaf, whose blob holds the message's wire
-- columns. Existing blocks are rebuilt from the signed messages themselves, through the SQL
-- function sample_block(cose, part) that gateway.store.migrate registers, not from the old
-- decoded rows.
CREATE TABLE sample_blocks (
    leaf_index INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('bus', 'pack')),
    t_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL CHECK (last_ms >= t_ms),
    dt_ms INTEGER NOT NULL CHECK (dt_ms > 0),
    n INTEGER NOT NULL CHECK (n >= 1),
    columns BLOB NOT NULL
);
CREATE INDEX sample_blocks_by_device_time ON sample_blocks (device, t_ms, last_ms);
CREATE INDEX sample_blocks_by_device_last ON sample_blocks (device, last_ms);

INSERT INTO sample_blocks (leaf_index, device, kind, t_ms, last_ms, dt_ms, n, columns)
SELECT leaf_index, device, sample_block(cose, 'kind'), sample_block(cose, 't_ms'),
       sample_block(cose, 'last_ms'), sample_block(cose, 'dt_ms'), sample_block(cose, 'n'),
       sample_block(cose, 'columns')
FROM leaves WHERE kind = 'telemetry' ORDER BY leaf_index;

DROP TABLE pack_samples;
DROP TABLE bus_samples;
