import base64
import hashlib
import stat
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from imagegate.auth.tokens import (
    LEEWAY_SECONDS,
    MAX_TOKEN_LENGTH,
    InvalidToken,
    SigningKey,
    TokenIssuer,
    libtrust_key_id,
)
from imagegate.core.names import MAX_REPOSITORY_LENGTH
from imagegate.core.scopes import MAX_SCOPES, Scope, parse_scope

PULL = parse_scope("repository:library/alpine:pull")
assert PULL is not None


def test_key_is_created_once_with_private_permissions(tmp_path: Path) -> None:
    first = SigningKey.load_or_create(tmp_path / "keys")
    second = SigningKey.load_or_create(tmp_path / "keys")
    assert first.key_id == second.key_id
    mode = (tmp_path / "keys" / "token-signing-key.pem").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert [p.name for p in (tmp_path / "keys").iterdir()] == ["token-signing-key.pem"]


def test_libtrust_key_id_is_base32_of_the_der_fingerprint() -> None:
    key = SigningKey.generate()
    der = key.private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    expected = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    kid = libtrust_key_id(key.private_key.public_key())
    assert kid.replace(":", "") == expected
    assert [len(group) for group in kid.split(":")] == [4] * 12


def test_issued_tokens_carry_the_spec_claims() -> None:
    key = SigningKey.generate()
    issuer = TokenIssuer(key, "imagegate", ttl_seconds=120)
    issued = issuer.issue("alice", "imagegate", [PULL])
    claims = jwt.decode(issued.token, options={"verify_signature": False})
    assert {"iss", "sub", "aud", "exp", "nbf", "iat", "jti"} <= set(claims)
    assert claims["exp"] - claims["iat"] == 120 == issued.expires_in
    assert claims["access"] == [
        {"type": "repository", "name": "library/alpine", "actions": ["pull"]}
    ]
    verified = issuer.verify(issued.token, "imagegate")
    assert verified.subject == "alice"
    assert verified.allows("repository", "library/alpine", "pull")
    assert not verified.allows("repository", "library/alpine", "push")


def test_tokens_are_standard_es256_jws_with_the_key_id() -> None:
    """Signed without PyJWT's encoder: PyJWT (as any JOSE library) must still verify them."""
    key = SigningKey.generate()
    issuer = TokenIssuer(key, "imagegate")
    token = issuer.issue("carol", "svc", [PULL], token_uuid="u-1").token
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": key.key_id, "typ": "JWT"}
    public = key.private_key.public_key()
    claims = jwt.decode(token, public, algorithms=["ES256"], audience="svc", issuer="imagegate")
    assert claims["sub"] == "carol" and claims["imagegate_access_token"] == "u-1"
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(tampered, public, algorithms=["ES256"], audience="svc")


def test_the_certificate_verifies_the_tokens() -> None:
    key = SigningKey.generate()
    certificate = x509.load_pem_x509_certificate(key.certificate_pem())
    token = TokenIssuer(key, "imagegate").issue("bob", "svc", []).token
    claims = jwt.decode(token, certificate.public_key(), algorithms=["ES256"], audience="svc")  # type: ignore[arg-type]
    assert claims["sub"] == "bob"


@pytest.mark.parametrize("case", ["other-key", "other-audience", "expired", "garbage"])
def test_verification_refuses_what_is_not_ours(case: str) -> None:
    key = SigningKey.generate()
    issuer = TokenIssuer(key, "imagegate", ttl_seconds=60)
    token = issuer.issue("alice", "imagegate", [PULL]).token
    audience = "imagegate"
    if case == "other-key":
        token = TokenIssuer(SigningKey.generate(), "imagegate").issue("a", "imagegate", []).token
    elif case == "other-audience":
        audience = "elsewhere"
    elif case == "expired":
        now = int(time.time())
        token = jwt.encode(
            {
                "iss": "imagegate",
                "sub": "a",
                "aud": "imagegate",
                "iat": now - 600,
                "exp": now - 300,
            },
            key.private_key,
            "ES256",
        )
    else:
        token = "not.a.token"
    with pytest.raises(InvalidToken):
        issuer.verify(token, audience)


def test_a_verified_token_is_remembered_until_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    issuer = TokenIssuer(SigningKey.generate(), "imagegate", ttl_seconds=60)
    token = issuer.issue("alice", "imagegate", [PULL]).token
    decodes = 0
    real_decode = jwt.decode

    def counting_decode(*args: Any, **kwargs: Any) -> Any:
        nonlocal decodes
        decodes += 1
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)
    first = issuer.verify(token, "imagegate")
    assert issuer.verify(token, "imagegate") == first
    assert decodes == 1  # the signature was checked once
    with pytest.raises(InvalidToken):
        issuer.verify(token, "elsewhere")  # remembered for its audience only
    # Past its expiry the full check runs again (and refuses it: see the "expired" case).
    later = time.time() + 60 + LEEWAY_SECONDS + 1
    monkeypatch.setattr(time, "time", lambda: later)
    issuer.verify(token, "imagegate")
    assert decodes == 3


def _count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    decodes = [0]
    real_decode = jwt.decode

    def counting_decode(*args: Any, **kwargs: Any) -> Any:
        decodes[0] += 1
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)
    return decodes


def _largest_grant(tag: str) -> list[Scope]:
    """The most a token request can be granted: MAX_SCOPES of the longest names."""
    actions = frozenset({"pull", "push", "delete", "*"})
    names = [f"{tag}{i}/".ljust(MAX_REPOSITORY_LENGTH, "x") for i in range(MAX_SCOPES)]
    return [Scope("repository", name, actions) for name in names]


def test_a_token_longer_than_any_issued_is_refused_undecoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    issuer = TokenIssuer(SigningKey.generate(), "imagegate")
    decodes = _count_decodes(monkeypatch)
    with pytest.raises(InvalidToken, match="longer than any this gateway issues"):
        issuer.verify("x" * (MAX_TOKEN_LENGTH + 1), "imagegate")
    assert decodes == [0]
    assert len(issuer.verified_cache) == 0


def test_the_largest_token_issued_fits_the_length_limit() -> None:
    issuer = TokenIssuer(SigningKey.generate(), "imagegate")
    token = issuer.issue("u" * 30, "imagegate", _largest_grant("a")).token
    assert len(token) <= MAX_TOKEN_LENGTH * 0.75  # a margin for claims added later
    assert len(issuer.verify(token, "imagegate").access) == MAX_SCOPES * 4


def test_the_verified_token_cache_never_grows_past_its_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    budget = 256 * 1024
    issuer = TokenIssuer(SigningKey.generate(), "imagegate", cache_bytes=budget)
    tokens = [issuer.issue("alice", "imagegate", _largest_grant(f"n{i}-")).token for i in range(40)]
    for token in tokens:
        issuer.verify(token, "imagegate")
        assert 0 < issuer.verified_cache.nbytes <= budget
    assert 0 < len(issuer.verified_cache) < len(tokens)  # the oldest made room
    decodes = _count_decodes(monkeypatch)
    issuer.verify(tokens[-1], "imagegate")  # the newest is still remembered
    assert decodes == [0]
    issuer.verify(tokens[0], "imagegate")  # the oldest was not
    assert decodes == [1]
