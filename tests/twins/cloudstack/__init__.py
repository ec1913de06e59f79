"""The CloudStack twin: a management server's API, as much of it as template registration uses.

Real HTTP on 127.0.0.1, every request's signature checked the way CloudStack's ApiServer does
(signature.py), JSON answers in CloudStack's shapes and error codes (server.py), and each
registered template downloaded per zone by an asynchronous job that really fetches the URL and
checks the checksum (downloads.py). Faults are injected through `CloudStackTwin.faults`.
"""
