"""Helpers shared by the bench scripts; no benchmark lives here (tests/test_bench.py runs bench/*.py only)."""
