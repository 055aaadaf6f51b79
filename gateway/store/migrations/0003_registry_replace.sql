-- voltproof gateway store, schema version 3: registry rules v2 (docs/protocol.md).
-- A `replace` entry names two devices (the revoked one and its successor), so
-- registry_events holds one row per (leaf, device) it names: the device index and every
-- per-device registry read count the entry for each. Enrolments keep their birth
-- certificate (also inside the signed entry) and a device its successor.
CREATE TABLE registry_events_v3 (
    leaf_index INTEGER NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('enroll', 'rotate', 'revoke', 'replace')),
    device TEXT NOT NULL,
    recorded_at_ms INTEGER NOT NULL,
    PRIMARY KEY (leaf_index, device)
) WITHOUT ROWID;
INSERT INTO registry_events_v3 (leaf_index, action, device, recorded_at_ms)
SELECT leaf_index, action, device, recorded_at_ms FROM registry_events;
DROP TABLE registry_events;
ALTER TABLE registry_events_v3 RENAME TO registry_events;
CREATE INDEX registry_events_by_device ON registry_events (device, leaf_index);

ALTER TABLE devices ADD COLUMN birth BLOB;
ALTER TABLE devices ADD COLUMN replaced_by TEXT;
ALTER TABLE devices ADD COLUMN replaced_leaf INTEGER;
