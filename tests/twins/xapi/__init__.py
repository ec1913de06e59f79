"""A twin of XAPI (the XCP-ng pool master's API) for the platform's tests.

It speaks the real protocol to the unmodified `XenAPI` client: XML-RPC with XAPI's envelope,
`OpaqueRef:` refs, error codes and task lifecycle, `PUT /import` of XVAs (checksums verified)
and `PUT /import_raw_vdi`. A started VM reports guest metrics pointing at an SSH endpoint the
test chooses; faults are injected through `XapiTwin.faults` and `XapiTwin.guest`.
"""

from tests.twins.xapi.server import Faults, Guest, XapiTwin

__all__ = ["Faults", "Guest", "XapiTwin"]
