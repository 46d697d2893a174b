"""Helpers for SEMC's own test suite (a pytest plugin that isolates the environment)."""
