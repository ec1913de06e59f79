"""The pytest plugin that runs the template pipeline: options, preflight, scheduling, verdict."""
