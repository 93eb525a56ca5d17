"""Helpers shared by the unit, end-to-end and cluster tests, the benchmarks and the demo.

Test files import from here and from their conftest, never from another test file.
"""
