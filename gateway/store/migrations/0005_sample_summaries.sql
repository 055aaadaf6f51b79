-- voltproof gateway store, schema version 5: a summary beside each sample block.
-- One row per sample block (gateway/store/blocks.py, summary): per column the min, max and
-- sum of the block's wire integers, so a chart over months reads one small row per block
-- instead of decoding the block. Derived data, written in the same transaction as the block;
-- blocks stored before this version get theirs here, computed from the stored block through
-- the SQL function block_summary(kind, n, columns) that gateway.store.migrate registers.
CREATE TABLE sample_summaries (
    leaf_index INTEGER PRIMARY KEY,
    stats BLOB NOT NULL
);

INSERT INTO sample_summaries (leaf_index, stats)
SELECT leaf_index, block_summary(kind, n, columns) FROM sample_blocks ORDER BY leaf_index;
