-- voltproof gateway store, schema version 4: witness cosignatures (C2SP cosignature/v1).
-- One row per (checkpoint, witness): the cosignature line the witness answered, verified by
-- the gateway against the witness's vkey before it is stored. The earliest one is kept: a
-- witness asked again cosigns again with a later timestamp, which proves less.
CREATE TABLE cosignatures (
    size INTEGER NOT NULL REFERENCES checkpoints (size),
    witness TEXT NOT NULL,
    timestamp INTEGER NOT NULL CHECK (timestamp >= 0),
    line TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL,
    PRIMARY KEY (size, witness)
);
CREATE INDEX cosignatures_by_witness ON cosignatures (witness, size);
