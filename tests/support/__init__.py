"""Shared test support: fakes, worlds and contract suites."""
