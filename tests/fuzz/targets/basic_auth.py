"""Basic credentials at the token endpoint (``http/token.py`` _basic_credentials).

Properties: for any ``Authorization`` header (bytes as a client may send them; the server
reads headers as latin-1), only ``Unauthorized`` escapes, and its registry JSON envelope
renders; no credentials means a header that is not ``Basic <something>``; credentials that
come back are exactly what a client encoded: ``base64(name ":" secret)`` of UTF-8 text
gives back that name (up to the first ':') and that secret.
"""

from __future__ import annotations

import base64
import json

import atheris
from starlette.requests import Request

from imagegate.core.errors import Unauthorized
from imagegate.http.errors import error_body
from imagegate.http.token import _basic_credentials


def _parse(header: bytes) -> tuple[str, str] | None:
    scope = {"type": "http", "headers": [(b"authorization", header)]}
    return _basic_credentials(Request(scope))


def _raw(header: bytes) -> None:
    try:
        credentials = _parse(header)
    except Unauthorized as exc:
        assert json.loads(error_body(exc))["errors"][0]["code"] == "UNAUTHORIZED"
        return
    text = header.decode("latin-1")
    kind, _, encoded = text.partition(" ")
    if credentials is None:
        assert kind.lower() != "basic" or not encoded, text
        return
    name, secret = credentials
    assert base64.b64decode(encoded.strip()) == f"{name}:{secret}".encode(), (text, credentials)


def _encoded(fdp: atheris.FuzzedDataProvider) -> None:
    name = fdp.ConsumeUnicodeNoSurrogates(40)
    secret = fdp.ConsumeUnicodeNoSurrogates(80)
    scheme = fdp.PickValueInList(["Basic", "basic", "BASIC"])
    token = base64.b64encode(f"{name}:{secret}".encode()).decode()
    credentials = _parse(f"{scheme} {token}".encode())
    # RFC 7617: the user-id holds no ':', so the first one ends it.
    user, _, password = f"{name}:{secret}".partition(":")
    assert credentials == (user, password), (name, secret, credentials)
    if ":" not in name:
        assert credentials == (name, secret)


def test_one_input(data: bytes) -> None:
    if data[:1] == b"\x00":
        _encoded(atheris.FuzzedDataProvider(data[1:]))
    else:
        _raw(data)
