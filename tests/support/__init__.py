"""Helpers shared by the harness's own tests."""
