-- A summary beside each sample block (gateway/store/blocks.py, summary): per column the min,
-- max and sum of the block's wire integers, so a chart over months reads one small row per
-- block instead of decoding the block; host is the bus a pack's message names (its history
-- reads it instead of decoding every message). Derived data, written in the same transaction
-- as the block. Blocks stored before this version get theirs from gateway.store.postgresql.migrate
-- in the transaction that applies this script (computed from the stored blocks in Python).
CREATE TABLE sample_summaries (
    leaf_index BIGINT PRIMARY KEY,
    stats BYTEA NOT NULL,
    host TEXT
);
