"""Run processes: launching, watching, stopping, and telling a live run from a dead one."""
