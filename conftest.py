"""Registers the template harness; everything else lives in harness/."""

pytest_plugins = ["harness.plugin"]
