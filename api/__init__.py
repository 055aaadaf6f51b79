"""The dashboard API and web page (reads the gateway's store; never imports MQTT code)."""
