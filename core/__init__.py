"""The small core every phase imports: records and errors, settings, redaction, signals, files.

It imports nothing else of the project. Above it sit the phases (build/, platforms/,
validations/, verdict/, publish/), and above them the pytest plugin (harness/), which nothing
imports. tests/unit/test_layers.py fails if a dependency ever points the other way.
"""

__version__ = "0.2.0"
