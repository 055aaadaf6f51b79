"""The edge agent (one device) and the fleet simulator with battery and e-bus physics."""
