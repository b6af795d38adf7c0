"""Benchmarks that measure the service against limits taken in the same run.

Not part of the test run: ``python -m tests.benchmarks.run [--only NAME] [--scale small|full]``.
"""
