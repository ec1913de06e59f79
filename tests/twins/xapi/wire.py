"""XAPI's XML-RPC envelope: `{Status, Value}` or `{Status, ErrorDescription}`, with strings and
int64 as bare `<value>text</value>` (so the client sees ints as strings, as with a real pool)."""

from __future__ import annotations

import xmlrpc.client
from typing import Any
from xml.sax.saxutils import escape


class XapiError(Exception):
    """A XAPI failure: `details` is ErrorDescription, `[code, *params]`, all strings."""

    def __init__(self, code: str, *params: object):
        super().__init__(code, *params)
        self.details = [code, *(str(p) for p in params)]


def value(v: Any) -> str:
    if isinstance(v, bool):
        return f"<value><boolean>{int(v)}</boolean></value>"
    if isinstance(v, dict):
        inner = "".join(
            f"<member><name>{escape(str(k))}</name>{value(x)}</member>" for k, x in v.items()
        )
        return f"<value><struct>{inner}</struct></value>"
    if isinstance(v, list | tuple):
        return f"<value><array><data>{''.join(value(x) for x in v)}</data></array></value>"
    if isinstance(v, float):
        return f"<value><double>{v!r}</double></value>"
    if v is None:
        return "<value></value>"
    return f"<value>{escape(str(v))}</value>"


def response(result: Any = None, error: XapiError | None = None) -> bytes:
    if error is not None:
        body = {"Status": "Failure", "ErrorDescription": error.details}
    else:
        body = {"Status": "Success", "Value": "" if result is None else result}
    return (
        "<?xml version='1.0'?>\n<methodResponse><params><param>"
        f"{value(body)}</param></params></methodResponse>\n"
    ).encode()


def parse_request(data: bytes) -> tuple[str, tuple[Any, ...]]:
    params, method = xmlrpc.client.loads(data, use_builtin_types=True)
    if method is None:
        raise ValueError("not a methodCall")
    return method, params
