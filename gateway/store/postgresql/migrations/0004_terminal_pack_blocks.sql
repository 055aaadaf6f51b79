-- A GB/T 32960 terminal's pack samples (SQLite: version 6). A terminal's frame gives two
-- sample blocks of one leaf and one device (the VIN): its bus block, as before, and a pack
-- block (ledger/gbt32960/columns.py, pack_telemetry). So sample_blocks and sample_summaries
-- are keyed by (leaf_index, kind), and every read names the kind it reads: the indexes lead
-- with (device, kind). A summary takes the kind of its block (of its leaf's device when the
-- block is gone, so `gateway check` still reports it). The terminal leaves already stored get
-- their pack blocks, summaries and alarms from gateway.store.postgresql.migrate in the
-- transaction that applies this script (derived from the frames in Python).
ALTER TABLE sample_blocks DROP CONSTRAINT sample_blocks_pkey;
ALTER TABLE sample_blocks ADD PRIMARY KEY (leaf_index, kind);
DROP INDEX sample_blocks_by_device_time;
DROP INDEX sample_blocks_by_device_last;
CREATE INDEX sample_blocks_by_device_time
    ON sample_blocks (device, kind, t_ms, leaf_index, last_ms);
CREATE INDEX sample_blocks_by_device_last ON sample_blocks (device, kind, last_ms, leaf_index);

ALTER TABLE sample_summaries ADD COLUMN kind TEXT;
UPDATE sample_summaries AS s SET kind = coalesce(
    (SELECT b.kind FROM sample_blocks AS b WHERE b.leaf_index = s.leaf_index),
    (SELECT d.kind FROM leaves AS l JOIN devices AS d ON d.id = l.device
     WHERE l.leaf_index = s.leaf_index),
    'bus');
ALTER TABLE sample_summaries ALTER COLUMN kind SET NOT NULL;
ALTER TABLE sample_summaries ADD CHECK (kind IN ('bus', 'pack'));
ALTER TABLE sample_summaries DROP CONSTRAINT sample_summaries_pkey;
ALTER TABLE sample_summaries ADD PRIMARY KEY (leaf_index, kind);
