-- voltproof gateway store, schema version 5: a summary beside each sample block.
-- One row per sample block (gateway/store/blocks.py, summary): per column the min, max and
-- sum of the block's wire integers, so a chart over months reads one small row per block
-- instead of decoding the block; host is the bus a pack's message names (its history reads it
-- instead of decoding every message). Derived data, written in the same transaction as the
-- block; blocks stored before this version get theirs here, through the SQL functions
-- block_summary(kind, n, columns) and message_host(cose) that gateway.store.migrate registers.
CREATE TABLE sample_summaries (
    leaf_index INTEGER PRIMARY KEY,
    stats BLOB NOT NULL,
    host TEXT
);

INSERT INTO sample_summaries (leaf_index, stats, host)
SELECT b.leaf_index, block_summary(b.kind, b.n, b.columns), message_host(l.cose)
FROM sample_blocks AS b JOIN leaves AS l ON l.leaf_index = b.leaf_index
ORDER BY b.leaf_index;
