"""The settings table as pytest options, in one `--help` group."""

from __future__ import annotations

import pytest

from core.errors import UsageError
from core.settings import GROUP, OPTIONS, Settings


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup(GROUP, "build, boot, check and publish XCP-ng templates")
    for o in OPTIONS:
        env_note = f" [env {o.env}" + (f", default {o.default}]" if o.default else "]")
        if o.secret:
            env_note = f" [env {o.env} only: secrets are refused on the command line]"
        if o.kind == "flag":
            group.addoption(o.flag, action="store_true", default=None, help=o.help + env_note)
        elif o.kind == "choice":
            group.addoption(o.flag, choices=list(o.choices), default=None, help=o.help + env_note)
        else:
            group.addoption(o.flag, default=None, help=o.help + env_note)


def settings_from(config: pytest.Config) -> Settings:
    """The session's settings; a bad value stops pytest with one usage error."""
    try:
        return Settings.resolve({o.dest: config.getoption(o.dest, default=None) for o in OPTIONS})
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
