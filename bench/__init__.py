"""Benchmarks of the product paths against baselines run in the same session: `python -m bench`."""
