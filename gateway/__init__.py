"""The gateway: MQTT intake, verification, storage, log appends, checkpoints and anchoring."""
