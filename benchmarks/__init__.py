"""Benchmarks: each script compares two implementations side by side and writes its table to RESULTS.md."""
