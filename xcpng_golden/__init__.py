"""Operator commands that are not a pytest run, at the top layer: they may join any phases.

Named after the console script, not `cli`: python-hcl2 installs a top-level `cli` package.
"""
