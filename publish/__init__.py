"""Publish phase: upload exactly the templates whose checks all passed, completely or not at all.

Entry points: `xcpng-golden publish` (a separate CI step), `publish.api` (the pytest plugin's
`--publish` at session end) and `xcpng-golden store prune` (retention).
"""
