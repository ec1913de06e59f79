"""The pytest plugin that runs the template pipeline: options, preflight, scheduling, verdict."""

__version__ = "0.1.0"
