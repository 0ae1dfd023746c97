"""Benchmarks; each module runs with one documented command and prints ratios to its baseline."""
