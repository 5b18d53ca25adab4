"""Reusable dashboard pieces: charts, the run summary, the sample panel."""
