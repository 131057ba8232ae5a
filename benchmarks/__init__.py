"""Benchmarks of the course library against reference tools (run with ``make bench``)."""
