"""Registration of published templates in Apache CloudStack (docs/cloudstack.md).

A publish step after the store upload: the build's VHD is registered from its published URL in
every configured zone, awaited until each zone reports it ready, made the OS's featured template
when it is the newest, and older registrations beyond the retention count deleted; `rollback`
features the previous one. Spoken through the `cs` client library (api.py), against a real
management server or the twin in tests/twins/cloudstack.
"""


class CloudStackRefused(Exception):
    """CloudStack said no, or a registration did not become ready: one line, CloudStack's words."""
