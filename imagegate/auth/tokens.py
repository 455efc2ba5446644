"""Registry bearer tokens: the signing key, issuing and verifying JWTs.

Tokens follow the Docker token specification (REFERENCE.md section 3): ES256 JWTs with
``iss, sub, aud, exp, nbf, iat, jti`` and ``access: [{type, name, actions}]``. The key
lives in the data dir, created on first use; its ``kid`` is the libtrust fingerprint a
CNCF distribution registry expects, so an upstream registry can trust our tokens too.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from imagegate.auth.cache import BoundedCache
from imagegate.auth.keyfiles import load_or_create
from imagegate.core.scopes import Scope

ALGORITHM = "ES256"
_ECDSA = ec.ECDSA(hashes.SHA256())
_P256_BYTES = 32  # each of a P-256 signature's r and s, in JWS's raw form (RFC 7518 3.4)
KEY_FILE = "token-signing-key.pem"
LEEWAY_SECONDS = 5
# Longer than any token we issue: at most MAX_SCOPES scopes of the longest repository
# names with every action come to about 19 KiB (a test checks the margin). A longer
# bearer token is refused before it is decoded.
MAX_TOKEN_LENGTH = 32 * 1024
# Memory for verified tokens (a client sends the same token on every request of a pull):
# a token with a handful of scopes costs about 1.5 KiB, so this holds thousands.
VERIFIED_CACHE_BYTES = 8 * 1024 * 1024
# What a TokenClaims costs besides its text, and each (type, name, action) besides its
# text: the objects, the tuple and the set slot (sys.getsizeof on CPython 3.11, rounded up).
_CLAIMS_BYTES = 512
_ACCESS_BYTES = 256


def libtrust_key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """The libtrust key id: base32 of the first 30 bytes of SHA-256(DER), in groups of 4."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


@dataclass(frozen=True)
class SigningKey:
    private_key: ec.EllipticCurvePrivateKey

    @property
    def key_id(self) -> str:
        return libtrust_key_id(self.private_key.public_key())

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def load_or_create(cls, directory: Path) -> SigningKey:
        """Load the key from ``directory``, creating it (mode 0600, atomically) if absent."""
        path = directory / KEY_FILE
        pem = load_or_create(path, lambda: cls.generate().pem())
        loaded = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{path} does not hold an EC private key")
        return cls(loaded)

    def pem(self) -> bytes:
        """The private key in PKCS#8 PEM, unencrypted (it lives in a 0600 file)."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def certificate_pem(self, common_name: str = "imagegate token signer") -> bytes:
        """A self-signed certificate of the public key (a registry's ``rootcertbundle``)."""
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.private_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .sign(self.private_key, hashes.SHA256())
        )
        return certificate.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int
    issued_at: str  # RFC 3339


# The claim that restricts a token to public repositories (a repo:public_read access
# token signed in): the registry checks it on every request, whatever ``access`` grants.
PUBLIC_ONLY_CLAIM = "imagegate_public_only"
# The access token a registry token was issued for (its uuid), when one signed in:
# pushes and deletes check that it still signs in, so revoking it stops them at once.
ACCESS_TOKEN_CLAIM = "imagegate_access_token"


@dataclass(frozen=True)
class TokenClaims:
    subject: str  # "" for an anonymous client
    access: frozenset[tuple[str, str, str]]  # (type, name, action)
    public_only: bool = False  # may pull public repositories only
    token_uuid: str | None = None  # the access token it was issued for; None: a password

    def allows(self, type_: str, name: str, action: str) -> bool:
        return (type_, name, action) in self.access


class InvalidToken(Exception):
    """The bearer token is malformed, expired, or not ours."""


