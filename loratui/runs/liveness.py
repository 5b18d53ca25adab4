"""A run is alive only if its recorded pid exists *and* started when recorded (engine.liveness). Runs whose
process is gone are caught up and marked crashed by loratui.runs.ingest.catch_up."""

from engine.liveness import is_alive, process_start_time

__all__ = ["is_alive", "process_start_time"]
