"""Benchmarks: python -m benchmarks.bench (see bench.py). Not installed with the package."""
