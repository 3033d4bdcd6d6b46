"""Measurements: python -m benchmarks [--quick]."""
