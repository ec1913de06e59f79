"""Nothing to register here: the harness is the installed project's pytest plugin.

`pip install -e .` (scripts/setup) registers `harness.plugin` through the `pytest11` entry point
`xcpng_golden`, so `pytest --os NAME` works from any folder and with artifacts anywhere.
"""
