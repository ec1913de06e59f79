"""The CloudStack settings: parsed once in the table, the keys from the environment only and
masked wherever text leaves the harness."""

from __future__ import annotations

import pytest

from core.errors import UsageError
from core.redact import Redactor
from core.settings import Settings
from publish.cloudstack.api import CloudStackApi

ENV = {
    "TEMPLATE_CLOUDSTACK": "1",
    "CLOUDSTACK_ENDPOINT": "http://127.0.0.1:9/client/api",
    "CLOUDSTACK_API_KEY": "the-api-key-0123",
    "CLOUDSTACK_SECRET_KEY": "the/secret+key=0123",
    "CLOUDSTACK_ZONES": " zone-a, zone-b ,",
    "CLOUDSTACK_RETENTION": "2",
}


def test_parsed_once_into_a_typed_object() -> None:
    cs = Settings.from_env(env=ENV).cloudstack
    assert cs.enabled and cs.zones == ("zone-a", "zone-b") and cs.retention == 2
    assert (cs.url_lifetime, cs.timeout, cs.featured, cs.public) == (86400.0, 7200.0, True, True)
    assert "the/secret" not in repr(cs) and "the-api-key" not in repr(cs)
    assert {"the-api-key-0123", "the/secret+key=0123"} <= set(Settings.from_env(env=ENV).secrets())


def test_keys_are_refused_on_a_command_line() -> None:
    with pytest.raises(UsageError, match="CLOUDSTACK_SECRET_KEY in the environment instead"):
        Settings.from_env(env={}, cloudstack_secret_key="the/secret+key=0123")
    with pytest.raises(UsageError, match="CLOUDSTACK_RETENTION='0' is not a positive"):
        Settings.from_env(env={**ENV, "CLOUDSTACK_RETENTION": "0"})


def test_an_unreachable_endpoint_is_one_line_without_the_keys() -> None:
    settings = Settings.from_env(env=ENV)
    api = CloudStackApi(settings.cloudstack, Redactor(settings.secrets()))
    from core.errors import InfrastructureError

    with pytest.raises(InfrastructureError) as e:
        api.call("listZones")
    text = str(e.value)
    assert text.startswith("cannot reach CloudStack at http://127.0.0.1:9/client/api")
    assert "\n" not in text and "the-api-key" not in text and "the/secret" not in text


def test_endpoint_must_be_http() -> None:
    settings = Settings.from_env(env={**ENV, "CLOUDSTACK_ENDPOINT": "cloud.example.org"})
    with pytest.raises(UsageError, match="is not an http\\(s\\) URL"):
        CloudStackApi(settings.cloudstack, Redactor())
