"""The console's session cookie (``http/console/sessions.py`` SessionCodec.decode).

Properties: no cookie value makes ``decode`` raise (a bad cookie is ``None``: signed out);
a value that decodes was signed with the key, so the same value under another key is
``None``; whatever payload the key signed, what decodes has the types the console relies
on and encodes to a value that decodes to the same session; a session encodes and decodes
to itself until its expiry and not after; changing one character of a cookie never gives
another session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import atheris

from imagegate.http.console.sessions import Session, SessionCodec

KEY = b"k" * 32
CODEC = SessionCodec(KEY)
OTHER = SessionCodec(b"o" * 32)
NOW = 1_900_000_000


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _decoded(value: str) -> Session | None:
    session = CODEC.decode(value, now=NOW)
    if session is None:
        return None
    assert OTHER.decode(value, now=NOW) is None, value
    assert session.secret is None or isinstance(session.secret, str), session
    assert isinstance(session.csrf_token, str) and isinstance(session.expires_at, int), session
    assert session.expires_at > NOW, session
    assert CODEC.decode(CODEC.encode(session), now=NOW) == session, session
    return session


def _signed(payload: bytes) -> None:
    mac = hmac.new(KEY, payload, hashlib.sha256).digest()
    _decoded(f"{_b64(payload)}.{_b64(mac)}")


def _round_trip(fdp: atheris.FuzzedDataProvider) -> None:
    # Session secrets are the gateway's own (URL-safe base64): text, never surrogates.
    secret = fdp.ConsumeUnicodeNoSurrogates(40) if fdp.ConsumeBool() else None
    session = CODEC.new(secret, now=NOW - fdp.ConsumeIntInRange(0, CODEC.lifetime - 1))
    value = CODEC.encode(session)
    assert _decoded(value) == session, (session, value)
    assert CODEC.decode(value, now=session.expires_at) is None, session
    if value:
        at = fdp.ConsumeIntInRange(0, len(value) - 1)
        changed = value[:at] + fdp.ConsumeUnicode(1) + value[at + 1 :]
        assert _decoded(changed) in (None, session), (value, changed)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, fdp = data[0] % 3, atheris.FuzzedDataProvider(data[1:])
    if mode == 0:
        _decoded(fdp.ConsumeUnicode(fdp.remaining_bytes()))
    elif mode == 1:
        # Only the gateway signs payloads (about 150 bytes): short of the JSON module's
        # nesting limit, which only a holder of the key could reach.
        _signed(fdp.ConsumeBytes(800))
    else:
        _round_trip(fdp)
