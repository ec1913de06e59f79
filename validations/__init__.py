"""The template checks: one module per concern, each with a stable id (validations/expected.py)."""
