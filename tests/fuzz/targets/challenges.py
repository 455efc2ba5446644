"""``WWW-Authenticate`` challenges from the upstream (``upstream/auth.py`` parse_challenge).

Properties: nothing escapes for any header; the scheme comes back lowercase and without
spaces, parameter names lowercase; a challenge rendered as RFC 9110 says (token or
quoted-string values, ``\\`` escaping ``"`` and ``\\``) parses back to exactly its
parameters, and so does the challenge the gateway itself sends (``http/challenge.py``),
whatever its error description says.
"""

from __future__ import annotations

import atheris

from imagegate.http.challenge import TokenRealm
from imagegate.upstream.auth import parse_challenge

SCHEMES = ["Bearer", "Basic", "bearer", "BASIC", "Negotiate"]
NAMES = ["realm", "service", "scope", "error", "error_description", "Realm", "x_1"]
TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _value(fdp: atheris.FuzzedDataProvider) -> str:
    # Header values are text without line breaks (a server cannot send those).
    return fdp.ConsumeUnicodeNoSurrogates(40).replace("\r", "").replace("\n", "")


def _raw(header: str) -> None:
    challenge = parse_challenge(header)
    if challenge is None:
        assert not header.strip().partition(" ")[0], header
        return
    assert challenge.scheme == challenge.scheme.lower() and challenge.scheme, challenge
    assert " " not in challenge.scheme, challenge  # RFC 9110: SP ends the scheme
    assert all(name == name.lower() for name in challenge.params), challenge


def _rendered(fdp: atheris.FuzzedDataProvider) -> None:
    scheme = fdp.PickValueInList(SCHEMES)
    params: dict[str, str] = {}
    parts = []
    for _ in range(fdp.ConsumeIntInRange(0, 5)):
        name = fdp.PickValueInList(NAMES)
        value = _value(fdp)
        if name.lower() in params:
            continue
        params[name.lower()] = value
        as_token = value and all(c in TOKEN_CHARS for c in value) and fdp.ConsumeBool()
        parts.append(f"{name}={value if as_token else _quoted(value)}")
    header = f"{scheme} {', '.join(parts) if fdp.ConsumeBool() else ','.join(parts)}"
    challenge = parse_challenge(header)
    assert challenge is not None and challenge.scheme == scheme.lower(), header
    assert challenge.params == params, (header, challenge.params, params)


def _ours(fdp: atheris.FuzzedDataProvider) -> None:
    description = fdp.ConsumeUnicodeNoSurrogates(200)
    realm = TokenRealm("https://gateway.example")
    header = realm.challenge(
        None,  # type: ignore[arg-type]  # a public URL: the request is not consulted
        scope="repository:acme/app:pull",
        error="insufficient_scope",
        description=description,
    )
    challenge = parse_challenge(header)
    assert challenge is not None and challenge.scheme == "bearer", header
    expected = {
        "realm": "https://gateway.example/token",
        "service": "imagegate",
        "scope": "repository:acme/app:pull",
        "error": "insufficient_scope",
    }
    if description:  # an empty one is left out
        expected["error_description"] = description.replace("\r", " ").replace("\n", " ")
    assert challenge.params == expected, (header, challenge.params)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    mode, fdp = data[0] % 3, atheris.FuzzedDataProvider(data[1:])
    if mode == 0:
        _raw(fdp.ConsumeUnicode(fdp.remaining_bytes()))
    elif mode == 1:
        _rendered(fdp)
    else:
        _ours(fdp)
