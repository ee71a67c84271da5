"""Benchmarks: `make bench` runs them all; `python -m bench NAME` runs one.

Each module exposes ``run() -> dict`` and its figures land in ``bench/results/NAME.json``.
"""
