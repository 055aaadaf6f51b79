"""Helpers shared by the test packages: worlds, fakes, strategies, contract suites, paths.

Test modules import from here and never from one another.
"""
