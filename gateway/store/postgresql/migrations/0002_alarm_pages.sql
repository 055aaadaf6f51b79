-- Alarm pages are read newest first by (t_ms, id), of one device or of all: keyset order
-- served by an index, so a page costs its own rows whatever its depth. (SQLite's indexes
-- on (device, t_ms) and (t_ms) end with the row id already.)
CREATE INDEX alarms_by_device_time_id ON alarms (device, t_ms, id);
CREATE INDEX alarms_by_time_id ON alarms (t_ms, id);
DROP INDEX alarms_by_device_time;
DROP INDEX alarms_by_time;