class TokenIssuer:
    """Issues and verifies the gateway's registry tokens.

    Checking an ES256 signature costs about 0.3 ms, and a client sends the same token
    with every request of a pull; so a token that verified is remembered, by the SHA-256
    of its text (never the text: anyone may send a long token), until it expires, within
    ``cache_bytes``. Only the expiry is checked again: the signature, issuer, audience
    and claims of those same bytes cannot have changed, and ``nbf``/``iat`` only become
    truer with time. Tokens that fail are never remembered.
    """

    def __init__(
        self,
        key: SigningKey,
        issuer: str,
        ttl_seconds: int = 300,
        *,
        cache_bytes: int = VERIFIED_CACHE_BYTES,
    ) -> None:
        self._key = key
        self._public_key = key.private_key.public_key()
        self._kid = key.key_id
        # The JOSE header is the same for every token: encoded once, not per token.
        header = {"alg": ALGORITHM, "kid": self._kid, "typ": "JWT"}
        self._header = _base64url(json.dumps(header, separators=(",", ":")).encode()) + b"."
        self.issuer = issuer
        self.ttl_seconds = ttl_seconds
        # Expiry is the token's own exp: wall-clock time (looked up at each call, so a
        # test can move it).
        self.verified_cache: BoundedCache[TokenClaims] = BoundedCache(
            cache_bytes, lambda: time.time()
        )

    def issue(
        self,
        subject: str,
        audience: str,
        access: Iterable[Scope],
        *,
        public_only: bool = False,
        token_uuid: str | None = None,
    ) -> IssuedToken:
        now = int(time.time())
        claims: dict[str, object] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "exp": now + self.ttl_seconds,
            "nbf": now - 5,  # tolerate small clock differences
            "iat": now,
            "jti": secrets.token_urlsafe(16),
            "access": [
                {"type": scope.type, "name": scope.name, "actions": sorted(scope.actions)}
                for scope in access
            ],
        }
        if public_only:
            claims[PUBLIC_ONLY_CLAIM] = True
        if token_uuid is not None:
            claims[ACCESS_TOKEN_CLAIM] = token_uuid
        token = self._sign(claims)
        issued_at = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return IssuedToken(token, self.ttl_seconds, issued_at)

    def _sign(self, claims: dict[str, object]) -> str:
        """The compact JWS of ``claims`` under the prebuilt header: what PyJWT's
        ``encode`` makes, for half its cost (it builds and encodes the header each time)."""
        payload = _base64url(json.dumps(claims, separators=(",", ":")).encode())
        signed = self._header + payload
        r, s = decode_dss_signature(self._key.private_key.sign(signed, _ECDSA))
        signature = r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big")
        return (signed + b"." + _base64url(signature)).decode("ascii")

    def verify(self, token: str, audience: str) -> TokenClaims:
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken(
                f"the token is {len(token)} characters long, longer than any this gateway issues"
            )
        key = hashlib.sha256(f"{audience}\0{token}".encode()).digest()
        known = self.verified_cache.get(key)
        if known is not None:
            return known
        claims, expires = self._decode(token, audience)
        self.verified_cache.put(key, claims, _claims_size(claims), expires)
        return claims

    def _decode(self, token: str, audience: str) -> tuple[TokenClaims, float]:
        try:
            claims = jwt.decode(
                token,
                self._public_key,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
                leeway=LEEWAY_SECONDS,
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        access: set[tuple[str, str, str]] = set()
        for entry in claims.get("access") or []:
            if not isinstance(entry, dict):
                continue
            for action in entry.get("actions") or []:
                access.add((str(entry.get("type")), str(entry.get("name")), str(action)))
        expires = float(claims["exp"]) + LEEWAY_SECONDS
        public_only = claims.get(PUBLIC_ONLY_CLAIM) is True
        token_uuid = claims.get(ACCESS_TOKEN_CLAIM)
        bound = str(token_uuid) if token_uuid is not None else None
        return TokenClaims(str(claims["sub"]), frozenset(access), public_only, bound), expires


def _base64url(data: bytes) -> bytes:
    """Base64url without padding, as JWS encodes every part (RFC 7515 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _claims_size(claims: TokenClaims) -> int:
    """An estimate of the memory ``claims`` hold, for the verified-token cache's budget."""
    text = sum(len(t) + len(n) + len(a) + _ACCESS_BYTES for t, n, a in claims.access)
    return _CLAIMS_BYTES + len(claims.subject) + len(claims.token_uuid or "") + text
